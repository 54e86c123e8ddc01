import Foundation

/// The `gateway`, `auth` and `rbac` sections of `orion.yaml`: how the HTTP gateway listens, whom
/// it trusts and what each role may do (docs/api.md, docs/security.md, docs/rate-limit-policy.md).
///
/// - Configuration keys (YAML key — environment variable — type, default):
///   - `gateway.host` — `ORION_HOST` — address, `127.0.0.1`.
///   - `gateway.port` — `ORION_PORT` — integer 0…65535, `8080` (0 picks a free port).
///   - `gateway.maxBodyBytes` — `ORION_MAX_BODY_BYTES` — integer ≥ 1, `1048576`; larger bodies get 413.
///   - `gateway.maxInFlight` — `ORION_MAX_IN_FLIGHT` — integer ≥ 1, `512`: requests served at once
///     before 503.
///   - `gateway.maxInFlightPerTenant` — `ORION_MAX_IN_FLIGHT_PER_TENANT` — integer ≥ 1, `64`.
///   - Rate limits are not set here: they are the tier's `rate_limit` and `quota` limiter plugins
///     in `plugins.d/` (docs/rate-limit-policy.md).
///   - `gateway.idempotencyTtlSeconds` — `ORION_IDEMPOTENCY_TTL_SECONDS` — number > 0, `86400`.
///   - `gateway.tenantCacheTtlSeconds` — `ORION_TENANT_CACHE_TTL_SECONDS` — number ≥ 0, `30`.
///   - `gateway.corsAllowedOrigins` — `ORION_CORS_ORIGINS` (comma-separated) — list, `[]` (no CORS).
///   - `gateway.retryAfterSeconds` — `ORION_RETRY_AFTER_SECONDS` — integer ≥ 1, `1`: the
///     `Retry-After` of a 503.
///   - `gateway.streamEventLimit` — `ORION_STREAM_EVENT_LIMIT` — integer ≥ 1, `200`, and
///     `gateway.streamEventWindowSeconds` — `ORION_STREAM_EVENT_WINDOW_SECONDS` — number in (0, 3600],
///     `1`: events one client (tenant, user, IP) may send per event type over `/v1/stream` per window;
///     the next is refused with an error frame carrying `retryAfterMs`.
///   - `auth.issuer` — `ORION_JWT_ISSUER` — text, `orion`: the `iss` every token must carry.
///   - `auth.audience` — `ORION_JWT_AUDIENCE` — text, `orion-api`: a value `aud` must contain.
///   - `auth.hs256Secret` — `ORION_JWT_HS256_SECRET` — text of ≥ 32 bytes. In development, when no
///     key is set at all, a random secret is made and kept in `<dataDirectory>/jwt-dev-secret`.
///   - `auth.publicKeyFile` — `ORION_JWT_PUBLIC_KEY_FILE` — path to a PEM RSA (RS256) or P-256
///     (ES256) public key.
///   - `auth.jwksFile` — `ORION_JWT_JWKS_FILE` — path to a JWKS document (RS256/ES256 keys by `kid`).
///     Production requires one of the three.
///   - `auth.leewaySeconds` — `ORION_JWT_LEEWAY_SECONDS` — integer ≥ 0, `30`: clock skew allowed on
///     `exp` and `nbf`.
///   - `auth.autoProvisionTenants` — `ORION_AUTO_PROVISION_TENANTS` — bool, `true`: a token naming
///     an unknown tenant gets a personal tenant of its user on `plugins.defaultTier`.
///   - `rbac.roles` — (no variable) — mapping role → list of `resource:action` or `tool:<name>:call` permissions (`*`
///     for all, `memory:*` for every action on one resource). Default: see ``RuntimeConfig/RBAC``.
extension RuntimeConfig {
    public struct Gateway: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var maxBodyBytes = 1_048_576
        public var maxInFlight = 512
        public var maxInFlightPerTenant = 64
        public var idempotencyTTLSeconds = 86_400.0
        public var tenantCacheTTLSeconds = 30.0
        public var corsAllowedOrigins: [String] = []
        public var retryAfterSeconds = 1
        public var streamEventLimit = 200
        public var streamEventWindowSeconds = 1.0
    }

    public struct Auth: Sendable, Equatable {
        public var issuer = "orion"
        public var audience = "orion-api"
        public var hs256Secret: String?
        public var publicKeyFile: String?
        public var jwksFile: String?
        public var leewaySeconds = 30
        public var autoProvisionTenants = true

        /// True when an operator configured a verification key.
        public var hasKey: Bool { hs256Secret != nil || publicKeyFile != nil || jwksFile != nil }
    }

    /// Roles and their permissions.
    public struct RBAC: Sendable, Equatable {
        public var roles: [String: [String]] = [
            "admin": ["*"],
            "member": ["memory:read", "memory:write", "chat:create", "usage:read", "runs:read", "runs:cancel", "events:read", "tool:*"],
            "viewer": ["memory:read", "usage:read", "runs:read", "events:read"],
            "analyst": ["analytics:read", "usage:read", "audit:read"],
        ]

        /// `*`, `resource:action` (the action may be `*`), or `tool:<name>:call` for one tool.
        static func isPermission(_ text: String) -> Bool {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            if text == "*" { return true }
            if parts.count == 2 { return parts.allSatisfy { !$0.isEmpty } }
            return parts.count == 3 && parts[0] == "tool" && !parts[1].isEmpty && parts[2] == "call"
        }

        /// Whether any of `roles` grants `permission` (`resource:action`).
        public func allows(_ roles: [String], _ permission: String) -> Bool {
            let resource = permission.split(separator: ":").first.map(String.init) ?? permission
            for role in roles {
                for granted in self.roles[role] ?? [] where granted == "*" || granted == permission || granted == "\(resource):*" {
                    return true
                }
            }
            return false
        }
    }

    static let gatewayKeyNames: Set<String> = [
        "host", "port", "maxBodyBytes", "maxInFlight", "maxInFlightPerTenant", "idempotencyTtlSeconds",
        "tenantCacheTtlSeconds", "corsAllowedOrigins", "retryAfterSeconds", "streamEventLimit", "streamEventWindowSeconds",
    ]
    static let authKeyNames: Set<String> = ["issuer", "audience", "hs256Secret", "publicKeyFile", "jwksFile", "leewaySeconds", "autoProvisionTenants"]

    static let gatewayKeys: [Key] = [
        Key(path: "gateway.streamEventLimit", env: "ORION_STREAM_EVENT_LIMIT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.streamEventLimit = try n.integer(atLeast: 1)
        },
        Key(path: "gateway.streamEventWindowSeconds", env: "ORION_STREAM_EVENT_WINDOW_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.streamEventWindowSeconds = try n.number(in: 0.001...3600, "seconds in (0, 3600]")
        },
        Key(path: "gateway.host", env: "ORION_HOST", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.host = try n.nonEmptyString()
        },
        Key(path: "gateway.port", env: "ORION_PORT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let port = try n.integer(atLeast: 0)
            guard port <= 65_535 else { throw n.error("must be a TCP port, 0 to 65535, got \(port)") }
            c.gateway.port = port
        },
        Key(path: "gateway.maxBodyBytes", env: "ORION_MAX_BODY_BYTES", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.maxBodyBytes = try n.integer(atLeast: 1)
        },
        Key(path: "gateway.maxInFlight", env: "ORION_MAX_IN_FLIGHT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.maxInFlight = try n.integer(atLeast: 1)
        },
        Key(path: "gateway.maxInFlightPerTenant", env: "ORION_MAX_IN_FLIGHT_PER_TENANT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.maxInFlightPerTenant = try n.integer(atLeast: 1)
        },
        Key(path: "gateway.idempotencyTtlSeconds", env: "ORION_IDEMPOTENCY_TTL_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.idempotencyTTLSeconds = try n.number(in: 1...31_536_000, "seconds, at least 1")
        },
        Key(path: "gateway.tenantCacheTtlSeconds", env: "ORION_TENANT_CACHE_TTL_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.tenantCacheTTLSeconds = try n.number(in: 0...86_400, "seconds, 0 (no cache) to 86400")
        },
        Key(path: "gateway.corsAllowedOrigins", env: "ORION_CORS_ORIGINS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let origins: [String]
            if let text = n.scalarText {
                origins = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            } else {
                origins = try n.stringList()
            }
            if let bad = origins.first(where: { $0 != "*" && !($0.hasPrefix("http://") || $0.hasPrefix("https://")) }) {
                throw n.error("each origin must be '*' or start with http:// or https://, got '\(bad)'")
            }
            c.gateway.corsAllowedOrigins = origins
        },
        Key(path: "gateway.retryAfterSeconds", env: "ORION_RETRY_AFTER_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.gateway.retryAfterSeconds = try n.integer(atLeast: 1)
        },
        Key(path: "auth.issuer", env: "ORION_JWT_ISSUER", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.auth.issuer = try n.nonEmptyString()
        },
        Key(path: "auth.audience", env: "ORION_JWT_AUDIENCE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.auth.audience = try n.nonEmptyString()
        },
        Key(path: "auth.hs256Secret", env: "ORION_JWT_HS256_SECRET", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let secret = try n.nonEmptyString()
            guard secret.utf8.count >= 32 else { throw n.error("must be at least 32 bytes (256 bits) for HS256; got \(secret.utf8.count)") }
            c.auth.hs256Secret = secret
        },
        Key(path: "auth.publicKeyFile", env: "ORION_JWT_PUBLIC_KEY_FILE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.auth.publicKeyFile = try n.nonEmptyString()
        },
        Key(path: "auth.jwksFile", env: "ORION_JWT_JWKS_FILE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.auth.jwksFile = try n.nonEmptyString()
        },
        Key(path: "auth.leewaySeconds", env: "ORION_JWT_LEEWAY_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.auth.leewaySeconds = try n.integer(atLeast: 0)
        },
        Key(path: "auth.autoProvisionTenants", env: "ORION_AUTO_PROVISION_TENANTS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.auth.autoProvisionTenants = try n.boolValue()
        },
        Key(path: "rbac.roles", env: "", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            guard case .mapping(let pairs) = n.value else { throw n.error("must map each role to a list of permissions") }
            var roles: [String: [String]] = [:]
            for (role, list) in pairs {
                let permissions = try list.stringList()
                if let bad = permissions.first(where: { !RBAC.isPermission($0) }) {
                    throw list.error("permissions are 'resource:action', 'tool:<name>:call' or '*', got '\(bad)'")
                }
                roles[role] = permissions
            }
            c.rbac.roles = roles
        },
    ]

    /// Checks across gateway keys.
    func gatewayErrors() -> [ConfigError] {
        guard environment == .production, !auth.hasKey else { return [] }
        return [ConfigError(
            file: source, key: "auth",
            message: "production needs a token verification key: set auth.hs256Secret, auth.publicKeyFile or auth.jwksFile (or ORION_JWT_HS256_SECRET, ORION_JWT_PUBLIC_KEY_FILE, ORION_JWT_JWKS_FILE)")]
    }
}
