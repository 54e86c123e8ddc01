import Foundation
import GRDB

/// One row of a usage summary: the calls of one engine and model.
public struct UsageSummaryRow: Sendable, Hashable, Codable {
    public var engine: String
    public var model: String
    public var calls: Int
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cacheReadTokens: Int64
    public var cacheWriteTokens: Int64
    /// The priced calls' cost, nano-USD.
    public var costNanoUSD: Int64
    /// Calls recorded as unpriced (their cost is not in `costNanoUSD`).
    public var unpricedCalls: Int
    public var averageLatencyMilliseconds: Double
    public var successRate: Double
}

/// A spend: priced cost and how many calls had no price.
public struct Spend: Sendable, Hashable, Codable {
    public var calls: Int
    public var costNanoUSD: Int64
    public var unpricedCalls: Int

    public init(calls: Int, costNanoUSD: Int64, unpricedCalls: Int) {
        self.calls = calls
        self.costNanoUSD = costNanoUSD
        self.unpricedCalls = unpricedCalls
    }
}

extension UsageTracker {
    /// Calls of the last `hours`, by engine and model, optionally of one tenant, user or engine.
    /// Reads what has been written: call ``flush()`` first to include queued records.
    public func summary(
        hours: Double, tenant: String? = nil, user: String? = nil, engine: String? = nil,
        now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) throws -> [UsageSummaryRow] {
        var conditions = ["ts >= ?"]
        var arguments: [any DatabaseValueConvertible] = [now - Int64(hours * 3_600_000)]
        for (column, value) in [("tenant", tenant), ("user_id", user), ("engine", engine)] {
            guard let value else { continue }
            conditions.append("\(column) = ?")
            arguments.append(value)
        }
        return try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT engine, model, COUNT(*) AS calls, SUM(input_tokens) AS input, SUM(output_tokens) AS output,
                        SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
                        COALESCE(SUM(cost_nano), 0) AS cost, SUM(cost_nano IS NULL) AS unpriced, AVG(latency_ms) AS latency, AVG(success) AS success
                    FROM usage WHERE \(conditions.joined(separator: " AND "))
                    GROUP BY engine, model ORDER BY engine, model
                    """,
                arguments: StatementArguments(arguments)
            ).map { row in
                UsageSummaryRow(
                    engine: row["engine"], model: row["model"], calls: row["calls"], inputTokens: row["input"], outputTokens: row["output"],
                    cacheReadTokens: row["cache_read"], cacheWriteTokens: row["cache_write"], costNanoUSD: row["cost"],
                    unpricedCalls: row["unpriced"], averageLatencyMilliseconds: row["latency"], successRate: row["success"])
            }
        }
    }

    /// What one session of a tenant has spent so far (written records).
    public func sessionSpend(tenant: String, session: String) throws -> Spend {
        try spend(sql: "tenant = ? AND session_id = ?", [tenant, session])
    }

    /// What a tenant spent in [from, to) (Unix epoch milliseconds).
    public func tenantSpend(tenant: String, from: Int64, to: Int64) throws -> Spend {
        try spend(sql: "tenant = ? AND ts >= ? AND ts < ?", [tenant, from, to])
    }

    func spend(sql condition: String, _ arguments: [any DatabaseValueConvertible]) throws -> Spend {
        try pool.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT COUNT(*) AS calls, COALESCE(SUM(cost_nano), 0) AS cost, SUM(cost_nano IS NULL) AS unpriced FROM usage WHERE \(condition)",
                arguments: StatementArguments(arguments))
            return Spend(calls: row?["calls"] ?? 0, costNanoUSD: row?["cost"] ?? 0, unpricedCalls: row?["unpriced"] ?? 0)
        }
    }
}
