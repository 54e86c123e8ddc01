import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// `/health`, `/ready`, `/metrics` (public), admin and analytics routes.
struct SystemRoutes {
    let app: OrionApplication
    let telemetry: GatewayTelemetry
    let store: GatewayStore
    let rbac: RuntimeConfig.RBAC
    let readiness = StoreProbe()

    static let publicPaths: Set<String> = ["/health", "/ready", "/metrics", "/openapi.json"]
    static let swapSchema = BodySchema(["instances": .required(.strings(1...8))])

    func add(to router: Router<GatewayContext>) {
        router.get("health") { _, context in try JSONResponse.make(.ok, ["status": "ok"], context: context) }
        router.get("ready") { _, context in try await self.ready(context) }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: self.telemetry.exposition())))
        }
        router.get("openapi.json") { _, _ in
            guard let data = OpenAPIDocument.served(tools: self.app.tools.allTools()) else {
                throw GatewayError(.notFound, code: "NOT_FOUND", "the OpenAPI document is not installed beside the executable (orion_OrionGateway.resources)")
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        let admin = router.group("api/admin")
        admin.get("plugins") { _, context in try self.plugins(context) }
        admin.post("reload") { _, context in try await self.reload(context) }
        admin.put("tiers/{tier}/retriever") { request, context in try await self.swap(request, context) }
        router.get("api/analytics/tenants/{id}") { request, context in try await self.analytics(request, context) }
        router.get("api/health/history") { request, context in try await self.healthHistory(request, context) }
    }

    /// Ready when plugins are loaded, every tier capability has a loaded instance, and the document
    /// store takes writes (probed at most once a second, so a busy prober does not compete with
    /// real writes).
    func ready(_ context: GatewayContext) async throws -> Response {
        var problems: [String] = []
        let snapshot = app.runtime.registry.snapshot
        if snapshot.instances.isEmpty { problems.append("no plugin instance is loaded") }
        problems += snapshot.unservedCapabilities
        let (readiness, store) = (self.readiness, app.documents.store)
        if let storeProblem = try await Blocking.run({ readiness.storeProblem(store) }) { problems.append(storeProblem) }
        if let shared = await app.state.problem() { problems.append(shared) }
        let status: HTTPResponse.Status = problems.isEmpty ? .ok : .serviceUnavailable
        return try JSONResponse.make(
            status, ["status": problems.isEmpty ? "ready" : "not_ready", "problems": problems, "instances": app.runtime.registry.snapshot.instances.count],
            headers: problems.isEmpty ? [:] : [.retryAfter: "5"], context: context)
    }

    /// `?hours=24`: the health snapshots of the last hours (at most `health.retentionHours`), oldest first.
    func healthHistory(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("health:read", rbac)
        let retention = app.config.health.retentionHours
        let hours = try request.uri.queryParameters.get("hours").map { text -> Double in
            guard let value = Double(text), value > 0, value <= retention else {
                throw GatewayError.badRequest("hours must be a number above 0 and at most \(retention) (health.retentionHours)", field: "hours")
            }
            return value
        } ?? retention
        let health = app.health
        let snapshots = try await Blocking.run { try health.historyJSON(hours: hours) }
        // The snapshots are stored as JSON objects: the answer is assembled around them as they are.
        let body = Data("{\"intervalSeconds\":\(app.config.health.snapshotIntervalSeconds),\"snapshots\":[\(snapshots.joined(separator: ","))]}".utf8)
        context.note.body = body
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    func plugins(_ context: GatewayContext) throws -> Response {
        try context.authorize("admin:plugins", rbac)
        let snapshot = app.runtime.registry.snapshot
        let instances: [[String: Any]] = snapshot.instances.values.sorted { $0.id < $1.id }.map { handle in
            [
                "id": handle.id, "plugin": handle.info.id, "version": handle.info.version, "sha256": handle.sha256,
                "kinds": PluginKind.all.filter { handle.info.kinds.contains($0) }.map(\.name), "tiers": snapshot.tiers(using: handle.id),
            ]
        }
        let tiers: [String: Any] = snapshot.tiers.mapValues { ["requestsPerHour": $0.requestsPerHour, "costCapUsd": $0.costCapUSD, "capabilities": $0.capabilities] }
        return try JSONResponse.make(.ok, ["generation": snapshot.generation, "instances": instances, "tiers": tiers], context: context)
    }

    func reload(_ context: GatewayContext) async throws -> Response {
        try context.authorize("admin:plugins", rbac)
        do {
            let report = try await app.runtime.reload(reason: "admin API")
            return try JSONResponse.make(.ok, ["generation": report.generation, "refusals": report.refusals.map(\.description)], context: context)
        } catch {
            throw GatewayError(.conflict, code: "RELOAD_REFUSED", "\(error)")
        }
    }

    func swap(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("admin:plugins", rbac)
        let tier = context.parameters.get("tier") ?? ""
        let body = try await Self.swapSchema.parse(request)
        let ids = body.strings("instances") ?? []
        guard app.runtime.registry.snapshot.tiers[tier] != nil else { throw GatewayError.notFound("no tier '\(tier)' is deployed") }
        do {
            let report = try await app.runtime.swap(tier: tier, capability: "retrieval", to: ids)
            return try JSONResponse.make(.ok, ["tier": tier, "retrieval": ids, "generation": report.generation], context: context)
        } catch {
            throw GatewayError(.conflict, code: "SWAP_REFUSED", "\(error)")
        }
    }

    func analytics(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("analytics:read", rbac)
        let tenant = try context.requireTenant()
        let id = context.parameters.get("id") ?? ""
        if id != tenant.tenant.id { try context.authorize("admin:tenants", rbac) }
        let raw = request.uri.queryParameters.get("windowSeconds")
        let window = raw.map { Int($0) ?? 0 } ?? 3600
        guard (1...2_592_000).contains(window) else {
            throw GatewayError.badRequest("windowSeconds must be a whole number from 1 to 2592000", field: "windowSeconds")
        }
        let since = Int64(Date().timeIntervalSince1970 * 1000) - Int64(window) * 1000
        let (telemetry, store) = (self.telemetry, self.store)
        let a = try await Blocking.run {
            telemetry.flush()
            return try store.analytics(tenant: id, since: since)
        }
        let object: [String: Any] = [
            "tenant": id, "windowSeconds": window, "requests": a.count, "errors": a.errors,
            "errorRate": a.count == 0 ? 0 : Double(a.errors) / Double(a.count), "throughputPerSecond": Double(a.count) / Double(window),
            "latencyMs": ["p50": a.p50, "p95": a.p95, "p99": a.p99], "requestsByRoute": a.byRoute,
        ]
        return try JSONResponse.make(.ok, object, context: context)
    }
}

/// The document store's writability, probed at most once a second.
final class StoreProbe: Sendable {
    private let last = Mutex<(at: Double, problem: String?)>((-1, nil))

    func storeProblem(_ store: DocumentStore) -> String? {
        let now = GatewayTelemetry.monotonic()
        if let cached = last.withLock({ now - $0.at < 1 ? $0 : nil }) { return cached.problem }
        var problem: String?
        do {
            try store.checkWritable()
        } catch {
            problem = "the document store does not take writes: \(error)"
        }
        last.withLock { $0 = (now, problem) }
        return problem
    }
}
