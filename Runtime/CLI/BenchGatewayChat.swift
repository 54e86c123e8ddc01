import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTKit
import NIOCore
import OrionCore
import OrionGateway
import OrionPluginHost
import OrionUpstreamFake
import Prometheus
import ServiceLifecycle

/// `orion bench gateway --chat`: `/v1/chat/completions` through the whole gateway (auth, tenant,
/// rate limit, model routing, budget reservation and settlement, engine-openai over the host's HTTP
/// callout, usage record) against the same loopback fake upstream called directly, in one run.
extension BenchGateway {
    func runChat() async throws {
        var (config, logger, scratch) = try benchConfig()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        config.telemetry.defaultCostCapUSD = 1_000_000

        // The fake upstream first: the engine instance needs its port.
        let fake = FakeUpstream(keepReceived: false)
        let upstreamPort = AsyncStream.makeStream(of: Int.self)
        let upstreamTask = Task { try await fake.run { upstreamPort.continuation.yield($0) } }
        var port = 0
        for await bound in upstreamPort.stream {
            port = bound
            break
        }

        let full = try DeploymentSpec.load(directory: config.plugins.directory)
        guard let limit = full.instances.first(where: { $0.id == limiter }) else { throw ValidationError("no instance '\(limiter)' in \(config.plugins.directory)") }
        var spec = DeploymentSpec(instances: [BenchRetrieval.detached(limit, overrides: ["limit": .number(1e9)])], tiers: [])
        spec.instances.append(InstanceSpec(
            id: "openai", plugin: .name("engine-openai"),
            config: .object(["baseUrl": .string("http://127.0.0.1:\(port)/v1"), "apiKey": .string("bench"), "retries": .number(0)])))
        spec.instances.append(InstanceSpec(
            id: "pricing", plugin: .name("pricing-table"),
            config: .object(["models": .object(["gpt-4o-mini": .object(["input": .number(0.15), "output": .number(0.60)])])])))
        spec.tiers = [TierSpec(
            name: "bench", requestsPerHour: 1_000_000, costCapUSD: 1_000_000,
            capabilities: ["rate_limit": [limiter], "pricing": ["pricing"], "chat": ["openai"]], models: ["gpt-4o-mini": [ModelRoute(instance: "openai")]])]
        config.plugins.defaultTier = "bench"

        let app = try await OrionApplication.build(config: config, logger: logger, deployment: spec)
        let gateway = try await GatewayServer.build(app: app, registry: PrometheusCollectorRegistry(), logger: logger)
        let ports = AsyncStream.makeStream(of: Int.self)
        let server = gateway.application { ports.continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)] + app.services.map { .init(service: $0) }, logger: logger))
        let serving = Task { try await group.run() }
        var gatewayPort = 0
        for await bound in ports.stream {
            gatewayPort = bound
            break
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(connectionPool: .init(idleTimeout: .seconds(60))))
        let token = try await Self.token(config)
        let body = ByteBuffer(string: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"how many moons does mars have"}],"max_tokens":32}"#)

        var direct = Figures(rps: 0, p50: .infinity, p99: .infinity), orion = direct
        for _ in 0..<rounds {
            direct = direct.best(try await measure(client, url: "http://127.0.0.1:\(port)/v1/chat/completions", token: nil, body: body))
            orion = orion.best(try await measure(client, url: "http://127.0.0.1:\(gatewayPort)/v1/chat/completions", token: token, body: body))
        }
        var recorded: Int?
        if let usage = app.usage {
            _ = try await usage.flush()
            recorded = try await usage.summary(hours: 1).reduce(0) { $0 + $1.calls }
        }
        try await client.shutdown()
        await group.triggerGracefulShutdown()
        _ = try? await serving.value
        upstreamTask.cancel()
        await app.runtime.shutdown()

        print("gateway --chat: \(requests) requests per figure, best of \(rounds) rounds; latency one at a time, requests/s with \(concurrency) clients, loopback")
        print("                      requests/s    p50 ms    p99 ms")
        for (name, f) in [("fake upstream direct", direct), ("through orion", orion)] {
            print(String(format: "  %-20@ %10.0f %9.3f %9.3f", name as NSString, f.rps, f.p50, f.p99))
        }
        print(String(format: "  orion adds %.3f ms at p50 and %.3f ms at p99 (target ≤ 1 ms at p50)", orion.p50 - direct.p50, orion.p99 - direct.p99))
        print(String(format: "  orion serves %.0f requests/s: %.0f× LiteLLM's 61–88 per worker measured on this machine (target ≥ 50×)", orion.rps, orion.rps / 88))
        if let recorded { print("  usage records written: \(recorded)") }
        if json {
            let object: [String: Double] = [
                "direct_rps": direct.rps, "orion_rps": orion.rps, "direct_p50_ms": direct.p50, "orion_p50_ms": orion.p50,
                "added_p50_ms": orion.p50 - direct.p50, "added_p99_ms": orion.p99 - direct.p99,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
