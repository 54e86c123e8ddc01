import Foundation
import GRDB

/// Idempotency keys of one node: the `idempotency` table of the gateway's SQLite file.
public final class SQLiteIdempotencyKeys: IdempotencyStore {
    let pool: DatabasePool
    /// Seconds a stored response is replayed.
    let ttl: Double

    /// Makes the table unless the file has it (the gateway's `gateway-v1` migration makes it too).
    public init(pool: DatabasePool, ttl: Double) throws {
        self.pool = pool
        self.ttl = ttl
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS idempotency (
                    tenant TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    status INTEGER,
                    content_type TEXT,
                    body BLOB,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, key)
                );
                CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created_at);
                """)
        }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func claim(tenant: String, key: String, fingerprint: String) async throws -> IdempotencyClaim {
        let cutoff = Self.now() - Int64(ttl * 1000)
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM idempotency WHERE tenant = ? AND key = ? AND created_at < ?", arguments: [tenant, key, cutoff])
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM idempotency WHERE tenant = ? AND key = ?", arguments: [tenant, key]) {
                guard (row["fingerprint"] as String) == fingerprint else { return .mismatch }
                guard let status: Int = row["status"] else {
                    // A claim whose request never completed (the process stopped) is taken over
                    // after a lease, instead of blocking the key until it expires.
                    let claimedAt: Int64 = row["created_at"]
                    guard Self.now() - claimedAt > Int64(idempotencyClaimLease * 1000) else { return .inProgress }
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

    public func complete(tenant: String, key: String, status: Int, contentType: String?, body: Data) async throws {
        try await pool.write { db in
            if status >= 500 {
                try db.execute(sql: "DELETE FROM idempotency WHERE tenant = ? AND key = ?", arguments: [tenant, key])
            } else {
                try db.execute(
                    sql: "UPDATE idempotency SET status = ?, content_type = ?, body = ? WHERE tenant = ? AND key = ?",
                    arguments: [status, contentType, body, tenant, key])
            }
        }
    }

    public func expire() async throws {
        let cutoff = Self.now() - Int64(ttl * 1000)
        try await pool.write { db in try db.execute(sql: "DELETE FROM idempotency WHERE created_at < ?", arguments: [cutoff]) }
    }
}
