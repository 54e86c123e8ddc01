import Foundation
import Logging
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// Reloads that must change nothing, and messages that name the file and the key.
@Suite struct ReloadTests {
    let dir = TestPlugins.temporaryDirectory()
    var pluginsD: String { (dir as NSString).appendingPathComponent("plugins.d") }

    init() throws {
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try write("limiter.yaml", "id: limiter\nplugin: ratelimit-gcra\nconfig: { limit: 10 }\n")
        try write("tiers.yaml", """
            tiers:
              free:
                limits: { requestsPerHour: 60, costCapUsd: 0.10 }
                capabilities:
                  rate_limit: limiter
              team:
                limits: { requestsPerHour: 300, costCapUsd: 1.5 }
                capabilities:
                  rate_limit: [limiter]
            """)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: (pluginsD as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    @Test func tiersArePublishedWithDefaultsAndOperatorTiers() async throws {
        try write("tiers.yaml", """
            tiers:
              free:
                capabilities: { rate_limit: limiter }
              pro: {}
              team:
                limits: { requestsPerHour: 300, costCapUsd: 1.5 }
                capabilities:
                  rate_limit: [limiter]
            """)
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        try await runtime.reload()
        let tiers = runtime.registry.snapshot.tiers
        #expect(tiers["free"]?.requestsPerHour == 60)
        #expect(tiers["free"]?.costCapUSD == 0.10)
        #expect(tiers["pro"]?.requestsPerHour == 600)
        #expect(tiers["pro"]?.costCapUSD == 2.00)
        #expect(tiers["team"]?.requestsPerHour == 300)
        let lease = try runtime.registry.lease(tier: "team", capability: "rate_limit", kind: .rateLimiter)
        #expect(lease.handle.id == "limiter")
        lease.release()
        #expect(throws: RegistryError.self) { try runtime.registry.lease(tier: "pro", capability: "rate_limit", kind: .rateLimiter) }
        await runtime.shutdown()
    }

    @Test(arguments: [
        ("broken YAML", "limiter.yaml", "id: limiter\nplugin: [ratelimit-gcra\n", "limiter.yaml", "not valid YAML"),
        ("unknown key", "limiter.yaml", "id: limiter\nplugn: ratelimit-gcra\n", "'plugn'", "Did you mean 'plugin'?"),
        ("tier references a missing instance", "tiers.yaml", "tiers:\n  free:\n    capabilities:\n      rate_limit: limitter\n", "'tiers.free.capabilities.rate_limit'", "which no file in plugins.d declares"),
        ("new tier without limits", "tiers.yaml", "tiers:\n  gold:\n    capabilities: { rate_limit: limiter }\n", "'tiers.gold.limits.requestsPerHour'", "is required"),
        ("bad limit type", "tiers.yaml", "tiers:\n  free:\n    limits: { requestsPerHour: lots }\n", "'tiers.free.limits.requestsPerHour'", "whole number"),
        ("capability mismatch", "tiers.yaml", "tiers:\n  free:\n    capabilities: { retrieval: limiter }\n", "'tiers.free.capabilities.retrieval'", "does not provide 'retrieval'"),
        ("required instance broken", "limiter.yaml", "id: limiter\nrequired: true\npath: /nonexistent/libnothing.so\n", "limiter", "No plugin file"),
    ])
    func anInvalidReloadChangesNothingAndSaysWhy(label: String, file: String, content: String, names: String, says: String) async throws {
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        try await runtime.reload()
        let before = runtime.registry.snapshot
        let lease = try runtime.registry.lease(kind: .rateLimiter, id: "limiter")
        _ = try #require(lease.rateLimiter).acquire(key: "k")

        try write(file, content)
        do {
            try await runtime.reload()
            Issue.record("\(label): the reload succeeded")
        } catch {
            let text = "\(error)"
            #expect(text.contains(names), "\(label): \(text)")
            #expect(text.contains(says), "\(label): \(text)")
            if file == "tiers.yaml" { #expect(text.contains("tiers.yaml"), "the message names the file") }
        }
        let after = runtime.registry.snapshot
        #expect(after.generation == before.generation, "\(label): nothing was published")
        #expect(after.instances["limiter"] === before.instances["limiter"])
        #expect(!lease.handle.isRetired)
        #expect(try #require(lease.rateLimiter).acquire(key: "k").remaining == 8, "the instance kept its state")
        lease.release()
        await runtime.shutdown()
    }

    @Test func aFailedNewBuildKeepsThePreviousInstanceServing() async throws {
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        try await runtime.reload()
        let before = runtime.registry.snapshot.instances["limiter"]
        try write("limiter.yaml", "id: limiter\npath: \(TestPlugins.path("fixture-newer-minor"))\n")
        let report = try await runtime.reload()
        #expect(report.refusals.map(\.error.code) == [.pluginNewerThanHost])
        #expect(report.keptPrevious == ["limiter"])
        #expect(runtime.registry.snapshot.instances["limiter"] === before)
        await runtime.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func theWatcherReloadsWhenAFileChanges() async throws {
        var config = RuntimeConfig()
        config.dataDirectory = dir
        config.plugins.directory = pluginsD
        config.plugins.searchPaths = [TestPlugins.directory]
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let runtime = PluginRuntime(config: config, logger: logger, locator: PluginLocator(configured: [TestPlugins.directory], includeExecutableDirectory: false))
        try await runtime.reload()
        let start = runtime.registry.snapshot.generation
        let service = PluginReloadService(runtime: runtime, interval: .milliseconds(20), logger: logger)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        try await Task.sleep(for: .milliseconds(50))
        try write("second.yaml", "id: second\nplugin: ratelimit-gcra\n")
        // Bounded wait for the watcher: at most 10 s in 20 ms steps.
        var waited = 0
        while runtime.registry.snapshot.instances["second"] == nil && waited < 500 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
        #expect(runtime.registry.snapshot.instances["second"] != nil)
        #expect(runtime.registry.snapshot.generation > start)
        await runtime.shutdown()
    }
}
