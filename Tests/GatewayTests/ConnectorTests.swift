import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import OrionCore
import OrionTestSupport
import Synchronization
import Testing

/// A real HTTP receiver on loopback for webhooks: records each request and answers with the
/// scripted statuses (then 200), optionally after a delay.
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        /// Names lowercased.
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }
    let received = Mutex<[Delivery]>([])
    let script = Mutex<[Int]>([])
    /// While true, requests are held (for at most ten seconds each) before they are answered.
    let holding = Mutex(false)
    private let task = Mutex<Task<Void, any Error>?>(nil)
    let port = Mutex(0)

    static func start() async throws -> WebhookReceiver {
        let receiver = WebhookReceiver()
        let router = Router()
        router.post("hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            receiver.received.withLock { $0.append(Delivery(headers: headers, body: Data(body.readableBytesView))) }
            for _ in 0..<1000 where receiver.holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            let status = receiver.script.withLock { $0.isEmpty ? 200 : $0.removeFirst() }
            return Response(status: .init(code: status))
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        receiver.task.withLock { $0 = Task { try await app.runService() } }
        for await bound in stream {
            receiver.port.withLock { $0 = bound }
            break
        }
        return receiver
    }

    var url: String { "http://127.0.0.1:\(port.withLock { $0 })/hook" }
    var count: Int { received.withLock { $0.count } }
    func stop() { task.withLock { $0?.cancel() } }

    /// Waits (bounded) until `count` requests arrived.
    func wait(for count: Int, seconds: Double = 10) async throws -> [Delivery] {
        for _ in 0..<Int(seconds * 100) where self.count < count { try await Task.sleep(for: .milliseconds(10)) }
        return received.withLock { $0 }
    }
}

/// Runs' lifecycle events reaching connectors: a signed webhook with retries, dead letters and
/// replay; a hash-chained audit log; Prometheus series per tier; a slow connector next to fast requests.
@Suite("Connectors", .serialized)
struct ConnectorTests {
    static let secret = "whsec-test-0123456789"

    /// The chat upstream's engines plus connector instances, all mapped in tier free.
    static func engines(_ upstream: UpstreamHarness, receiver: WebhookReceiver, webhook: String = "", connectors: String = "webhook, audit, metrics", dir: String = "") -> GatewayHarness.Engines {
        var engines = upstream.engines()
        engines.files["webhook.yaml"] = "id: webhook\nplugin: connector-webhook\nconfig: { url: '\(receiver.url)', secret: \(secret), maxAttempts: 3, retryBaseMs: 5\(webhook) }\n"
        engines.files["audit.yaml"] = "id: audit\nplugin: connector-audit\nconfig: { path: '\(dir.isEmpty ? TestPlugins.temporaryDirectory("orion-audit") : dir)/audit.log' }\n"
        engines.files["metrics.yaml"] = "id: metrics\nplugin: connector-metrics\n"
        engines.capabilities += ", connectors: [\(connectors)]"
        return engines
    }

