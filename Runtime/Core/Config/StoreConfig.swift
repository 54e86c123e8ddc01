import Foundation

/// The `store` section of `orion.yaml`: where the state every node must agree on lives
/// (docs/operations.md).
///
/// Without `store.postgresUrl`, a node keeps tenants, usage records, budgets and idempotency keys
/// in SQLite files under `dataDirectory` (the embedded default, one node). With it, they live in
/// PostgreSQL, shared by every node that names the same database.
///
/// - Configuration keys (YAML key — environment variable — type, default):
///   - `store.postgresUrl` — `ORION_POSTGRES_URL` — `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]`,
///     unset. `sslmode` defaults to `disable` on a loopback host and `require` elsewhere.
///   - `store.poolSize` — `ORION_POSTGRES_POOL_SIZE` — integer in [1, 200], `10`: connections
///     this node opens at most (one more listens for tenant changes).
///   - `store.budgetHoldSeconds` — `ORION_BUDGET_HOLD_SECONDS` — number in [10, 86400], `900`:
///     how long a budget reservation of a call counts against the caps when its node never
///     settles it (the node stopped mid-call). Longer than `engines.timeoutSeconds`.
///   - `store.auditRetentionDays` — `ORION_AUDIT_RETENTION_DAYS` — number in [1, 3650], `365`: how long
///     audit entries (`GET /api/audit`) are kept; older ones are deleted once an hour.
extension RuntimeConfig {
    public struct Store: Sendable, Equatable {
        public var postgres: PostgresURL?
        public var poolSize = 10
        public var budgetHoldSeconds = 900.0
        public var auditRetentionDays = 365.0
    }

    /// A parsed `postgres://` address.
    public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var requireTLS: Bool

        /// Parses `text`, or says what is wrong with it.
        public static func parse(_ text: String) -> Result<PostgresURL, ParseFailure> {
            guard let parts = URLComponents(string: text), let scheme = parts.scheme, ["postgres", "postgresql"].contains(scheme) else {
                return .failure(.init("must be postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got '\(Self.redacted(text))'"))
            }
            guard let host = parts.host, !host.isEmpty else { return .failure(.init("names no host")) }
            guard let user = parts.user, !user.isEmpty else { return .failure(.init("names no user (postgres://USER@HOST/DATABASE)")) }
            let database = String(parts.path.drop(while: { $0 == "/" }))
            guard !database.isEmpty, !database.contains("/") else { return .failure(.init("names no database (postgres://USER@HOST/DATABASE)")) }
            if let port = parts.port, !(1...65535).contains(port) { return .failure(.init("port \(port) is out of range")) }
            let loopback = ["127.0.0.1", "localhost", "::1"].contains(host)
            var requireTLS = !loopback
            for item in parts.queryItems ?? [] {
                switch (item.name, item.value) {
                case ("sslmode", "disable"): requireTLS = false
                case ("sslmode", "require"): requireTLS = true
                case ("sslmode", let other): return .failure(.init("sslmode must be disable or require, got '\(other ?? "")'"))
                default: return .failure(.init("unknown parameter '\(item.name)' (only sslmode is read)"))
                }
            }
            return .success(PostgresURL(
                host: host, port: parts.port ?? 5432, user: user.removingPercentEncoding ?? user,
                password: parts.password.map { $0.removingPercentEncoding ?? $0 }, database: database, requireTLS: requireTLS))
        }

        public struct ParseFailure: Error, Sendable {
            public var message: String
            init(_ message: String) { self.message = message }
        }

        /// The address without its password, for logs and messages.
        public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

        static func redacted(_ text: String) -> String {
            guard var parts = URLComponents(string: text), parts.password != nil else { return text }
            parts.password = "***"
            return parts.string ?? "(unparsable)"
        }
    }

    static let storeKeyNames: Set<String> = ["postgresUrl", "poolSize", "budgetHoldSeconds", "auditRetentionDays"]

    static let storeKeys: [Key] = [
        Key(path: "store.postgresUrl", env: "ORION_POSTGRES_URL", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            switch PostgresURL.parse(try n.nonEmptyString()) {
            case .success(let url): c.store.postgres = url
            case .failure(let failure): throw n.error(failure.message)
            }
        },
        Key(path: "store.poolSize", env: "ORION_POSTGRES_POOL_SIZE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let size = try n.integer(atLeast: 1)
            guard size <= 200 else { throw n.error("must be at most 200, got \(size)") }
            c.store.poolSize = size
        },
        Key(path: "store.budgetHoldSeconds", env: "ORION_BUDGET_HOLD_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.store.budgetHoldSeconds = try n.number(in: 10...86_400, "seconds in [10, 86400]")
        },
        Key(path: "store.auditRetentionDays", env: "ORION_AUDIT_RETENTION_DAYS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.store.auditRetentionDays = try n.number(in: 1...3650, "days in [1, 3650]")
        },
    ]
}
