import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OrionCore
import Synchronization

/// Global backpressure: at most `limit` requests in flight; the rest get 503 with `Retry-After`.
struct InFlightMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let limit: Int
    let retryAfter: Int
    let counter = InFlightCounter()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard counter.enter(limit: limit) else {
            throw GatewayError(
                .serviceUnavailable, code: "OVERLOADED", "the server is at its limit of \(limit) requests in flight; retry shortly",
                headers: [.retryAfter: String(retryAfter)])
        }
        defer { counter.leave() }
        return try await next(request, context)
    }
}

/// Requests in flight, in total or per key.
final class InFlightCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func enter(_ key: String = "", limit: Int) -> Bool {
        counts.withLock { counts in
            let current = counts[key, default: 0]
            guard current < limit else { return false }
            counts[key] = current + 1
            return true
        }
    }

    func leave(_ key: String = "") {
        counts.withLock { counts in
            let left = counts[key, default: 1] - 1
            counts[key] = left > 0 ? left : nil
        }
    }
}

/// Bearer-token authentication for every route outside `publicPaths`: 401 with
/// `WWW-Authenticate` when the token is missing or refused.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let verifier: TokenVerifier
    let publicPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if publicPaths.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw GatewayError(
                .unauthorized, code: "UNAUTHENTICATED", "send 'Authorization: Bearer <token>'",
                headers: [.wwwAuthenticate: "Bearer realm=\"orion\""], violation: "auth")
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw Self.refused("the Authorization header must use the Bearer scheme")
        }
        do {
            var context = context
            context.identity = try await verifier.verify(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
            return try await next(request, context)
        } catch let refusal as TokenRefusal {
            throw Self.refused(refusal.message)
        }
    }

    static func refused(_ message: String) -> GatewayError {
        let quoted = message.replacingOccurrences(of: "\"", with: "'")
        return GatewayError(
            .unauthorized, code: "INVALID_TOKEN", message,
            headers: [.wwwAuthenticate: "Bearer realm=\"orion\", error=\"invalid_token\", error_description=\"\(quoted)\""], violation: "auth")
    }
}

/// Resolves the caller's tenant (cached for `ttl` seconds, dropped when the tenant changes),
/// creates its workspace directory on first use, and holds the per-tenant in-flight limit.
struct TenantMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let resolver: TenantResolver
    let limitPerTenant: Int
    let retryAfter: Int
    let counter = InFlightCounter()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let identity = context.identity else { return try await next(request, context) }
        var context = context
        let tenant: ResolvedTenant
        if let cached = resolver.cached(identity.tenantID) {
            tenant = cached
        } else {
            let resolver = self.resolver
            tenant = try await resolver.resolve(identity)
        }
        context.tenant = tenant
        context.note.set(tenantID: tenant.tenant.id, tier: tenant.tier.name)
        guard counter.enter(tenant.tenant.id, limit: limitPerTenant) else {
            throw GatewayError(
                .serviceUnavailable, code: "TENANT_OVERLOADED",
                "this tenant has \(limitPerTenant) requests in flight, its limit; retry shortly", headers: [.retryAfter: String(retryAfter)])
        }
        defer { counter.leave(tenant.tenant.id) }
        return try await next(request, context)
    }
}

/// Tenant resolution with a TTL cache.
public final class TenantResolver: Sendable {
    let tenants: any TenantDirectory
    let registry: Registry
    let config: RuntimeConfig
    let ttl: Double
    private let cache = Mutex<[String: (ResolvedTenant, Double)]>([:])

    public init(tenants: any TenantDirectory, registry: Registry, config: RuntimeConfig) {
        self.tenants = tenants
        self.registry = registry
        self.config = config
        self.ttl = config.gateway.tenantCacheTTLSeconds
        // A change on any node (PostgreSQL NOTIFY) or in this process; nil: every entry may be stale.
        tenants.onChange { [weak self] id in
            if let id { self?.invalidate(id) } else { self?.invalidateAll() }
        }
    }

    public func invalidate(_ id: String) { cache.withLock { _ = $0.removeValue(forKey: id) } }
    public func invalidateAll() { cache.withLock { $0.removeAll() } }

    /// The cached resolution of `tenantID`, while fresh.
    func cached(_ tenantID: String) -> ResolvedTenant? {
        let now = GatewayTelemetry.monotonic()
        guard let (cached, expires) = cache.withLock({ $0[tenantID] }), expires > now else { return nil }
        return cached
    }

    /// Resolves from the tenant store, and makes the tenant's workspace directory.
    func resolve(_ identity: Identity) async throws -> ResolvedTenant {
        let now = GatewayTelemetry.monotonic()
        if let cached = cached(identity.tenantID) { return cached }
        var tenant = try await tenants.tenant(id: identity.tenantID)
        if tenant == nil {
            guard config.auth.autoProvisionTenants || !config.multiTenantEnabled else {
                throw GatewayError(.forbidden, code: "UNKNOWN_TENANT", "tenant '\(identity.tenantID)' does not exist", violation: "auth")
            }
            tenant = try await tenants.createIfMissing(
                id: identity.tenantID, name: "personal tenant of \(identity.userID)", tier: config.plugins.defaultTier)
        }
        // Either found or created just above.
        let found = tenant!
        guard let tier = registry.snapshot.tiers[found.tier] else {
            throw GatewayError(
                .serviceUnavailable, code: "TIER_UNAVAILABLE", "tenant '\(found.id)' is on tier '\(found.tier)', which this deployment does not define",
                headers: [.retryAfter: "30"])
        }
        let workspace = (config.workspaceBasePath as NSString).appendingPathComponent(found.id)
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let resolved = ResolvedTenant(tenant: found, tier: tier, workspace: workspace)
        if ttl > 0 {
            cache.withLock { cache in
                // Expired entries go when the cache grows, so it holds about the active tenants.
                if cache.count >= 4096 { cache = cache.filter { $0.value.1 > now } }
                cache[found.id] = (resolved, now + ttl)
            }
        }
        return resolved
    }
}

/// RBAC: whether the caller's roles grant `permission`; 403 otherwise (routes call it first).
extension GatewayContext {
    public func authorize(_ permission: String, _ rbac: RuntimeConfig.RBAC) throws {
        guard let identity else { throw AuthMiddleware.refused("this route needs a bearer token") }
        guard rbac.allows(identity.roles, permission) else {
            throw GatewayError(
                .forbidden, code: "FORBIDDEN", "your roles (\(identity.roles.joined(separator: ", "))) do not grant '\(permission)'",
                violation: "rbac")
        }
    }
}
