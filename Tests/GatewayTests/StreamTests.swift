import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOHTTP1
import NIOWebSocket
import OrionCore
import Synchronization
import Testing

@Suite("WebSocket /v1/stream", .serialized)
struct StreamTests {
    /// Connects with `token`, sends `frames`, and collects text frames until `enough` says so.
    func exchange(_ gateway: GatewayHarness, token: String, send frames: [String], until enough: @escaping @Sendable ([[String: Any]]) -> Bool) async throws -> [[String: Any]] {
        let received = Mutex<[String]>([])
        var logger = Logger(label: "ws-test")
        logger.logLevel = .critical
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(gateway.port)/v1/stream", configuration: .init(additionalHeaders: [.authorization: "Bearer \(token)"]),
            logger: logger
        ) { inbound, outbound, _ in
            for frame in frames { try await outbound.write(.text(frame)) }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                let all = received.withLock { $0.append(text); return $0 }
                if enough(all.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }) { break }
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
        return received.withLock { $0 }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    @Test("a chat streams chunk frames, then a done frame with usage and cost")
    func streamedChat() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let chat = #"{"type":"chat","id":"c1","model":"gpt-4o-mini","session":"ws1","messages":[{"role":"user","content":"hello over websocket"}]}"#
        let frames = try await exchange(gateway, token: try await GatewayHarness.token(), send: [chat]) { frames in
            frames.contains { $0["type"] as? String == "done" || $0["type"] as? String == "error" }
        }
        let chunks = frames.filter { $0["type"] as? String == "chunk" }
        let text = chunks.compactMap { ((($0["chunk"] as? [String: Any])?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        #expect(text == "echo: hello over websocket")
        #expect(chunks.allSatisfy { $0["id"] as? String == "c1" })
        let done = try #require(frames.last)
        #expect(done["type"] as? String == "done")
        #expect((done["usage"] as? [String: Any])?["completion_tokens"] as? Int == 4)
        #expect(done["costNanoUsd"] as? Int == 12 * 150 + 4 * 600)
        let session = try await gateway.send(.GET, "/api/usage/sessions/ws1", token: try await GatewayHarness.token())
        #expect(session.json["calls"] as? Int == 1)
    }

    @Test("events over the limit get an error frame with retryAfterMs; other event types have their own budget")
    func eventsAreRateLimited() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines()) { config in
            config.gateway.streamEventLimit = 3
            config.gateway.streamEventWindowSeconds = 60
        }
        defer { Task { await gateway.stop() } }
        let pings = (1...5).map { #"{"type":"ping","id":"p\#($0)"}"# }
        let chat = #"{"type":"chat","id":"c1","model":"gpt-4o-mini","messages":[{"role":"user","content":"still here"}]}"#
        let frames = try await exchange(gateway, token: try await GatewayHarness.token(), send: pings + [chat]) { frames in
            frames.contains { $0["type"] as? String == "done" }
        }
        #expect(frames.filter { $0["type"] as? String == "pong" }.count == 3)
        let refused = frames.filter { $0["code"] as? String == "RATE_LIMITED" }
        #expect(refused.count == 2)
        #expect(refused.allSatisfy { ($0["retryAfterMs"] as? Int ?? 0) > 0 })
        #expect(frames.last?["type"] as? String == "done")
    }

    @Test("bad frames get error frames; without a token the route is 401, with one but no upgrade 426")
    func refusals() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let frames = try await exchange(gateway, token: token, send: ["not json", #"{"type":"dance"}"#, #"{"type":"chat","id":"x","model":"nope","messages":[{"role":"user","content":"a"}]}"#]) {
            $0.count >= 3
        }
        #expect(frames.map { $0["code"] as? String } == ["INVALID_REQUEST", "INVALID_REQUEST", "MODEL_NOT_FOUND"])
        #expect(try await gateway.send(.GET, "/v1/stream").status == 401)
        let plain = try await gateway.send(.GET, "/v1/stream", token: token)
        #expect(plain.status == 426)
        #expect(plain.json["code"] as? String == "UPGRADE_REQUIRED")
        #expect(try await gateway.send(.GET, "/v1/stream", token: try await GatewayHarness.token(roles: ["viewer"])).status == 403)
    }
}
