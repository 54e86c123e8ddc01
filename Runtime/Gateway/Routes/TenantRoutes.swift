import Crypto
import Foundation
import Hummingbird
import OrionCore

/// Tenants for operators (permission `admin:tenants`): `GET /api/admin/tenants`,
/// `GET /api/admin/tenants/{id}` and `PUT /api/admin/tenants/{id}`. A change reaches every node:
/// each drops its cached resolution of the tenant (docs/operations.md). It is in the audit trail
/// of the operator's tenant (as every change is) and of the tenant changed.
struct TenantRoutes: Sendable {
    let tenants: any TenantDirectory
    let registry: Registry
    let audit: AuditTrail
    let node: String
    let rbac: RuntimeConfig.RBAC

    static let putSchema = BodySchema([
        "name": .required(.string(1...200)),
        "tier": .required(.string(1...100)),
        "costCapUsd": .optional(.number(0...1_000_000)),
    ])

    func add(to router: Router<GatewayContext>) {
        let group = router.group("api/admin/tenants")
        group.get { _, context in try await self.list(context) }
        group.get("{id}") { _, context in try await self.show(context) }
        group.put("{id}") { request, context in try await self.put(request, context) }
    }

    static func json(_ tenant: Tenant) -> [String: Any] {
        var object: [String: Any] = [
            "id": tenant.id, "name": tenant.name, "tier": tenant.tier, "createdAt": tenant.createdAt, "updatedAt": tenant.updatedAt,
        ]
        if let cap = tenant.costCapUSD { object["costCapUsd"] = cap }
        return object
    }

    func list(_ context: GatewayContext) async throws -> Response {
        try context.authorize("admin:tenants", rbac)
        let all = try await tenants.all()
        return try JSONResponse.make(.ok, ["tenants": all.map(Self.json)], context: context)
    }

    func show(_ context: GatewayContext) async throws -> Response {
        try context.authorize("admin:tenants", rbac)
        let id = context.parameters.get("id") ?? ""
        guard let tenant = try await tenants.tenant(id: id) else { throw GatewayError.notFound("no tenant '\(id)'") }
        return try JSONResponse.make(.ok, Self.json(tenant), context: context)
    }

    /// Creates or replaces a tenant; its tier must be one the deployment defines.
    func put(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("admin:tenants", rbac)
        let id = context.parameters.get("id") ?? ""
        guard TenantStore.isValidID(id) else {
            throw GatewayError.badRequest("tenant id '\(id)' is invalid: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'", field: "id")
        }
        var request = request
        // Bounded by the body middleware before it gets here.
        let raw = try await request.collectBody(upTo: .max)
        let body = try await Self.putSchema.parse(request)
        let tier = body.string("tier") ?? ""
        let tiers = registry.snapshot.tiers
        guard tiers[tier] != nil else {
            throw GatewayError.badRequest("tier '\(tier)' is not deployed; use one of: \(tiers.keys.sorted().joined(separator: ", "))", field: "/tier")
        }
        let existed = try await tenants.tenant(id: id) != nil
        let tenant = try await tenants.upsert(id: id, name: body.string("name") ?? "", tier: tier, costCapUSD: body.double("costCapUsd"))
        if id != context.tenant?.tenant.id {
            audit.record(AuditEntry(
                at: Int64(Date().timeIntervalSince1970 * 1000), tenant: id, actor: context.identity?.userID ?? "unknown",
                action: "PUT /api/admin/tenants/{id}", path: request.uri.path, status: existed ? 200 : 201,
                digest: "sha256:" + SideEffectMiddleware.hex(SHA256.hash(data: Data(raw.readableBytesView))), node: node))
        }
        return try JSONResponse.make(existed ? .ok : .created, Self.json(tenant), context: context)
    }
}
