import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import OrionCore
import OrionUpstreamFake
import Synchronization
import Testing

/// A Server-Sent Events response read as it arrives.
final class SSEReader: @unchecked Sendable {
    // @unchecked: one test task reads it at a time.
    let status: Int
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private var pending = ""

    init(_ gateway: GatewayHarness, _ path: String, method: HTTPMethod = .GET, token: String, json: Any? = nil) async throws {
        var request = HTTPClientRequest(url: gateway.base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: json))))
        }
        let response = try await gateway.client.execute(request, timeout: .seconds(60))
        status = Int(response.status.code)
        iterator = response.body.makeAsyncIterator()
    }

    /// The next event (name and data), or nil at the end of the stream. Comments are skipped.
    func next() async throws -> (name: String, data: String)? {
        while true {
            if let range = pending.range(of: "\n\n") {
                let block = String(pending[..<range.lowerBound])
                pending = String(pending[range.upperBound...])
                var name = "message", data: [String] = []
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
                }
                if data.isEmpty { continue }
                return (name, data.joined(separator: "\n"))
            }
            guard let buffer = try await iterator.next() else { return nil }
            pending += String(buffer: buffer)
        }
    }

    /// The next event's data as a JSON object.
    static func json(_ data: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
    }
}

@Suite("Live events and cancellation", .serialized)
struct EventStreamTests {
    @Test("cancel during a streamed chat stops the engine stream, ends the run cancelled and emits run_cancelled")
    func cancelDuringAStreamedChat() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let watcher = try await SSEReader(gateway, "/v1/events?runId=chat-1&types=run_started,run_cancelled", token: token)
        #expect(watcher.status == 200)
        // Forty words, a quarter second apart: ten seconds of stream unless it is cancelled.
        upstream.fake.script(.slow(.milliseconds(250)))
        let words = (1...40).map { "word\($0)" }.joined(separator: " ")
        let chat = try await SSEReader(gateway, "/v1/chat", method: .POST, token: token, json: ["message": words, "topK": 0, "stream": true, "runId": "chat-1"])
        #expect(chat.status == 200)
        let first = try #require(try await chat.next())
        #expect(first.name == "run")
        #expect(SSEReader.json(first.data)["runId"] as? String == "chat-1")
        var chunks = 0
        while let event = try await chat.next(), event.name == "chunk" {
            chunks += 1
            if chunks == 2 { break }
        }
        let cancel = try await gateway.send(.POST, "/v1/runs/chat-1/cancel", token: token)
        #expect(cancel.status == 202, "\(cancel.json)")
        var last: (name: String, data: String)?
        for _ in 0..<100 {
            guard let event = try await chat.next() else { break }
            last = event
            if event.name != "chunk" { break }
            chunks += 1
        }
        #expect(last?.name == "cancelled")
        #expect(SSEReader.json(last?.data ?? "")["reason"] as? String == "cancelled by alice")
        #expect(chunks < 10)
        let run = try await gateway.send(.GET, "/v1/runs/chat-1", token: token)
        #expect(run.json["status"] as? String == "cancelled")
        let steps = run.json["steps"] as? [[String: Any]] ?? []
        #expect(steps.map { $0["kind"] as? String } == ["generate"])
        let again = try await gateway.send(.POST, "/v1/runs/chat-1/cancel", token: token)
        #expect(again.status == 409)
        #expect(again.json["code"] as? String == "RUN_ENDED")
        let started = try #require(try await watcher.next())
        #expect(started.name == "run_started")
        let cancelled = try #require(try await watcher.next())
        #expect(cancelled.name == "run_cancelled")
        let event = SSEReader.json(cancelled.data)
        #expect(event["runId"] as? String == "chat-1")
        #expect(event["tenantId"] as? String == "acme")
        #expect((event["payload"] as? [String: Any])?["reason"] as? String == "cancelled by alice")
        // Another tenant neither sees nor cancels it.
        let stranger = try await GatewayHarness.token(tenant: "globex")
        #expect(try await gateway.send(.POST, "/v1/runs/chat-1/cancel", token: stranger).status == 404)
        #expect(try await gateway.send(.GET, "/v1/runs/chat-1", token: stranger).status == 404)
        let listed = try await gateway.send(.GET, "/v1/runs?status=cancelled", token: token)
        #expect((listed.json["runs"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["chat-1"])
        #expect(try await gateway.send(.GET, "/v1/runs?status=paused", token: token).status == 400)
    }

    @Test("cancelling a plain chat answers 409 RUN_CANCELLED once the engine call returns; the run ends cancelled")
    func cancelAPlainChat() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        // Long enough for the cancel to arrive while the call runs, on a busy machine too.
        upstream.fake.script(.slow(.milliseconds(2_000)))
        let chat = Task { try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "take your time", "topK": 0, "runId": "plain-1"]) }
        var cancel = try await gateway.send(.POST, "/v1/runs/plain-1/cancel", token: token)
        for _ in 0..<100 where cancel.status == 404 {  // until the run is recorded (bounded: 1 s)
            try await Task.sleep(for: .milliseconds(10))
            cancel = try await gateway.send(.POST, "/v1/runs/plain-1/cancel", token: token)
        }
        #expect(cancel.status == 202, "\(cancel.json)")
        let answer = try await chat.value
        #expect(answer.status == 409)
        #expect(answer.json["code"] as? String == "RUN_CANCELLED")
        #expect(try await gateway.send(.GET, "/v1/runs/plain-1", token: token).json["status"] as? String == "cancelled")
    }

    @Test("a subscriber that stops reading is disconnected with a reason; another keeps receiving every event in order")
    func slowSubscriberIsDisconnected() async throws {
        let gateway = try await GatewayHarness.start { config in
            config.events.subscriberQueueCapacity = 16
            config.events.subscriberEventsPerSecond = 100_000
        }
        defer { Task { await gateway.stop() } }
        let slow = try await SSEReader(gateway, "/v1/events?runId=load", token: try await GatewayHarness.token(user: "slow"))
        let reader = try await SSEReader(gateway, "/v1/events?runId=load", token: try await GatewayHarness.token(user: "quick", roles: ["viewer"]))
        #expect(slow.status == 200 && reader.status == 200)
        let padding = String(repeating: "x", count: 32 << 10)
        var received: [UInt64] = []
        var published: UInt64 = 0
        // Publish until the non-reading subscriber is cut off (bounded), letting the reading one keep up.
        while published < 2_000, (gateway.app.events.subscribers.counts["acme"] ?? 0) > 1 {
            for _ in 0..<8 {
                gateway.app.events.publish(.runProgress, tenantID: "acme", tier: "free", runID: "load", payload: ["padding": padding])
                published += 1
            }
            while UInt64(received.count) < published, let event = try await reader.next() {
                received.append((SSEReader.json(event.data)["sequence"] as? NSNumber)?.uint64Value ?? 0)
            }
        }
        #expect((gateway.app.events.subscribers.counts["acme"] ?? 0) == 1)
        #expect(published < 2_000)
        #expect(received == Array(1...published))
        // The slow client, reading at last, finds the reason at the end of its stream.
        var final: (name: String, data: String)?
        while let event = try await slow.next() { final = event }
        #expect(final?.name == "error")
        #expect(SSEReader.json(final?.data ?? "")["code"] as? String == "SUBSCRIBER_TOO_SLOW")
        // Still subscribed, the quick one gets what comes next.
        gateway.app.events.publish(.runCompleted, tenantID: "acme", tier: "free", runID: "load")
        let next = try #require(try await reader.next())
        #expect(next.name == "run_completed")
        #expect(SSEReader.json(next.data)["sequence"] as? Int == Int(published) + 1)
    }

    @Test("the WebSocket variant sends each event as a JSON frame, filtered by type; without events:read there is no upgrade")
    func webSocketEvents() async throws {
        let gateway = try await GatewayHarness.start()
        defer { Task { await gateway.stop() } }
        let member = try await GatewayHarness.token()
        let viewer = try await GatewayHarness.token(user: "vic", roles: ["viewer"])
        let frames = Mutex<[String]>([])
        var logger = Logger(label: "ws-events")
        logger.logLevel = .critical
        let connected = AsyncStream.makeStream(of: Void.self)
        let client = Task {
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(gateway.port)/v1/events/ws?types=side_effect", configuration: .init(additionalHeaders: [.authorization: "Bearer \(viewer)"]),
                logger: logger
            ) { inbound, outbound, _ in
                connected.continuation.yield()
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    if frames.withLock({ $0.append(text); return $0.count }) == 2 { break }
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
        for await _ in connected.stream { break }
        // The subscription is made during the upgrade; give the server a moment to finish it.
        for _ in 0..<200 where (gateway.app.events.subscribers.counts["acme"] ?? 0) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        for index in 0..<2 {
            #expect(try await gateway.send(.POST, "/api/memory", token: member, json: ["intent": "event \(index)", "experience": "x"]).status == 201)
        }
        _ = try await client.value
        let received = frames.withLock { $0 }.map(SSEReader.json)
        #expect(received.count == 2)
        #expect(received.allSatisfy { $0["type"] as? String == "side_effect" && $0["tenantId"] as? String == "acme" })
        #expect(received.compactMap { ($0["payload"] as? [String: Any])?["action"] as? String } == ["POST /api/memory", "POST /api/memory"])
        #expect(received.compactMap { $0["sequence"] as? Int } == [1, 2])
        // An analyst (no events:read) is not upgraded: the plain route answers 403.
        let analyst = try await GatewayHarness.token(roles: ["analyst"])
        #expect(try await gateway.send(.GET, "/v1/events/ws", token: analyst).status == 403)
        #expect(try await gateway.send(.GET, "/v1/events/ws", token: viewer).status == 426)
    }

    @Test("a refused request publishes rate_limited; crossing 80% of the tenant's cap publishes budget_alert")
    func rateLimitedAndBudgetAlertEvents() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(rateLimit: 200, engines: upstream.engines(costCapUSD: 0.0002))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let watcher = try await SSEReader(gateway, "/v1/events?types=budget_alert,rate_limited", token: token)
        // Chats until the tenant's cap refuses one (402): on the way, spending crossed 80% of it.
        var chats = 0
        for _ in 0..<150 {
            let chat = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello there", "topK": 0, "maxTokens": 8])
            guard chat.status == 200 else {
                #expect(chat.status == 402)
                break
            }
            chats += 1
        }
        let event = try #require(try await watcher.next())
        #expect(event.name == "budget_alert")
        let alert = SSEReader.json(event.data)
        let payload = alert["payload"] as? [String: Any] ?? [:]
        #expect(payload["scope"] as? String == "tenant")
        #expect(payload["tier"] as? String == "free")
        #expect((payload["capUsd"] as? Double).map { abs($0 - 0.0002) < 1e-12 } == true)
        #expect(chats > 1)

        // Past the per-route limit: the refusal is an event too.
        var refused = false
        for _ in 0..<400 where !refused {
            refused = try await gateway.send(.GET, "/v1/runs?limit=1", token: token).status == 429
        }
        #expect(refused)
        let limited = try #require(try await watcher.next())
        #expect(limited.name == "rate_limited")
        let limitedPayload = SSEReader.json(limited.data)["payload"] as? [String: Any] ?? [:]
        #expect(limitedPayload["route"] as? String == "/v1/runs")
        #expect(limitedPayload["user"] as? String == "alice")
        #expect((limitedPayload["retryAfterMs"] as? Int ?? 0) > 0)
    }
}
