import AsyncHTTPClient
import Foundation
import NIOHTTP1
import OrionCore
import OrionTestSupport
import Synchronization
import Testing

/// Two `orion serve` processes on their own ports, sharing one PostgreSQL database and one
/// redis-server, as operators run several nodes behind a load balancer (docs/operations.md).
final class NodePair: Sendable {
    let dir: String
    let ports: [Int]
    let processes: [Process]
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    /// Free tier: ratelimit-redis (`limit` per hour, fail-closed) and the chat engine. Pro tier:
    /// no limiter, a `premium` model more, and a monthly cap of `proCapUSD`.
    static func start(redis: RedisServer, database: PostgresDatabase, upstream: UpstreamHarness, limit: Int, proCapUSD: Double) async throws -> NodePair {
        let dir = TestPlugins.temporaryDirectory("orion-nodes")
        let pluginsD = dir + "/plugins.d"
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        let files = [
            "openai.yaml": "id: openai\nplugin: engine-openai\nconfig: { baseUrl: 'http://127.0.0.1:\(upstream.port)/v1', apiKey: sk-test, defaultModel: gpt-4o-mini, retries: 0 }\n",
            "pricing.yaml": "id: pricing\nplugin: pricing-table\nconfig: { models: { gpt-4o-mini: { input: 0.15, output: 0.60 } } }\n",
            "ratelimit.yaml": """
                id: ratelimit
                plugin: ratelimit-redis
                config: { url: '\(redis.url)', limit: \(limit), periodSeconds: 3600, keyPrefix: 'nodes:', failMode: closed, reconnectMs: 0 }

                """,
            "tiers.yaml": """
                tiers:
                  free:
                    capabilities: { rate_limit: ratelimit, chat: openai, pricing: pricing }
                    models: { gpt-4o-mini: openai }
                  pro:
                    limits: { costCapUsd: \(proCapUSD) }
                    capabilities: { chat: openai, pricing: pricing }
                    models: { gpt-4o-mini: openai, premium: openai/gpt-4o-mini }

                """,
        ]
        for (name, text) in files { try text.write(toFile: pluginsD + "/" + name, atomically: true, encoding: .utf8) }
        var ports: [Int] = []
        var processes: [Process] = []
        for node in ["a", "b"] {
            let port = TestPorts.free()
            let config = dir + "/\(node).yaml"
            try """
                instanceId: node-\(node)
                dataDirectory: data-\(node)
                workspace: { basePath: data-\(node)/workspaces }
                plugins: { directory: plugins.d, searchPaths: ['\(TestPlugins.directory)'], watchIntervalSeconds: 0 }
                gateway: { port: \(port), tenantCacheTtlSeconds: 3600 }
                auth: { hs256Secret: '\(GatewayHarness.secret)' }
                store: { postgresUrl: '\(database.url)' }

                """.write(toFile: config, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: OrionCommand.path)
            process.arguments = ["serve", "--config", config, "--log-level", "warning"]
            process.standardOutput = FileHandle.nullDevice
            FileManager.default.createFile(atPath: dir + "/\(node).log", contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/\(node).log"))
            try process.run()
            ports.append(port)
            processes.append(process)
        }
        let pair = NodePair(dir: dir, ports: ports, processes: processes)
        for index in 0..<2 {
            // At most 60 s: two nodes start, load their plugins and migrate on a busy machine.
            var ready = false
            for _ in 0..<600 where !ready {
                ready = (try? await pair.send(index, .GET, "/ready").status) == 200
                if !ready {
                    guard processes[index].isRunning else { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            if !ready {
                let log = (try? String(contentsOfFile: dir + "/\(["a", "b"][index]).log", encoding: .utf8)) ?? ""
                await pair.stop()
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "node \(index) did not become ready:\n\(log)"])
            }
        }
        return pair
    }

    private init(dir: String, ports: [Int], processes: [Process]) {
        self.dir = dir
        self.ports = ports
        self.processes = processes
    }

    func send(_ node: Int, _ method: HTTPMethod, _ path: String, token: String? = nil, json: Any? = nil) async throws -> GatewayHarness.Reply {
        try await GatewayHarness.send(client, "http://127.0.0.1:\(ports[node])\(path)", method, token: token, json: json)
    }

    /// SIGTERM to both, waiting at most 20 s for each to stop.
    func stop() async {
        for process in processes where process.isRunning { process.terminate() }
        for process in processes {
            for _ in 0..<200 where process.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? await client.shutdown()
    }

    /// The sum of a counter's samples whose labels contain `labels`, from one node's /metrics.
    func counter(_ node: Int, _ name: String, labels: String) async throws -> Double {
        let text = String(decoding: try await send(node, .GET, "/metrics").body, as: UTF8.self)
        return text.split(separator: "\n").filter { $0.hasPrefix(name) && $0.contains(labels) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}

/// Statuses seen by concurrent tasks: whether Redis was stopped when each request began, or still
/// running when it was answered.
final class Outcomes: Sendable {
    typealias Outcome = (afterStop: Bool, beforeStop: Bool, status: Int)
    private let list = Mutex<[Outcome]>([])
    func add(afterStop: Bool, beforeStop: Bool, status: Int) { list.withLock { $0.append((afterStop, beforeStop, status)) } }
    var all: [Outcome] { list.withLock { $0 } }
}

@Suite("Several nodes, one truth", .serialized)
struct MultiNodeTests {
    /// One deployment, in order: the shared rate limit, a tenant change seen by the other node,
    /// a budget under concurrent load from both, identical usage summaries, and a Redis outage.
    @Test(.timeLimit(.minutes(5)))
    func twoServeProcessesShareOneTruth() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let database = try await PostgresDatabase.create()
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        // Each chat costs 12 × 0.15 + 3 × 0.60 = 3.6 µUSD; the pro cap is 100 µUSD.
        let nodes = try await NodePair.start(redis: redis, database: database, upstream: upstream, limit: 8, proCapUSD: 0.0001)

        // 1. A limit of 8 per hour holds across both nodes: 8 admitted in total, then refused.
        let limited = try await GatewayHarness.token(tenant: "limited", user: "lena")
        var statuses: [Int] = []
        for index in 0..<12 { statuses.append(try await nodes.send(index % 2, .GET, "/v1/runs?limit=1", token: limited).status) }
        #expect(statuses.filter { $0 == 200 }.count == 8, "\(statuses)")
        #expect(Array(statuses.suffix(4)) == [429, 429, 429, 429])

        // 2. A tenant moved to another tier on node A is seen on node B at once, although B caches
        // tenants for an hour.
        let acme = try await GatewayHarness.token(tenant: "acme", user: "alice")
        let before = try await nodes.send(1, .GET, "/v1/models", token: acme)
        #expect(before.status == 200)
        #expect(!String(decoding: before.body, as: UTF8.self).contains("premium"))
        let admin = try await GatewayHarness.token(tenant: "ops", user: "olga", roles: ["admin"])
        #expect(try await nodes.send(0, .PUT, "/api/admin/tenants/acme", token: admin, json: ["name": "Acme", "tier": "pro"]).status == 200)
        var seen = false
        for _ in 0..<50 where !seen {  // NOTIFY is asynchronous: at most 5 s
            seen = String(decoding: try await nodes.send(1, .GET, "/v1/models", token: acme).body, as: UTF8.self).contains("premium")
            if !seen { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(seen, "node B still resolves acme on its old tier")
        // The change is in the one audit trail, read from the other node.
        var audited = false
        for _ in 0..<50 where !audited {
            let trail = try await nodes.send(1, .GET, "/api/audit?tenant=ops", token: admin).json["entries"] as? [[String: Any]] ?? []
            audited = trail.contains { $0["action"] as? String == "PUT /api/admin/tenants/{id}" && $0["node"] as? String == "node-a" }
            if !audited { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(audited, "node B does not see node A's audit entry")

        // 3. 60 chats at once, split across the nodes, against one monthly cap: the nodes cannot
        // spend past it together.
        @Sendable func chat() -> [String: Any] { ["model": "gpt-4o-mini", "messages": [["role": "user", "content": "hello there"]], "max_tokens": 8] }
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<60 { group.addTask { try await nodes.send(index % 2, .POST, "/v1/chat/completions", token: acme, json: chat()).status } }
            var results: [Int] = []
            for try await status in group { results.append(status) }
            return results
        }
        let admitted = results.filter { $0 == 200 }.count
        #expect(Set(results).isSubset(of: [200, 402]), "\(results)")
        #expect(admitted > 0 && admitted < 60)
        // Within the cap: at most 100 µUSD / 3.6 µUSD = 27 calls could ever be paid for.
        #expect(admitted <= 27)

        // 4. Both nodes sum the same records: identical summaries, once each node's writer ran.
        var summaries: [String] = []
        for _ in 0..<50 {
            summaries = []
            for node in 0..<2 {
                let reply = try await nodes.send(node, .GET, "/api/usage/summary?hours=1", token: acme)
                var object = reply.json
                object["hours"] = nil
                summaries.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            }
            if summaries[0] == summaries[1], summaries[0].contains("\"calls\":\(admitted),") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(summaries.count == 2 && summaries[0] == summaries[1], "\(summaries)")
        let totals = try await nodes.send(0, .GET, "/api/usage/summary?hours=1", token: acme).json["totals"] as? [String: Any]
        #expect(totals?["calls"] as? Int == admitted)
        #expect((totals?["costNanoUsd"] as? Int ?? .max) <= 100_000, "spent past the cap")
        // Calls one after another, alternating nodes, take what is left; then both refuse.
        var more = 0
        var last = try await nodes.send(0, .POST, "/v1/chat/completions", token: acme, json: chat())
        while more < 30, last.status == 200 {  // 27 calls at most fit under the cap
            more += 1
            last = try await nodes.send(more % 2, .POST, "/v1/chat/completions", token: acme, json: chat())
        }
        #expect(last.status == 402, "\(last.status) \(String(decoding: last.body, as: UTF8.self))")
        #expect((admitted + more) * 3_600 <= 100_000, "\(admitted) + \(more) calls spent past the cap")
        for node in 0..<2 {
            let refused = try await nodes.send(node, .POST, "/v1/chat/completions", token: acme, json: chat())
            #expect(refused.status == 402, "node \(node): \(refused.status) \(String(decoding: refused.body, as: UTF8.self))")
        }
        print("two nodes: \(admitted) of 60 concurrent chats admitted, then \(more) more one by one: \((admitted + more) * 3_600) of 100000 nano-USD")

        // 5. Redis stopped while both nodes take requests: the configured policy (closed) refuses
        // every request that starts after it, and each node counts it. (Few enough requests start
        // before the stop to stay under the limit of 8.)
        let busy = try await GatewayHarness.token(tenant: "busy", user: "bo")
        let stopped = SharedFlag()
        let outcomes = Outcomes()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in 0..<2 {
                group.addTask {
                    for _ in 0..<12 {
                        let afterStop = stopped.isSet
                        let status = try await nodes.send(node, .GET, "/v1/models", token: busy).status
                        outcomes.add(afterStop: afterStop, beforeStop: !stopped.isSet, status: status)
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(250))
            redis.stop()
            stopped.set()
            try await group.waitForAll()
        }
        let afterStop = outcomes.all.filter(\.afterStop).map(\.status)
        #expect(!afterStop.isEmpty && afterStop.allSatisfy { $0 == 429 }, "\(afterStop)")
        #expect(outcomes.all.filter(\.beforeStop).allSatisfy { $0.status == 200 }, "under the limit while Redis ran")
        for node in 0..<2 {
            #expect(try await nodes.counter(node, "orion_plugin_redis_unavailable_total", labels: #"policy="closed""#) > 0, "node \(node)")
        }
        // Redis back: both nodes admit again, each once its connections' reconnect wait
        // (reconnectMs) is over.
        try redis.start()
        for node in 0..<2 {
            var status = 0
            for _ in 0..<50 {  // at most 5 s
                status = try await nodes.send(node, .GET, "/v1/models", token: busy).status
                if status == 200 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(status == 200, "node \(node)")
        }
        await nodes.stop()
        await database.drop()
    }
}
