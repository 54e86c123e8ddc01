import Foundation
import PostgresNIO

extension PostgresState: SharedBudgets {
    static func monthAccount(_ start: Int64) -> String { "m:\(start)" }
    static func sessionAccount(_ session: String) -> String { "s:\(session)" }

    /// One transaction: seeds missing accounts from the usage records, locks the accounts (in one
    /// order, so two holds cannot deadlock), sums what they spent and what unexpired holds keep,
    /// and admits the call only if it fits under both caps.
    public func hold(_ request: BudgetLedger.Request, monthStart: Int64, monthEnd: Int64, now: Date) async throws -> String {
        let stamp = Int64(now.timeIntervalSince1970 * 1000)
        let tenant = request.tenant
        let month = Self.monthAccount(monthStart)
        let session = request.sessionIsSingleCall ? nil : Self.sessionAccount(request.session)
        let holdID = UUID()
        try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO budget_accounts (tenant, account, spent_nano, created_at, updated_at)
                SELECT \(tenant), \(month), COALESCE(SUM(cost_nano), 0), \(stamp), \(stamp) FROM usage
                WHERE tenant = \(tenant) AND ts >= \(monthStart * 1000) AND ts < \(monthEnd * 1000)
                ON CONFLICT (tenant, account) DO NOTHING
                """, logger: logger)
            if let session {
                try await connection.query(
                    """
                    INSERT INTO budget_accounts (tenant, account, spent_nano, created_at, updated_at)
                    SELECT \(tenant), \(session), COALESCE(SUM(cost_nano), 0), \(stamp), \(stamp) FROM usage
                    WHERE tenant = \(tenant) AND session_id = \(request.session)
                    ON CONFLICT (tenant, account) DO NOTHING
                    """, logger: logger)
            }
            let accounts = [month] + (session.map { [$0] } ?? [])
            var spent: [String: Int64] = [:]
            let locked = try await connection.query(
                "SELECT account, spent_nano FROM budget_accounts WHERE tenant = \(tenant) AND account = ANY(\(accounts)) ORDER BY account FOR UPDATE",
                logger: logger)
            for try await (account, nano) in locked.decode((String, Int64).self) { spent[account] = nano }
            var checks: [(BudgetExceeded.Scope, Int64, Int64)] = []
            checks.append((.tenant, (spent[month] ?? 0) + (try await held(connection, tenant: tenant, column: "month_account", account: month, now: stamp)), request.tenantCapNanoUSD))
            if let session {
                checks.insert(
                    (.session, (spent[session] ?? 0) + (try await held(connection, tenant: tenant, column: "session_account", account: session, now: stamp)),
                        request.sessionCapNanoUSD), at: 0)
            } else {
                checks.insert((.session, 0, request.sessionCapNanoUSD), at: 0)
            }
            for (scope, committed, cap) in checks where committed + request.amountNanoUSD > cap || committed >= cap {
                throw BudgetExceeded(scope: scope, capNanoUSD: cap, committedNanoUSD: committed, requestedNanoUSD: request.amountNanoUSD)
            }
            let expires = stamp + Int64(budgetHoldSeconds * 1000)
            try await connection.query(
                """
                INSERT INTO budget_holds (id, tenant, month_account, session_account, amount_nano, created_at, expires_at)
                VALUES (\(holdID), \(tenant), \(month), \(session), \(request.amountNanoUSD), \(stamp), \(expires))
                """, logger: logger)
        }
        return holdID.uuidString
    }

    /// What unexpired holds keep on one account.
    private func held(_ connection: PostgresConnection, tenant: String, column: String, account: String, now: Int64) async throws -> Int64 {
        var bindings = PostgresBindings()
        bindings.append(tenant)
        bindings.append(account)
        bindings.append(now)
        let sql = "SELECT COALESCE(SUM(amount_nano), 0)::BIGINT FROM budget_holds WHERE tenant = $1 AND \(column) = $2 AND expires_at > $3"
        for try await total in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).decode(Int64.self) {
            return total
        }
        return 0
    }

    public func settle(holdID: String, tenant: String, session: String?, monthStart: Int64, actualNanoUSD: Int64) async throws -> [SettledAccount] {
        guard let id = UUID(uuidString: holdID) else { throw StoreError("'\(holdID)' is not a budget hold id") }
        let month = Self.monthAccount(monthStart)
        let accounts = [month] + (session.map { [Self.sessionAccount($0)] } ?? [])
        let stamp = Self.now()
        return try await transaction { connection in
            // The hold is the settlement's key: a retry after a commit whose answer was lost finds
            // it gone and adds nothing a second time.
            let deleted = try await connection.query("DELETE FROM budget_holds WHERE id = \(id) AND tenant = \(tenant) RETURNING 1", logger: logger)
            var held = false
            for try await _ in deleted.decode(Int.self) { held = true }
            guard held else { return [] }
            var before: [String: Int64] = [:]
            let locked = try await connection.query(
                "SELECT account, spent_nano FROM budget_accounts WHERE tenant = \(tenant) AND account = ANY(\(accounts)) ORDER BY account FOR UPDATE",
                logger: logger)
            for try await (account, nano) in locked.decode((String, Int64).self) { before[account] = nano }
            try await connection.query(
                "UPDATE budget_accounts SET spent_nano = spent_nano + \(actualNanoUSD), updated_at = \(stamp) WHERE tenant = \(tenant) AND account = ANY(\(accounts))",
                logger: logger)
            return before.map { account, spent in
                SettledAccount(
                    session: account == month ? nil : String(account.dropFirst(2)), spentBefore: spent, spentAfter: spent + actualNanoUSD)
            }
        }
    }
}

extension PostgresState: IdempotencyStore {
    public func claim(tenant: String, key: String, fingerprint: String) async throws -> IdempotencyClaim {
        let now = Self.now()
        let cutoff = now - Int64(idempotencyTTL * 1000)
        return try await transaction { connection -> IdempotencyClaim in
            try await connection.query("DELETE FROM idempotency WHERE tenant = \(tenant) AND key = \(key) AND created_at < \(cutoff)", logger: logger)
            let inserted = try await connection.query(
                """
                INSERT INTO idempotency (tenant, key, fingerprint, created_at) VALUES (\(tenant), \(key), \(fingerprint), \(now))
                ON CONFLICT (tenant, key) DO NOTHING RETURNING 1
                """, logger: logger)
            for try await _ in inserted.decode(Int.self) { return .claimed }
            let rows = try await connection.query(
                "SELECT fingerprint, status, content_type, body, created_at FROM idempotency WHERE tenant = \(tenant) AND key = \(key) FOR UPDATE",
                logger: logger)
            for try await (stored, status, contentType, body, claimedAt) in rows.decode((String, Int32?, String?, ByteBuffer?, Int64).self) {
                guard stored == fingerprint else { return .mismatch }
                guard let status else {
                    // A claim whose request never completed (its node stopped) is taken over after a lease.
                    guard now - claimedAt > Int64(idempotencyClaimLease * 1000) else { return .inProgress }
                    try await connection.query("UPDATE idempotency SET created_at = \(now) WHERE tenant = \(tenant) AND key = \(key)", logger: logger)
                    return .claimed
                }
                return .replay(status: Int(status), contentType: contentType, body: body.map { Data($0.readableBytesView) } ?? Data())
            }
            // Deleted between the insert and the select (expired by another node): claim it again.
            try await connection.query(
                "INSERT INTO idempotency (tenant, key, fingerprint, created_at) VALUES (\(tenant), \(key), \(fingerprint), \(now))", logger: logger)
            return .claimed
        }
    }

    public func complete(tenant: String, key: String, status: Int, contentType: String?, body: Data) async throws {
        if status >= 500 {
            try await client.query("DELETE FROM idempotency WHERE tenant = \(tenant) AND key = \(key)", logger: logger)
        } else {
            try await client.query(
                """
                UPDATE idempotency SET status = \(Int32(status)), content_type = \(contentType), body = \(ByteBuffer(bytes: body))
                WHERE tenant = \(tenant) AND key = \(key)
                """, logger: logger)
        }
    }

    /// Deletes expired idempotency keys and budget holds, and budget accounts idle for 40 days
    /// (their usage records are written long since: a later call seeds them again from those).
    public func expire() async throws {
        let now = Self.now()
        try await client.query("DELETE FROM idempotency WHERE created_at < \(now - Int64(idempotencyTTL * 1000))", logger: logger)
        try await client.query("DELETE FROM budget_holds WHERE expires_at < \(now)", logger: logger)
        try await client.query("DELETE FROM budget_accounts WHERE updated_at < \(now - 40 * 86_400_000)", logger: logger)
    }
}
