import Foundation
import PostgresNIO

extension PostgresState: TenantDirectory {
    typealias TenantRow = (String, String, String, Double?, Int64, Int64)

    static func tenant(_ row: TenantRow) -> Tenant {
        Tenant(id: row.0, name: row.1, tier: row.2, costCapUSD: row.3, createdAt: row.4, updatedAt: row.5)
    }

    public func tenant(id: String) async throws -> Tenant? {
        let rows = try await client.query("SELECT id, name, tier, cost_cap_usd, created_at, updated_at FROM tenants WHERE id = \(id)", logger: logger)
        for try await row in rows.decode(TenantRow.self) { return Self.tenant(row) }
        return nil
    }

    public func all() async throws -> [Tenant] {
        var tenants: [Tenant] = []
        let rows = try await client.query("SELECT id, name, tier, cost_cap_usd, created_at, updated_at FROM tenants ORDER BY id", logger: logger)
        for try await row in rows.decode(TenantRow.self) { tenants.append(Self.tenant(row)) }
        return tenants
    }

    @discardableResult
    public func upsert(id: String, name: String, tier: String, costCapUSD: Double?) async throws -> Tenant {
        try TenantStore.validate(id: id, costCapUSD: costCapUSD)
        let now = Self.now()
        let tenant = try await transaction { connection -> Tenant in
            let rows = try await connection.query(
                """
                INSERT INTO tenants (id, name, tier, cost_cap_usd, created_at, updated_at) VALUES (\(id), \(name), \(tier), \(costCapUSD), \(now), \(now))
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, tier = excluded.tier, cost_cap_usd = excluded.cost_cap_usd,
                    updated_at = excluded.updated_at
                RETURNING id, name, tier, cost_cap_usd, created_at, updated_at
                """, logger: logger)
            var stored: Tenant?
            for try await row in rows.decode(TenantRow.self) { stored = Self.tenant(row) }
            // Delivered to every listening node when this transaction commits.
            try await connection.query("SELECT pg_notify(\(Self.tenantChannel), \(id))", logger: logger)
            guard let stored else { throw StoreError("the tenant '\(id)' was not returned by its upsert") }
            return stored
        }
        // This node hears its own notification too; announcing now makes the change visible here at once.
        announce(id)
        return tenant
    }

    public func createIfMissing(id: String, name: String, tier: String) async throws -> Tenant {
        if let existing = try await tenant(id: id) { return existing }
        try TenantStore.validate(id: id, costCapUSD: nil)
        let now = Self.now()
        try await client.query(
            "INSERT INTO tenants (id, name, tier, cost_cap_usd, created_at, updated_at) VALUES (\(id), \(name), \(tier), NULL, \(now), \(now)) ON CONFLICT (id) DO NOTHING",
            logger: logger)
        guard let stored = try await tenant(id: id) else { throw StoreError("the tenant '\(id)' was not found after it was created") }
        return stored
    }
}

extension PostgresState: UsageStore {
    /// Rows per INSERT statement: 18 parameters each, under PostgreSQL's 65,535 per statement.
    static let usageRowsPerStatement = 1_000

