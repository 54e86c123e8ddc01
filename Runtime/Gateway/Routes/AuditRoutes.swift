import Foundation
import Hummingbird
import OrionCore

/// `GET /api/audit?tenant=&since=&limit=`: the audit trail of one tenant (permission `audit:read`;
/// another tenant's needs `admin:tenants`), newest first — every change made through the API, on
/// every node that shares the store.
struct AuditRoutes: Sendable {
    let audit: AuditTrail
    let rbac: RuntimeConfig.RBAC

    func add(to router: Router<GatewayContext>) {
        router.get("api/audit") { request, context in try await self.list(request, context) }
    }

    func list(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("audit:read", rbac)
        let caller = try context.requireTenant()
        let query = request.uri.queryParameters
        let tenant = query.get("tenant").flatMap { $0.isEmpty ? nil : $0 } ?? caller.tenant.id
        if tenant != caller.tenant.id { try context.authorize("admin:tenants", rbac) }
        let since = try query.get("since").map { text -> Int64 in
            guard let value = Int64(text), value >= 0 else {
                throw GatewayError.badRequest("since must be a time in milliseconds since the Unix epoch (a whole number ≥ 0)", field: "since")
            }
            return value
        } ?? 0
        let limit = try query.get("limit").map { text -> Int in
            guard let value = Int(text), (1...1000).contains(value) else { throw GatewayError.badRequest("limit must be a whole number from 1 to 1000", field: "limit") }
            return value
        } ?? 100
        // This node's entries still queued are written first, so a caller sees its own changes
        // (when that fails, the writer retries; what is stored is still read).
        _ = try? await audit.flush()
        let entries = try await audit.store.entries(tenant: tenant, since: since, limit: limit)
        let objects: [[String: Any]] = entries.map {
            ["id": $0.id, "at": $0.at, "actor": $0.actor, "action": $0.action, "path": $0.path, "status": $0.status, "digest": $0.digest, "node": $0.node]
        }
        return try JSONResponse.make(.ok, ["tenant": tenant, "entries": objects], context: context)
    }
}
