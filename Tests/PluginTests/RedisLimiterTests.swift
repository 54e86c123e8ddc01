import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// ratelimit-redis (C over hiredis) against a real redis-server: GCRA semantics, one limit across
/// instances (nodes), and the configured policy while Redis is down.
@Suite(.serialized) struct RedisLimiterTests {
    func limiter(_ redis: RedisServer, _ extra: String = "", host: ConformanceHost = ConformanceHost()) throws -> PluginInstance {
        let image = try PluginImage(path: TestPlugins.path("ratelimit-redis"))
        let config = #"{"url":"\#(redis.url)","limit":5,"periodSeconds":60,"keyPrefix":"t\#(UUID().uuidString.prefix(8)):"\#(extra)}"#
        return try PluginInstance(image: image, config: Data(config.utf8), services: host)
    }

    @Test func passesTheConformanceKit() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("ratelimit-redis"), config: #"{"url":"\#(redis.url)","limit":10,"periodSeconds":1}"#)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }

    @Test func admitsTheLimitThenRefusesWithRetryAfter() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let instance = try limiter(redis)
        let acquire = try #require(instance.rateLimiter)
        var remaining: [Int64] = []
        for _ in 0..<5 {
            let decision = try acquire.acquire(key: "tenant|ip|GET|/v1/runs")
            #expect(decision.allowed)
            remaining.append(decision.remaining)
        }
        #expect(remaining == [4, 3, 2, 1, 0])
        let refused = try acquire.acquire(key: "tenant|ip|GET|/v1/runs")
        #expect(!refused.allowed)
        #expect(refused.limit == 5)
        #expect(refused.windowNanoseconds == 60_000_000_000)
        // One emission interval (60 s / 5) until the next unit, within Redis's microseconds.
        #expect(abs(refused.retryAfterNanoseconds - 12_000_000_000) < 50_000_000)
        #expect(refused.resetNanoseconds > 59_000_000_000)
        // Other keys have their own budget; a cost of 3 takes three units.
        let other = try acquire.acquire(key: "other", cost: 3)
        #expect(other.allowed && other.remaining == 2)
        #expect(try !acquire.acquire(key: "other", cost: 3).allowed)
    }

    @Test func twoNodesShareOneLimit() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let prefix = "shared\(UUID().uuidString.prefix(8)):"
        let image = try PluginImage(path: TestPlugins.path("ratelimit-redis"))
        let config = Data(#"{"url":"\#(redis.url)","limit":20,"periodSeconds":3600,"keyPrefix":"\#(prefix)"}"#.utf8)
        let nodes = try (0..<2).map { _ in try PluginInstance(image: image, config: config, services: ConformanceHost()) }
        let admitted = try await withThrowingTaskGroup(of: Int.self) { group in
            for node in nodes {
                for _ in 0..<4 {
                    group.addTask {
                        var count = 0
                        for _ in 0..<10 where try node.rateLimiter!.acquire(key: "tenant-a").allowed { count += 1 }
                        return count
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(admitted == 20)
    }

    @Test(arguments: ["open", "closed"])
    func whileRedisIsDownThePolicyDecidesAndIsCounted(mode: String) throws {
        let redis = try RedisServer()
        let host = ConformanceHost()
        let instance = try limiter(redis, #","failMode":"\#(mode)","reconnectMs":0,"timeoutMs":200"#, host: host)
        let acquire = try #require(instance.rateLimiter)
        #expect(try acquire.acquire(key: "k").allowed)
        redis.stop()
        for _ in 0..<3 {
            let decision = try acquire.acquire(key: "k")
            #expect(decision.allowed == (mode == "open"))
            if mode == "closed" { #expect(decision.retryAfterNanoseconds > 0) }
        }
        #expect(host.counters[#"redis_unavailable_total{policy="\#(mode)"}"#] == 3)
        // Back up: decisions come from Redis again (its data is gone, so the budget is whole).
        try redis.start()
        let again = try acquire.acquire(key: "k")
        #expect(again.allowed)
        #expect(again.remaining == 4)
        redis.stop()
    }
}
