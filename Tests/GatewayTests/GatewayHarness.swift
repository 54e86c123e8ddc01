import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import OrionCore
import OrionGateway
import OrionTestSupport
import Prometheus
import ServiceLifecycle

/// A real gateway on a free loopback port, over a deployment with fts-sqlite and the GCRA limiter.
final class GatewayHarness: Sendable {
    static let secret = "test-secret-with-at-least-32-bytes!!"
    /// One registry for the process: swift-metrics' global factory (which plugin-call metrics use)
    /// is bootstrapped once, here, as `orion serve` does.
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
    let dir: String
    let port: Int
    let app: OrionApplication
    let gateway: GatewayServer
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    var base: String { "http://127.0.0.1:\(port)" }

    /// How the deployment embeds text.
    enum Embeddings {
        /// No embeddings engine: the tier searches by full text alone.
        case none
        /// embed-local on the files scripts/embed-setup.sh installs, exact vector search, and a
        /// hybrid retriever (vector + fts) as the tier's primary.
        case local
        /// As `local`, but the embed-local instance is refused at load (its model is missing).
        case broken
    }

    /// Engines for the tier: instance files to add, capabilities to map and the tier's `models`.
    struct Engines {
        var files: [String: String] = [:]
        var capabilities = ""
        var models = ""
        var costCapUSD = 50.0
    }

    static func start(
        rateLimit: Int = 1000, quota: Int? = nil, embeddings: Embeddings = .none, engines: Engines? = nil,
        configure: (inout RuntimeConfig) -> Void = { _ in }
    ) async throws -> GatewayHarness {
        let dir = TestPlugins.temporaryDirectory("orion-gateway")
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws { try text.write(toFile: pluginsD + "/" + name, atomically: true, encoding: .utf8) }
        try write("fts.yaml", "id: fts\nplugin: fts-sqlite\n")
        try write("fts2.yaml", "id: fts2\nplugin: fts-sqlite\n")
        try write("ratelimit.yaml", "id: ratelimit\nplugin: ratelimit-gcra\nconfig: { limit: \(rateLimit), periodSeconds: 60 }\n")
        var capabilities = "retrieval: [fts], rate_limit: ratelimit"
        if let quota {
            try write("quota.yaml", "id: quota\nplugin: ratelimit-gcra\nconfig: { limit: \(quota), periodSeconds: 3600 }\n")
            capabilities += ", quota: quota"
        }
        if embeddings != .none {
            try write("embed.yaml", EmbedFiles.instanceYAML(model: embeddings == .broken ? dir + "/missing.onnx" : nil))
            try write("vector.yaml", "id: vector\nplugin: vector-flat\n")
            try write("hybrid.yaml", "id: hybrid\nplugin: hybrid-rrf\nconfig: { sources: [{ id: vector }, { id: fts }] }\n")
            capabilities = capabilities.replacingOccurrences(of: "retrieval: [fts]", with: "retrieval: [hybrid, fts], embeddings: embed")
        }
        var tierExtra = ""
        var cap = ""
        if let engines {
            for (name, text) in engines.files { try write(name, text) }
            if !engines.capabilities.isEmpty { capabilities += ", " + engines.capabilities }
            if !engines.models.isEmpty { tierExtra = "    models: \(engines.models)\n" }
            cap = ", costCapUsd: \(engines.costCapUSD)"
        }
        capabilities = "{ \(capabilities) }"
        try write("tiers.yaml", "tiers:\n  free:\n    limits: { requestsPerHour: \(quota ?? 100)\(cap) }\n    capabilities: \(capabilities)\n" + tierExtra)
        var config = RuntimeConfig()
        config.dataDirectory = dir
        config.workspaceBasePath = dir + "/workspaces"
        config.plugins.directory = pluginsD
        config.plugins.searchPaths = [TestPlugins.directory]
        config.plugins.watchIntervalSeconds = 0
        config.gateway.port = 0
        config.auth.hs256Secret = secret
        configure(&config)
        var logger = Logger(label: "gateway-test")
        logger.logLevel = .critical
        let app = try await OrionApplication.build(config: config, logger: logger)
        let gateway = try await GatewayServer.build(app: app, registry: registry, logger: logger)
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = gateway.application { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await bound in stream {
            port = bound
            break
        }
        return GatewayHarness(dir: dir, port: port, app: app, gateway: gateway, group: group, task: task)
    }

    private init(dir: String, port: Int, app: OrionApplication, gateway: GatewayServer, group: ServiceGroup, task: Task<Void, any Error>) {
        self.dir = dir
        self.port = port
        self.app = app
        self.gateway = gateway
        self.group = group
        self.task = task
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? await client.shutdown()
        await app.runtime.shutdown()
    }

    /// A signed HS256 token; `edit` changes the claims.
    static func token(
        tenant: String? = "acme", user: String = "alice", roles: [String] = ["member"], secret: String = secret,
        edit: (inout TokenClaims) -> Void = { _ in }
    ) async throws -> String {
        var claims = TokenClaims(
            sub: .init(value: user), exp: .init(value: Date().addingTimeInterval(600)), nbf: nil, iss: .init(value: "orion"),
            aud: .init(value: ["orion-api"]), tenant: tenant, roles: roles)
        edit(&claims)
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    func send(_ method: HTTPMethod, _ path: String, token: String? = nil, json: Any? = nil, raw: Data? = nil, headers: [(String, String)] = []) async throws -> Reply {
        try await Self.send(client, base + path, method, token: token, json: json, raw: raw, headers: headers)
    }

    /// One request to `url` (any server: this gateway, or an `orion serve` process).
    static func send(
        _ client: HTTPClient, _ url: String, _ method: HTTPMethod, token: String? = nil, json: Any? = nil, raw: Data? = nil, headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: json))))
        } else if let raw {
            request.body = .bytes(ByteBuffer(bytes: Array(raw)))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 10 << 20)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: headers, body: Data(body.readableBytesView))
    }
}
