import Foundation
import GRDB
import OrionCore

/// The gateway's own SQLite file (`<dataDirectory>/gateway.sqlite`): stored responses of
/// idempotent POSTs, and one record per request for the analytics endpoint.
public final class GatewayStore: Sendable {
    let pool: DatabasePool
    let idempotencyTTL: Double
    /// Request records older than this are deleted (seconds).
    let recordRetention: Double

    public init(path: String, idempotencyTTL: Double, recordRetention: Double = 30 * 86_400) throws {
        pool = try SQLiteFile.pool(at: path)
        self.idempotencyTTL = idempotencyTTL
        self.recordRetention = recordRetention
        var migrator = DatabaseMigrator()
        migrator.registerMigration("gateway-v1") { db in
            try db.execute(sql: """
                CREATE TABLE idempotency (
                    tenant TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    status INTEGER,
                    content_type TEXT,
                    body BLOB,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, key)
                );
                CREATE INDEX idempotency_created ON idempotency(created_at);
                CREATE TABLE requests (
                    at INTEGER NOT NULL,
                    tenant TEXT,
                    route TEXT NOT NULL,
                    method TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    ms REAL NOT NULL
                );
                CREATE INDEX requests_tenant_at ON requests(tenant, at);
                """)
        }
        try migrator.migrate(pool)
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Seconds after which an unfinished claim may be taken over by a retry.
    static let claimLease = 60.0

    // MARK: Idempotency

    enum Claim {
        /// The key is new: the caller runs the request and then calls ``complete``.
        case claimed
        /// The same request ran before: replay this.
        case replay(status: Int, contentType: String?, body: Data)
        /// The key was used with another request body, method or path.
        case mismatch
        /// The same request is still running.
        case inProgress
    }

    /// Claims `key` for `fingerprint` (method, path and body hash) within `tenant`.
    func claim(tenant: String, key: String, fingerprint: String) throws -> Claim {
        let cutoff = Self.now() - Int64(idempotencyTTL * 1000)
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM idempotency WHERE tenant = ? AND key = ? AND created_at < ?", arguments: [tenant, key, cutoff])
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM idempotency WHERE tenant = ? AND key = ?", arguments: [tenant, key]) {
                guard (row["fingerprint"] as String) == fingerprint else { return .mismatch }
                guard let status: Int = row["status"] else {
                    // A claim whose request never completed (the process stopped) is taken over
                    // after a lease, instead of blocking the key until it expires.
                    let claimedAt: Int64 = row["created_at"]
                    guard Self.now() - claimedAt > Int64(Self.claimLease * 1000) else { return .inProgress }
                    try db.execute(
                        sql: "UPDATE idempotency SET created_at = ? WHERE tenant = ? AND key = ?", arguments: [Self.now(), tenant, key])
                    return .claimed
                }
                return .replay(status: status, contentType: row["content_type"], body: row["body"] ?? Data())
            }
            try db.execute(
                sql: "INSERT INTO idempotency (tenant, key, fingerprint, created_at) VALUES (?, ?, ?, ?)",
                arguments: [tenant, key, fingerprint, Self.now()])
            return .claimed
        }
    }

    /// Stores the response of a claimed key; a 5xx releases the key instead, so a retry runs again.
    func complete(tenant: String, key: String, status: Int, contentType: String?, body: Data) throws {
        try pool.write { db in
            if status >= 500 {
                try db.execute(sql: "DELETE FROM idempotency WHERE tenant = ? AND key = ?", arguments: [tenant, key])
            } else {
                try db.execute(
                    sql: "UPDATE idempotency SET status = ?, content_type = ?, body = ? WHERE tenant = ? AND key = ?",
                    arguments: [status, contentType, body, tenant, key])
            }
        }
    }

    func expireIdempotency() {
        let cutoff = Self.now() - Int64(idempotencyTTL * 1000)
        let records = Self.now() - Int64(recordRetention * 1000)
        try? pool.write { db in
            try db.execute(sql: "DELETE FROM idempotency WHERE created_at < ?", arguments: [cutoff])
            try db.execute(sql: "DELETE FROM requests WHERE at < ?", arguments: [records])
        }
    }

    // MARK: Request records

    func insert(_ records: [GatewayTelemetry.RequestRecord]) throws {
        try pool.write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO requests (at, tenant, route, method, status, ms) VALUES (?, ?, ?, ?, ?, ?)")
            for r in records { try statement.execute(arguments: [r.at, r.tenantID, r.route, r.method, r.status, r.milliseconds]) }
        }
    }

    /// One tenant's requests since `since` (epoch ms): count, errors, latency quantiles.
    public func analytics(tenant: String, since: Int64) throws -> (count: Int, errors: Int, p50: Double, p95: Double, p99: Double, byRoute: [String: Int]) {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT route, status, ms FROM requests WHERE tenant = ? AND at >= ?", arguments: [tenant, since])
            let durations = rows.map { $0["ms"] as Double }.sorted()
            let errors = rows.filter { ($0["status"] as Int) >= 500 }.count
            var byRoute: [String: Int] = [:]
            for row in rows { byRoute[row["route"] as String, default: 0] += 1 }
            return (
                rows.count, errors, GatewayTelemetry.quantile(durations, 0.5), GatewayTelemetry.quantile(durations, 0.95),
                GatewayTelemetry.quantile(durations, 0.99), byRoute
            )
        }
    }
}