    public func insert(_ chunks: [[UsageRecord]]) async throws {
        let records = Array(chunks.joined())
        guard !records.isEmpty else { return }
        try await transaction { connection in
            var start = 0
            while start < records.count {
                let end = min(records.count, start + Self.usageRowsPerStatement)
                var bindings = PostgresBindings(capacity: (end - start) * 18)
                var values: [String] = []
                values.reserveCapacity(end - start)
                for (row, r) in records[start..<end].enumerated() {
                    let base = row * 18
                    values.append("(" + (1...18).map { "$\(base + $0)" }.joined(separator: ",") + ")")
                    var reason: String?
                    if case .unpriced(let why) = r.cost { reason = why }
                    bindings.append(r.requestID)
                    bindings.append(r.sessionID)
                    bindings.append(r.tenant)
                    bindings.append(r.user)
                    bindings.append(r.engine)
                    bindings.append(r.model)
                    bindings.append(r.tokens.input)
                    bindings.append(r.tokens.output)
                    bindings.append(r.tokens.cacheRead)
                    bindings.append(r.tokens.cacheWrite)
                    bindings.append(r.cost.nanoUSD)
                    bindings.append(reason)
                    bindings.append(r.latencyMilliseconds)
                    bindings.append(r.tools.joined(separator: ","))
                    bindings.append(r.taskType)
                    bindings.append(r.success)
                    bindings.append(r.estimated)
                    bindings.append(r.timestamp)
                }
                let sql = """
                    INSERT INTO usage (request_id, session_id, tenant, user_id, engine, model, input_tokens, output_tokens,
                        cache_read_tokens, cache_write_tokens, cost_nano, unpriced_reason, latency_ms, tools, task_type, success, estimated, ts)
                    VALUES \(values.joined(separator: ","))
                    """
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
                start = end
            }
        }
    }

    public func summary(since: Int64, tenant: String?, user: String?, engine: String?) async throws -> [UsageSummaryRow] {
        var bindings = PostgresBindings()
        bindings.append(since)
        var conditions = ["ts >= $1"]
        for (column, value) in [("tenant", tenant), ("user_id", user), ("engine", engine)] {
            guard let value else { continue }
            bindings.append(value)
            conditions.append("\(column) = $\(bindings.count)")
        }
        let sql = """
            SELECT engine, model, COUNT(*)::BIGINT, SUM(input_tokens)::BIGINT, SUM(output_tokens)::BIGINT,
                SUM(cache_read_tokens)::BIGINT, SUM(cache_write_tokens)::BIGINT, COALESCE(SUM(cost_nano), 0)::BIGINT,
                COUNT(*) FILTER (WHERE cost_nano IS NULL)::BIGINT, AVG(latency_ms)::DOUBLE PRECISION,
                AVG(CASE WHEN success THEN 1.0 ELSE 0.0 END)::DOUBLE PRECISION
            FROM usage WHERE \(conditions.joined(separator: " AND "))
            GROUP BY engine, model ORDER BY engine, model
            """
        var summary: [UsageSummaryRow] = []
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        for try await row in rows.decode((String, String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Double, Double).self) {
            summary.append(UsageSummaryRow(
                engine: row.0, model: row.1, calls: Int(row.2), inputTokens: row.3, outputTokens: row.4, cacheReadTokens: row.5,
                cacheWriteTokens: row.6, costNanoUSD: row.7, unpricedCalls: Int(row.8), averageLatencyMilliseconds: row.9, successRate: row.10))
        }
        return summary
    }

    public func spend(tenant: String, session: String) async throws -> Spend {
        try await spend(
            "SELECT COUNT(*)::BIGINT, COALESCE(SUM(cost_nano), 0)::BIGINT, COUNT(*) FILTER (WHERE cost_nano IS NULL)::BIGINT FROM usage WHERE tenant = \(tenant) AND session_id = \(session)")
    }

    public func spend(tenant: String, from: Int64, to: Int64) async throws -> Spend {
        try await spend(
            "SELECT COUNT(*)::BIGINT, COALESCE(SUM(cost_nano), 0)::BIGINT, COUNT(*) FILTER (WHERE cost_nano IS NULL)::BIGINT FROM usage WHERE tenant = \(tenant) AND ts >= \(from) AND ts < \(to)")
    }

    private func spend(_ query: PostgresQuery) async throws -> Spend {
        for try await row in try await client.query(query, logger: logger).decode((Int64, Int64, Int64).self) {
            return Spend(calls: Int(row.0), costNanoUSD: row.1, unpricedCalls: Int(row.2))
        }
        return Spend(calls: 0, costNanoUSD: 0, unpricedCalls: 0)
    }
}
