import Foundation
import Metrics
import MetricsTestKit
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Synchronization
import Testing

/// Swapping one plugin between two builds while callers hammer it.
@Suite struct HotSwapTests {
    @Test(.timeLimit(.minutes(2)))
    func swapsBetweenTwoBuildsUnderLoadWithoutAFailedCall() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        let builds = [TestPlugins.path("fixture-swap-v1"), TestPlugins.path("fixture-swap-v2")]
        let deploy: @Sendable (Int) throws -> Void = { build in
            try "id: swap\npath: \(builds[build])\n".write(toFile: pluginsD + "/swap.yaml", atomically: true, encoding: .utf8)
        }
        try deploy(0)

        let destroyed = Mutex<[UInt64: Int]>([:])
        let metrics = TestMetrics()
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD, metrics: metrics) { handle in
            destroyed.withLock { $0[handle.serial, default: 0] += 1 }
        }
        try await runtime.reload()

        let callers = 4
        let callsPerCaller = 2_500
        let swaps = 20
        let failures = SharedCounter()
        let seen = SharedSet()
        let swapsDone = SharedFlag()
        let registry = runtime.registry

        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    var calls = 0
                    var local = Set<Int64>()
                    // Keep calling until both this caller's quota is done and every swap happened
                    // (bounded: a swap takes milliseconds; 2,000,000 calls is far beyond need).
                    while calls < 2_000_000 && (calls < callsPerCaller || !swapsDone.isSet) {
                        do {
                            let lease = try registry.lease(kind: .rateLimiter, id: "swap")
                            let decision = try #require(lease.rateLimiter).acquire(key: "caller", cost: 1)
                            local.insert(decision.remaining)  // the build's generation
                            lease.release()
                        } catch {
                            failures.increment()
                        }
                        calls += 1
                        if calls % 64 == 0 { await Task.yield() }
                    }
                    let observed = local
                    seen.insert(observed)
                    return calls
                }
            }
            group.addTask {
                for swap in 1...swaps {
                    try deploy(swap % 2)
                    let report = try await runtime.reload(reason: "swap \(swap)")
                    #expect(report.created == ["swap"])
                    #expect(report.refusals.isEmpty)
                    await Task.yield()
                }
                swapsDone.set()
                return 0
            }
            var total = 0
            for try await calls in group { total += calls }
            #expect(total >= callers * callsPerCaller)
        }

        #expect(failures.count == 0)
        #expect(seen.values == [1, 2], "both builds served calls")
        // All but the serving instance are retired; shutting down retires that one too.
        await runtime.shutdown()
        let counts = destroyed.withLock { $0 }
        #expect(counts.count == swaps + 1, "every instance created was destroyed")
        #expect(counts.values.allSatisfy { $0 == 1 }, "each exactly once")
        let created = try metrics.expectCounter("orion_plugin_fixture_created_total", [("plugin", "fixture-swap")]).totalValue
        let pluginDestroyed = try metrics.expectCounter("orion_plugin_fixture_destroyed_total", [("plugin", "fixture-swap")]).totalValue
        #expect(created == Int64(swaps + 1))
        #expect(pluginDestroyed == Int64(swaps + 1), "the plugin saw one destroy per instance")
        #expect((try? metrics.expectCounter("orion_plugin_fixture_double_destroy_total", [("plugin", "fixture-swap")]))?.totalValue ?? 0 == 0)
    }

    @Test func aLeaseKeepsARetiredInstanceAliveUntilReleased() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: swap\npath: \(TestPlugins.path("fixture-swap-v1"))\n".write(toFile: pluginsD + "/swap.yaml", atomically: true, encoding: .utf8)
        let destroyedCount = SharedCounter()
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD) { _ in destroyedCount.increment() }
        try await runtime.reload()
        let lease = try runtime.registry.lease(kind: .rateLimiter, id: "swap")

        try "id: swap\npath: \(TestPlugins.path("fixture-swap-v2"))\n".write(toFile: pluginsD + "/swap.yaml", atomically: true, encoding: .utf8)
        try await runtime.reload()
        #expect(lease.handle.isRetired)
        #expect(!lease.handle.isDestroyed)
        #expect(destroyedCount.count == 0)
        // The old build still answers through the lease; new leases get the new build.
        #expect(try #require(lease.rateLimiter).acquire(key: "k").remaining == 1)
        let fresh = try runtime.registry.lease(kind: .rateLimiter, id: "swap")
        #expect(try #require(fresh.rateLimiter).acquire(key: "k").remaining == 2)
        fresh.release()

        lease.release()
        #expect(lease.handle.isDestroyed)
        #expect(destroyedCount.count == 1)
        lease.release()  // a second release changes nothing
        #expect(destroyedCount.count == 1)
        await runtime.shutdown()
    }

    @Test func anUnchangedInstanceIsKeptAcrossReloads() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: limiter\nplugin: ratelimit-gcra\nconfig: { limit: 2 }\n".write(toFile: pluginsD + "/limiter.yaml", atomically: true, encoding: .utf8)
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        try await runtime.reload()
        let before = try runtime.registry.lease(kind: .rateLimiter, id: "limiter")
        _ = try #require(before.rateLimiter).acquire(key: "k")
        before.release()
        let report = try await runtime.reload()
        #expect(report.kept == ["limiter"])
        #expect(report.created.isEmpty)
        // Same instance: its state (one request spent) survived the reload.
        let after = try runtime.registry.lease(kind: .rateLimiter, id: "limiter")
        #expect(after.handle === before.handle)
        #expect(try #require(after.rateLimiter).acquire(key: "k").remaining == 0)
        after.release()
        await runtime.shutdown()
    }
}
