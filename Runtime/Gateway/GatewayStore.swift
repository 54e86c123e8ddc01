import Foundation
import GRDB
import OrionCore

/// The gateway's own SQLite file (`<dataDirectory>/gateway.sqlite`): one record per request for
/// the analytics endpoint (this node's requests), and the stored responses of idempotent POSTs
/// unless a shared store (PostgreSQL) keeps them.
public final class GatewayStore: Sendable {
    let pool: DatabasePool
    let idempotency: any IdempotencyStore
    /// Request records older than this are deleted (seconds).
    let recordRetention: Double

    /// `shared`: the deployment's idempotency keys (nil: this file's table).
    public init(path: String, idempotencyTTL: Double, shared: (any IdempotencyStore)? = nil, recordRetention: Double = 30 * 86_400) throws {
        pool = try SQLiteFile.pool(at: path)
        self.recordRetention = recordRetention
        var migrator = DatabaseMigrator()
        // Files made before idempotency keys moved to SQLiteIdempotencyKeys also have that table
        // from this migration; SQLiteIdempotencyKeys makes it in new files.
        migrator.registerMigration("gateway-v1") { db in
            try db.execute(sql: """
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
        idempotency = try shared ?? SQLiteIdempotencyKeys(pool: pool, ttl: idempotencyTTL)
    }

    /// Deletes expired idempotency keys and request records past their retention.
    func expire() async {
        try? await idempotency.expire()
        let records = Int64(Date().timeIntervalSince1970 * 1000) - Int64(recordRetention * 1000)
        try? await pool.write { db in try db.execute(sql: "DELETE FROM requests WHERE at < ?", arguments: [records]) }
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