    /// Checks `Orion-Signature: t=…,v1=…` as a receiver would.
    static func verifies(_ delivery: WebhookReceiver.Delivery) -> Bool {
        guard let header = delivery.headers["orion-signature"] else { return false }
        var parts: [String: String] = [:]
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { parts[pair[0]] = pair[1] }
        }
        guard let t = parts["t"], let v1 = parts["v1"], let seconds = Int64(t), abs(Int64(Date().timeIntervalSince1970) - seconds) < 300 else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(t).".utf8) + delivery.body, using: SymmetricKey(data: Data(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined() == v1
    }

    @Test("webhook: a finished chat is POSTed signed; a 500 is retried; after N failures the event is dead-lettered and replay delivers it")
    func webhookDeliversRetriesDeadLettersAndReplays() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let gateway = try await GatewayHarness.start(engines: Self.engines(upstream, receiver: receiver, connectors: "webhook"))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()

        receiver.script.withLock { $0 = [500] }
        let chat = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello webhook", "topK": 0])
        #expect(chat.status == 200, "\(chat.json)")
        let runID = try #require(chat.json["runId"] as? String)
        let first = try await receiver.wait(for: 2)
        #expect(first.count == 2)
        #expect(first.allSatisfy(Self.verifies))
        #expect(first[0].headers["orion-delivery"] != nil)
        #expect(first[0].headers["orion-delivery"] == first[1].headers["orion-delivery"])
        #expect(first[0].headers["orion-event"] == "run_completed")
        #expect(first[1].json["type"] as? String == "run_completed")
        #expect(first[1].json["runId"] as? String == runID)
        #expect(first[1].json["tenantId"] as? String == "acme")
        #expect((first[1].json["payload"] as? [String: Any])?["outcome"] as? String == "success")
        // A tampered body does not verify.
        var forged = first[1]
        forged.body = Data(String(decoding: forged.body, as: UTF8.self).replacingOccurrences(of: "success", with: "failure").utf8)
        #expect(!Self.verifies(forged))

        // Three failures in a row: the event goes to the dead-letter file.
        receiver.script.withLock { $0 = [500, 503, 500] }
        gateway.app.events.publish(.runError, tenantID: "acme", tier: "free", runID: "r-dead", payload: ["error": "boom"])
        _ = try await receiver.wait(for: 5)
        #expect(await gateway.app.events.connectors.drain())
        #expect(gateway.app.events.connectors.stats()["webhook"]?.deadLettered == 1)
        let letters = gateway.app.events.connectors.deadLetters
        let (dead, _) = try letters.read(instance: "webhook")
        #expect(dead.map(\.event.runID) == ["r-dead"])
        #expect(dead.first?.error.contains("500") == true)

        // `orion connectors replay`, as an operator runs it, against the same deployment.
        let config = gateway.dir + "/orion.yaml"
        try """
            dataDirectory: '\(gateway.dir)'
            plugins: { directory: '\(gateway.dir)/plugins.d', searchPaths: ['\(TestPlugins.directory)'], watchIntervalSeconds: 0 }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let replay = try await OrionCommand.run(["connectors", "replay", "--config", config])
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr)")
        #expect(replay.stdout.contains("webhook: 1 delivered, 0 failed again"))
        let all = try await receiver.wait(for: 6)
        #expect(all.last?.json["runId"] as? String == "r-dead")
        #expect(all.last.map(Self.verifies) == true)
        #expect(try letters.read(instance: "webhook").events.isEmpty)
    }

    @Test("a slow connector never slows requests: its queue overflows, drops are counted, requests still answer")
    func slowConnectorNeverSlowsRequests() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        receiver.holding.withLock { $0 = true }
        let gateway = try await GatewayHarness.start(
            engines: Self.engines(upstream, receiver: receiver, webhook: ", events: ['*'], timeoutSeconds: 20", connectors: "webhook")
        ) { config in config.events.connectorQueueCapacity = 4 }
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        for index in 0..<30 {
            let stored = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": "note \(index)", "experience": "kept"])
            #expect(stored.status == 201)
        }
        // Thirty side effects answered while the webhook held the first delivery: one in flight,
        // four queued, the other twenty-five dropped and counted.
        #expect(receiver.count == 1)
        let stats = try #require(gateway.app.events.connectors.stats()["webhook"])
        #expect(stats.dropped == 25)
        #expect(stats.depth == 5)
        let metrics = try await gateway.send(.GET, "/metrics")
        let line = String(decoding: metrics.body, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("orion_connector_events_dropped_total") && $0.contains(#"connector="webhook""#) }
        #expect(line.flatMap { Double($0.split(separator: " ").last ?? "") } == 25)
        // Released, the webhook gets what was queued, in order.
        receiver.holding.withLock { $0 = false }
        #expect(await gateway.app.events.connectors.drain())
        let delivered = try await receiver.wait(for: 5)
        #expect(delivered.count == 5)
        #expect(delivered.map { $0.json["sequence"] as? Int ?? 0 } == [1, 2, 3, 4, 5])
    }

    @Test("connector-audit chains every side effect; orion audit verify finds an edited row and a deleted row")
    func auditLogDetectsEditsAndDeletions() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let logs = TestPlugins.temporaryDirectory("orion-audit")
        let gateway = try await GatewayHarness.start(engines: Self.engines(upstream, receiver: receiver, connectors: "audit, metrics", dir: logs))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token(user: "carol")
        for index in 0..<4 {
            let stored = try await gateway.send(.POST, "/api/memory", token: token, json: ["id": "m\(index)", "intent": "note \(index)", "experience": "kept"])
            #expect(stored.status == 201)
        }
        let deleted = try await gateway.send(.DELETE, "/api/memory/m0", token: token)
        #expect(deleted.status < 300)
        let refused = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": ""])
        #expect(refused.status == 400)
        let chat = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "count me", "topK": 0])
        #expect(chat.status == 200)
        // A search only reads: it is no side effect.
        #expect(try await gateway.send(.POST, "/api/memory/search", token: token, json: ["intent": "note"]).status == 200)
        #expect(await gateway.app.events.connectors.drain())
        let log = logs + "/audit.log"
        let good = try await OrionCommand.run(["audit", "verify", log])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("intact: 6 rows"))
        let original = try String(contentsOfFile: log, encoding: .utf8)
        var lines = original.split(separator: "\n").map(String.init)
        #expect(lines.count == 6)
        let row = try #require(try JSONSerialization.jsonObject(with: Data(lines[4].utf8)) as? [String: Any])
        #expect(row["actor"] as? String == "carol")
        #expect(row["action"] as? String == "DELETE /api/memory/{id}")
        #expect(row["tenant"] as? String == "acme")
        #expect((row["digest"] as? String)?.hasPrefix("sha256:") == true)

        // An edited row (someone rewrote who did it).
        lines[2] = lines[2].replacingOccurrences(of: "\"actor\":\"carol\"", with: "\"actor\":\"mallory\"")
        try (lines.joined(separator: "\n") + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        let edited = try await OrionCommand.run(["audit", "verify", log])
        #expect(edited.status == 1)
        #expect(edited.stdout.contains("row 3 (line 3) was changed"), "\(edited.stdout)")

        // A deleted row.
        lines = original.split(separator: "\n").map(String.init)
        lines.remove(at: 1)
        try (lines.joined(separator: "\n") + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        let removed = try await OrionCommand.run(["audit", "verify", log])
        #expect(removed.status == 1)
        #expect(removed.stdout.contains("row 2 was removed"), "\(removed.stdout)")
        #expect(removed.stdout.contains("rows 1 to 1 are intact"))

        // The per-tier series from connector-metrics: runs by outcome, their duration, events by type.
        let metrics = String(decoding: try await gateway.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(metrics.split(separator: "\n").contains { $0.hasPrefix("orion_plugin_lifecycle_events_total") && $0.contains(#"tier="free""#) && $0.contains(#"type="side_effect""#) })
        #expect(metrics.split(separator: "\n").contains { $0.hasPrefix("orion_plugin_runs_total") && $0.contains(#"tier="free""#) && $0.contains(#"outcome="success""#) && $0.hasSuffix(" 1") })
        #expect(metrics.contains("orion_plugin_run_duration_seconds"))
    }

    @Test("a connector that never answers is cut at events.deliveryTimeoutSeconds: the event is dead-lettered and the queue moves on")
    func aHungConnectorIsCutAtTheDeadline() async throws {
        var engines = GatewayHarness.Engines()
        engines.files["fixture-connector.yaml"] = "id: hanging\nplugin: fixture-connector\n"
        engines.capabilities = "connectors: [hanging]"
        let gateway = try await GatewayHarness.start(engines: engines) { config in config.events.deliveryTimeoutSeconds = 0.2 }
        defer { Task { await gateway.stop() } }
        let events = gateway.app.events
        events.publish(.runError, tenantID: "acme", tier: "free", runID: "stuck", payload: ["error": "hang"])
        events.publish(.runCompleted, tenantID: "acme", tier: "free", runID: "fine", payload: [:])
        #expect(await events.connectors.drain(timeout: .seconds(5)))
        let stats = try #require(events.connectors.stats()["hanging"])
        #expect(stats.deadLettered == 1)
        #expect(stats.delivered == 1)
        let (dead, _) = try events.connectors.deadLetters.read(instance: "hanging")
        #expect(dead.map(\.event.runID) == ["stuck"])
        #expect(dead.first?.error.contains("events.deliveryTimeoutSeconds") == true)
    }
}
