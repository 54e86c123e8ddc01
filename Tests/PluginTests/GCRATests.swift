import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// `ratelimit-gcra`, loaded from its real .so and driven by a manual host clock.
@Suite struct GCRATests {
    let clock = ManualClock()

    func limiter(_ config: String) throws -> (PluginInstance, RateLimiterCaller) {
        let image = try PluginImage(path: TestPlugins.path("ratelimit-gcra"))
        let instance = try PluginInstance(image: image, config: Data(config.utf8), services: RecordingHost(clock: clock))
        return (instance, try #require(instance.rateLimiter))
    }

    @Test func admitsExactlyTheBurstThenRefusesWithTheIntervalAsRetryAfter() throws {
        let (instance, limiter) = try limiter(#"{"limit": 10, "periodSeconds": 10}"#)
        defer { instance.destroy() }
        for i in 1...10 {
            let decision = try limiter.acquire(key: "k", cost: 1)
            #expect(decision.allowed, "request \(i) of the burst")
            #expect(decision.remaining == Int64(10 - i))
            #expect(decision.retryAfterNanoseconds == 0)
            #expect(decision.limit == 10)
            #expect(decision.windowNanoseconds == 10_000_000_000)
        }
        let refused = try limiter.acquire(key: "k", cost: 1)
        #expect(!refused.allowed)
        #expect(refused.remaining == 0)
        #expect(refused.retryAfterNanoseconds == 1_000_000_000)
        #expect(refused.resetNanoseconds == 10_000_000_000)

        // One nanosecond early is still too early; exactly on time is admitted.
        clock.advance(nanoseconds: 999_999_999)
        let early = try limiter.acquire(key: "k", cost: 1)
        #expect(!early.allowed)
        #expect(early.retryAfterNanoseconds == 1)
        clock.advance(nanoseconds: 1)
        let onTime = try limiter.acquire(key: "k", cost: 1)
        #expect(onTime.allowed)
        #expect(onTime.remaining == 0)
    }

    @Test func weighsCost() throws {
        let (instance, limiter) = try limiter(#"{"limit": 10, "periodSeconds": 10}"#)
        defer { instance.destroy() }
        #expect(try limiter.acquire(key: "k", cost: 4).remaining == 6)
        #expect(try limiter.acquire(key: "k", cost: 4).remaining == 2)
        let refused = try limiter.acquire(key: "k", cost: 4)
        #expect(!refused.allowed)
        #expect(refused.remaining == 2)
        #expect(refused.retryAfterNanoseconds == 2_000_000_000)
        let small = try limiter.acquire(key: "k", cost: 2)
        #expect(small.allowed)
        #expect(small.remaining == 0)
    }

    @Test func staysExactWhenThePeriodDoesNotDivideByTheLimit() throws {
        let (instance, limiter) = try limiter(#"{"limit": 3, "periodSeconds": 1}"#)
        defer { instance.destroy() }
        for _ in 0..<3 { #expect(try limiter.acquire(key: "k", cost: 1).allowed) }
        let refused = try limiter.acquire(key: "k", cost: 1)
        #expect(refused.retryAfterNanoseconds == 333_333_334)  // ⌈10⁹ / 3⌉
        // Over three intervals the emission times are exact: 1 s for three requests, no drift.
        clock.advance(nanoseconds: 1_000_000_000)
        for _ in 0..<3 { #expect(try limiter.acquire(key: "k", cost: 1).allowed) }
        #expect(try !limiter.acquire(key: "k", cost: 1).allowed)
    }

    @Test func refillsToFullCapacityAfterReset() throws {
        let (instance, limiter) = try limiter(#"{"limit": 5, "periodSeconds": 5}"#)
        defer { instance.destroy() }
        for _ in 0..<5 { _ = try limiter.acquire(key: "k", cost: 1) }
        let refused = try limiter.acquire(key: "k", cost: 1)
        clock.advance(nanoseconds: refused.resetNanoseconds)
        for i in 0..<5 { #expect(try limiter.acquire(key: "k", cost: 1).allowed, "request \(i) after reset") }
        #expect(try !limiter.acquire(key: "k", cost: 1).allowed)
    }

    @Test func keysAreIndependent() throws {
        let (instance, limiter) = try limiter(#"{"limit": 1, "periodSeconds": 60}"#)
        defer { instance.destroy() }
        #expect(try limiter.acquire(key: "tenant-a|1.2.3.4|GET|/x", cost: 1).allowed)
        #expect(try !limiter.acquire(key: "tenant-a|1.2.3.4|GET|/x", cost: 1).allowed)
        #expect(try limiter.acquire(key: "tenant-b|1.2.3.4|GET|/x", cost: 1).allowed)
    }

    @Test(arguments: [Int64(0), -1, 11])
    func refusesImpossibleCosts(cost: Int64) throws {
        let (instance, limiter) = try limiter(#"{"limit": 10, "periodSeconds": 10}"#)
        defer { instance.destroy() }
        #expect {
            try limiter.acquire(key: "k", cost: cost)
        } throws: { error in
            (error as? PluginError)?.code == .invalidArgument
        }
    }

    @Test func boundsMemoryAndFreesIdleKeys() throws {
        let (instance, limiter) = try limiter(#"{"limit": 1, "periodSeconds": 1, "maxKeys": 1024}"#)
        defer { instance.destroy() }
        var admitted: [String] = []
        var refused: [String] = []
        for i in 0..<3000 {
            let key = "key-\(i)"
            if try limiter.acquire(key: key, cost: 1).allowed { admitted.append(key) } else { refused.append(key) }
        }
        // 16 shards of 64 keys: never more than 1,024 keys tracked while all are active.
        #expect(admitted.count <= 1024)
        #expect(admitted.count > 900, "shards fill up before refusing")
        #expect(!refused.isEmpty)
        let wait = try limiter.acquire(key: try #require(refused.last), cost: 1)
        #expect(!wait.allowed)
        #expect(wait.retryAfterNanoseconds > 0 && wait.retryAfterNanoseconds <= 1_000_000_000)
        // Once every tracked key is idle again, the table makes room for new keys.
        clock.advance(seconds: 1)
        #expect(try limiter.acquire(key: try #require(refused.first), cost: 1).allowed)
    }

    @Test func rejectsInvalidConfigurationThroughTheSchemaAndInit() throws {
        let image = try PluginImage(path: TestPlugins.path("ratelimit-gcra"))
        #expect(throws: PluginLoadError.self) {
            try PluginInstance(image: image, config: Data(#"{"limit": "ten"}"#.utf8), services: RecordingHost())
        }
        do {
            _ = try PluginInstance(image: image, config: Data(#"{"limit": 0}"#.utf8), services: RecordingHost())
            Issue.record("limit 0 was accepted")
        } catch {
            #expect(error.code == .configRejected)
            #expect(error.message.contains("'limit' must be at least 1"))
        }
    }

    @Test func passesTheConformanceKit() async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("ratelimit-gcra"), config: #"{"limit": 50, "periodSeconds": 60}"#)
        #expect(reports.count == 1)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }
}
