import Foundation
import GRDB
import GRDBSQLite

/// Usage records of one node: the `usage` table of a SQLite file (`telemetry.usageDbPath`).
public final class SQLiteUsageStore: UsageStore {
    public let pool: DatabasePool
    private let writes = DispatchQueue(label: "orion.usage.writer")

    public init(path: String) throws {
        // A 64 MB page cache, so the indexes of a large table stay in memory; commits are not synced
        // one by one (usage telemetry: a power loss may cost the last batches, a crash none).
        pool = try SQLiteFile.pool(at: path, cacheMegabytes: 64, syncEveryCommit: false)
        try pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS usage (
                        id INTEGER PRIMARY KEY,
                        request_id TEXT NOT NULL, session_id TEXT NOT NULL, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
                        engine TEXT NOT NULL, model TEXT NOT NULL,
                        input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
                        cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
                        cost_nano INTEGER, unpriced_reason TEXT,
                        latency_ms REAL NOT NULL, tools TEXT NOT NULL, task_type TEXT NOT NULL,
                        success INTEGER NOT NULL, estimated INTEGER NOT NULL, ts INTEGER NOT NULL
                    );
                    CREATE INDEX IF NOT EXISTS usage_tenant_ts ON usage (tenant, ts);
                    CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
                    """)
        }
    }

    /// One transaction for `batch`, on the writer's own thread (not the cooperative pool), through
    /// one prepared statement bound with SQLite's own calls.
    public func insert(_ chunks: [[UsageRecord]]) async throws {
        let pool = self.pool
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writes.async {
                continuation.resume(with: Result {
                    try pool.write { db in
                        let statement = try db.makeStatement(sql: Self.insert)
                        let handle = statement.sqliteStatement
                        for r in chunks.joined() {
                            sqlite3_reset(handle)
                            var reason: String?
                            if case .unpriced(let why) = r.cost { reason = why }
                            let texts = [r.requestID, r.sessionID, r.tenant, r.user, r.engine, r.model]
                            for (offset, text) in texts.enumerated() { Self.bind(handle, Int32(offset + 1), text) }
                            sqlite3_bind_int64(handle, 7, r.tokens.input)
                            sqlite3_bind_int64(handle, 8, r.tokens.output)
                            sqlite3_bind_int64(handle, 9, r.tokens.cacheRead)
                            sqlite3_bind_int64(handle, 10, r.tokens.cacheWrite)
                            if let nano = r.cost.nanoUSD { sqlite3_bind_int64(handle, 11, nano) } else { sqlite3_bind_null(handle, 11) }
                            if let reason { Self.bind(handle, 12, reason) } else { sqlite3_bind_null(handle, 12) }
                            sqlite3_bind_double(handle, 13, r.latencyMilliseconds)
                            Self.bind(handle, 14, r.tools.joined(separator: ","))
                            Self.bind(handle, 15, r.taskType)
                            sqlite3_bind_int64(handle, 16, r.success ? 1 : 0)
                            sqlite3_bind_int64(handle, 17, r.estimated ? 1 : 0)
                            sqlite3_bind_int64(handle, 18, r.timestamp)
                            let code = sqlite3_step(handle)
                            guard code == SQLITE_DONE else {
                                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                            }
                        }
                        sqlite3_reset(handle)
                    }
                })
            }
        }
    }

    static let insert = """
        INSERT INTO usage (request_id, session_id, tenant, user_id, engine, model, input_tokens, output_tokens,
            cache_read_tokens, cache_write_tokens, cost_nano, unpriced_reason, latency_ms, tools, task_type,
            success, estimated, ts)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// Binds `text`; SQLite copies it before returning (SQLITE_TRANSIENT).
    static func bind(_ handle: OpaquePointer?, _ index: Int32, _ text: String) {
        sqlite3_bind_text(handle, index, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
    }
    public func summary(since: Int64, tenant: String?, user: String?, engine: String?) async throws -> [UsageSummaryRow] {
        var conditions = ["ts >= ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [since]
        for (column, value) in [("tenant", tenant), ("user_id", user), ("engine", engine)] {
            guard let value else { continue }
            conditions.append("\(column) = ?")
            arguments.append(value)
        }
        let sql = """
            SELECT engine, model, COUNT(*) AS calls, SUM(input_tokens) AS input, SUM(output_tokens) AS output,
                SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
                COALESCE(SUM(cost_nano), 0) AS cost, SUM(cost_nano IS NULL) AS unpriced, AVG(latency_ms) AS latency, AVG(success) AS success
            FROM usage WHERE \(conditions.joined(separator: " AND "))
            GROUP BY engine, model ORDER BY engine, model
            """
        let statementArguments = StatementArguments(arguments)
        return try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: sql,
                arguments: statementArguments
            ).map { row in
                UsageSummaryRow(
                    engine: row["engine"], model: row["model"], calls: row["calls"], inputTokens: row["input"], outputTokens: row["output"],
                    cacheReadTokens: row["cache_read"], cacheWriteTokens: row["cache_write"], costNanoUSD: row["cost"],
                    unpricedCalls: row["unpriced"], averageLatencyMilliseconds: row["latency"], successRate: row["success"])
            }
        }
    }

    public func spend(tenant: String, session: String) async throws -> Spend {
        try await spend(sql: "tenant = ? AND session_id = ?", [tenant, session])
    }

    public func spend(tenant: String, from: Int64, to: Int64) async throws -> Spend {
        try await spend(sql: "tenant = ? AND ts >= ? AND ts < ?", [tenant, from, to])
    }

    private func spend(sql condition: String, _ values: [any DatabaseValueConvertible & Sendable]) async throws -> Spend {
        let arguments = StatementArguments(values.map { $0 as (any DatabaseValueConvertible)? })
        return try await pool.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT COUNT(*) AS calls, COALESCE(SUM(cost_nano), 0) AS cost, SUM(cost_nano IS NULL) AS unpriced FROM usage WHERE \(condition)",
                arguments: arguments)
            return Spend(calls: row?["calls"] ?? 0, costNanoUSD: row?["cost"] ?? 0, unpricedCalls: row?["unpriced"] ?? 0)
        }
    }
}
