import Foundation
import NIOHTTP1
import OrionCore
import OrionTestSupport
import Testing

/// Two gateways (two nodes) with ratelimit-redis on one real redis-server: one limit across both,
/// and the configured policy while Redis is down.
@Suite("A rate limit shared across nodes", .serialized)
struct SharedLimitTests {
    static func nodes(_ redis: RedisServer, limit: Int, failMode: String = "open") async throws -> [GatewayHarness] {
        let prefix = "nodes\(UUID().uuidString.prefix(8)):"
        var engines = GatewayHarness.Engines()
        engines.files["ratelimit.yaml"] = """
            id: ratelimit
            plugin: ratelimit-redis
            config: { url: '\(redis.url)', limit: \(limit), periodSeconds: 3600, keyPrefix: '\(prefix)', failMode: \(failMode), reconnectMs: 0 }

            """
        return [try await GatewayHarness.start(engines: engines), try await GatewayHarness.start(engines: engines)]
    }

    @Test("N requests per window are admitted in total across two nodes; the next is refused with the headers")
    func oneLimitAcrossTwoNodes() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let nodes = try await Self.nodes(redis, limit: 6)
        defer { for node in nodes { Task { await node.stop() } } }
        let token = try await GatewayHarness.token()
        var statuses: [Int] = []
        for index in 0..<8 {
            statuses.append(try await nodes[index % 2].send(.GET, "/v1/runs?limit=1", token: token).status)
        }
        #expect(statuses.filter { $0 == 200 }.count == 6)
        #expect(Array(statuses.suffix(2)) == [429, 429])
        let refused = try await nodes[1].send(.GET, "/v1/runs?limit=1", token: token)
        #expect(refused.status == 429)
        #expect(refused.header("RateLimit-Policy")?.contains("q=6") == true)
        #expect(refused.header("Retry-After") != nil)
    }

    @Test("while Redis is down a fail-closed limiter refuses and counts it; back up, it admits again")
    func redisDownFailsClosed() async throws {
        let redis = try RedisServer()
        let nodes = try await Self.nodes(redis, limit: 100, failMode: "closed")
        defer { for node in nodes { Task { await node.stop() } } }
        let token = try await GatewayHarness.token()
        #expect(try await nodes[0].send(.GET, "/v1/runs?limit=1", token: token).status == 200)
        redis.stop()
        for node in nodes { #expect(try await node.send(.GET, "/v1/runs?limit=1", token: token).status == 429) }
        let metrics = String(decoding: try await nodes[0].send(.GET, "/metrics").body, as: UTF8.self)
        #expect(metrics.split(separator: "\n").contains { $0.hasPrefix("orion_plugin_redis_unavailable_total") && $0.contains(#"policy="closed""#) })
        try redis.start()
        #expect(try await nodes[1].send(.GET, "/v1/runs?limit=1", token: token).status == 200)
        redis.stop()
    }
}
