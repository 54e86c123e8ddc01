import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import OrionCore
import OrionGateway
import OrionPluginHost
import Prometheus
import ServiceLifecycle

/// `orion bench gateway`: on loopback, in one process run, the same tiny JSON route served bare by
/// Hummingbird (the floor) and through the whole gateway chain (auth, tenant, RBAC, rate limit,
/// metrics), plus an authenticated memory search. Latency is measured one request at a time on a
/// kept-alive connection; throughput with `--concurrency` clients.
struct BenchGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway", abstract: "Requests/s and p50/p99 of a bare route, the full gateway chain and a memory search.")

    @Option(help: "Requests per measurement.") var requests = 5000
    @Option(help: "Concurrent clients for the requests/s figures.") var concurrency = 8
    @Option(help: "Rounds; each measures all three, and each keeps its best round.") var rounds = 3
    @Option(help: "Memories stored before the search measurement.") var memories = 1000
    @Option(help: "The retriever instance id from plugins.d the tier searches with.") var retriever = "fts"
    @Option(help: "The rate limiter instance id from plugins.d (its limit is raised for the bench).") var limiter = "ratelimit"
    @Flag(help: "Measure /v1/chat/completions through Orion against a loopback fake upstream called directly.") var chat = false
    @Flag(help: "End with one JSON object.") var json = false
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        guard requests >= 100, concurrency >= 1, memories >= 1, rounds >= 1 else {
            throw ValidationError("--requests must be at least 100; --concurrency, --memories and --rounds at least 1")
        }
    }

    struct Figures {
        var rps: Double
        var p50: Double
        var p99: Double

        func best(_ other: Figures) -> Figures {
            Figures(rps: max(rps, other.rps), p50: min(p50, other.p50), p99: min(p99, other.p99))
        }
    }

    func run() async throws {
        if chat { return try await runChat() }
        var (config, logger, scratch) = try benchConfig()
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        // The deployment: the retriever (and its sources) and the limiter from plugins.d, the
        // limiter's limit raised so the bench measures its cost, not its refusals.
        var spec = try BenchRetrieval.deployment(for: retriever, in: config)
        let full = try DeploymentSpec.load(directory: config.plugins.directory)
        guard let limit = full.instances.first(where: { $0.id == limiter }) else { throw ValidationError("no instance '\(limiter)' in \(config.plugins.directory)") }
        spec.instances.append(BenchRetrieval.detached(limit, overrides: ["limit": .number(1e9)]))
        spec.tiers = [TierSpec(name: "bench", requestsPerHour: 1_000_000, costCapUSD: 0, capabilities: ["retrieval": [retriever], "rate_limit": [limiter]])]
        config.plugins.defaultTier = "bench"

        let registry = PrometheusCollectorRegistry()
        let app = try await OrionApplication.build(config: config, logger: logger, deployment: spec)
        let gateway = try await GatewayServer.build(app: app, registry: registry, logger: logger)
        let router = gateway.router()
        let rbac = config.rbac
        let payload = ByteBuffer(string: #"{"status":"ok"}"#)
        router.get("api/bench/echo") { _, context in
            try context.authorize("memory:read", rbac)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: payload))
        }
        let floorRouter = Router()
        floorRouter.get("floor") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: payload)) }

        let ports = AsyncStream.makeStream(of: Int.self)
        let floorApp = Application(
            router: floorRouter, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { ports.continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let chainApp = gateway.application(router: router) { ports.continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: floorApp), .init(service: chainApp)], logger: logger))
        let serving = Task { try await group.run() }
        var bound: [Int] = []
        for await port in ports.stream {
            bound.append(port)
            if bound.count == 2 { break }
        }
        // Which port is which does not matter for binding order, so ask each.
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(connectionPool: .init(idleTimeout: .seconds(60))))
        var floorPort = bound[0], chainPort = bound[1]
        if try await status(client, "http://127.0.0.1:\(floorPort)/floor", token: nil) != 200 { swap(&floorPort, &chainPort) }

        let token = try await Self.token(config)
        var inputs: [MemoryInput] = []
        for n in 0..<memories {
            inputs.append(MemoryInput(session: "bench", intent: "\(LearningScenario().task(n % 80)) step \(n)", experience: "experience \(n)"))
        }
        try await app.memory.store(inputs, namespace: Namespace.forTenant("bench"))
        let searchBody = ByteBuffer(string: #"{"intent":"deploy the billing service in staging tonight","topK":5}"#)

        // Rounds interleave the three, and each keeps its best round, so a noisy neighbour on the
        // machine does not decide one figure and spare another.
        var floor = Figures(rps: 0, p50: .infinity, p99: .infinity), chain = floor, search = floor
        for _ in 0..<rounds {
            floor = floor.best(try await measure(client, url: "http://127.0.0.1:\(floorPort)/floor", token: nil, body: nil))
            chain = chain.best(try await measure(client, url: "http://127.0.0.1:\(chainPort)/api/bench/echo", token: token, body: nil))
            search = search.best(try await measure(client, url: "http://127.0.0.1:\(chainPort)/api/memory/search", token: token, body: searchBody))
        }
        try await client.shutdown()
        await group.triggerGracefulShutdown()
        _ = try? await serving.value
        await app.runtime.shutdown()

        print("gateway: \(requests) requests per figure, best of \(rounds) rounds; latency one at a time, requests/s with \(concurrency) clients, loopback")
        print("                 requests/s    p50 ms    p99 ms    ÷ floor (p50)")
        for (name, f) in [("floor (bare)", floor), ("full chain", chain), ("memory search", search)] {
            print(String(format: "  %-14@ %10.0f %9.3f %9.3f    %.2f×", name as NSString, f.rps, f.p50, f.p99, f.p50 / floor.p50))
        }
        print(String(format: "  the chain adds %.3f ms at p50 (target ≤ 0.3 ms)", chain.p50 - floor.p50))
        if json {
            let object: [String: Double] = [
                "floor_rps": floor.rps, "chain_rps": chain.rps, "search_rps": search.rps, "floor_p50_ms": floor.p50,
                "chain_p50_ms": chain.p50, "chain_p99_ms": chain.p99, "added_p50_ms": chain.p50 - floor.p50,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// The deployment's configuration in a scratch data directory, served on a free port without
    /// in-flight limits and signing tokens with a fresh secret (see ``token(_:)``).
    func benchConfig() throws -> (config: RuntimeConfig, logger: Logger, scratch: String) {
        #if DEBUG
        print("note: this is a debug build; run `swift build -c release` and .build/release/orion for meaningful figures")
        #endif
        var (config, logger, scratch) = try options.benchDeployment()
        config.plugins.watchIntervalSeconds = 0
        config.gateway.port = 0
        config.gateway.maxInFlight = 100_000
        config.gateway.maxInFlightPerTenant = 100_000
        config.auth.publicKeyFile = nil
        config.auth.jwksFile = nil
        config.auth.hs256Secret = UUID().uuidString + UUID().uuidString
        return (config, logger, scratch)
    }

    /// A member's token of tenant `bench`, signed with the bench configuration's secret.
    static func token(_ config: RuntimeConfig) async throws -> String {
        try await JWTKeyCollection().add(hmac: HMACKey(from: config.auth.hs256Secret ?? ""), digestAlgorithm: .sha256).sign(
            TokenClaims(
                sub: .init(value: "bench"), exp: .init(value: Date().addingTimeInterval(3600)), iss: .init(value: config.auth.issuer),
                aud: .init(value: [config.auth.audience]), tenant: "bench", roles: ["member"]))
    }

    func status(_ client: HTTPClient, _ url: String, token: String?) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// One sequential pass for latency, one concurrent pass for throughput (after a warm-up).
    func measure(_ client: HTTPClient, url: String, token: String?, body: ByteBuffer?) async throws -> Figures {
        func once() async throws -> Double {
            var request = HTTPClientRequest(url: url)
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            if let body {
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(body)
            }
            let start = ContinuousClock.now
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw ValidationError("\(url) answered \(response.status.code)") }
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        }
        for _ in 0..<min(500, requests) { _ = try await once() }
        var latencies: [Double] = []
        latencies.reserveCapacity(requests)
        for _ in 0..<requests { latencies.append(try await once()) }
        latencies.sort()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                let share = requests / concurrency + (worker < requests % concurrency ? 1 : 0)
                group.addTask { for _ in 0..<share { _ = try await once() } }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Figures(
            rps: Double(requests) / seconds, p50: latencies[latencies.count / 2],
            p99: latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))])
    }
}
