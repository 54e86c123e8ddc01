import Foundation
import Logging
import OrionCore
import OrionTestSupport
import Synchronization
import Testing

/// The store contract: what tenants, usage records, idempotency keys and budgets promise, checked
/// on the embedded SQLite files and on a real PostgreSQL database alike.
@Suite struct StoreContractTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    /// One opened store and how to throw it away.
    struct Opened {
        let state: SharedState
        let config: RuntimeConfig
        let database: PostgresDatabase?

        func close() async {
            (state.tenants as? PostgresState)?.close()
            await database?.drop()
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "test.store")
        logger.logLevel = .critical
        return logger
    }

    static func open(_ backend: Backend, database existing: PostgresDatabase? = nil) async throws -> Opened {
        var config = RuntimeConfig()
        config.dataDirectory = TestPlugins.temporaryDirectory("orion-store")
        var database: PostgresDatabase?
        if backend == .postgres {
            if let existing { database = existing } else { database = try await PostgresDatabase.create() }
            config.store.postgres = try #require(try? RuntimeConfig.PostgresURL.parse(database!.url).get())
        }
        return Opened(state: try await SharedState.open(config: config, logger: logger), config: config, database: database)
    }

    static func record(
        _ i: Int, tenant: String, session: String = "s1", user: String = "alice", engine: String = "openai", cost: Cost = .priced(nanoUSD: 100),
        at timestamp: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) -> UsageRecord {
        UsageRecord(
            requestID: "r\(i)", sessionID: session, tenant: tenant, user: user, engine: engine, model: "m",
            tokens: TokenCounts(input: 10, output: 5, cacheRead: 1), cost: cost, latencyMilliseconds: Double(i % 7), success: i % 5 != 0,
            timestamp: timestamp)
    }

    @Test(arguments: Backend.allCases)
    func tenantsAreCreatedUpdatedAndRefusedWithAReason(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let tenants = opened.state.tenants
        let heard = Mutex<[String?]>([])
        tenants.onChange { id in heard.withLock { $0.append(id) } }

        let created = try await tenants.upsert(id: "acme", name: "Acme", tier: "free")
        #expect(created.tier == "free" && created.costCapUSD == nil)
        let updated = try await tenants.upsert(id: "acme", name: "Acme Inc", tier: "pro", costCapUSD: 12.5)
        #expect(updated.name == "Acme Inc" && updated.tier == "pro" && updated.costCapUSD == 12.5)
        #expect(updated.createdAt == created.createdAt, "an update keeps the creation time")
        #expect(try await tenants.tenant(id: "acme") == updated)
        #expect(heard.withLock { $0.contains("acme") })

        // createIfMissing never overwrites.
        let kept = try await tenants.createIfMissing(id: "acme", name: "other", tier: "enterprise")
        #expect(kept.tier == "pro")
        _ = try await tenants.createIfMissing(id: "beta", name: "Beta", tier: "free")
        #expect(try await tenants.all().map(\.id) == ["acme", "beta"])
        #expect(try await tenants.tenant(id: "nobody") == nil)

        await #expect(throws: TenantError.self) { try await tenants.upsert(id: "../x", name: "x", tier: "free") }
        await #expect(throws: TenantError.self) { try await tenants.upsert(id: "ok", name: "x", tier: "free", costCapUSD: -1) }
        #expect(try await tenants.all().count == 2, "refused writes leave nothing behind")
        await opened.close()
    }

    @Test(arguments: Backend.allCases)
    func usageSummariesAndSpendsStayWithinTheirTenant(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let usage = try #require(opened.state.usage)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // 2,500 records: more than one INSERT statement's worth on PostgreSQL.
        var batch: [UsageRecord] = (0..<2_500).map { Self.record($0, tenant: "acme", session: $0 < 100 ? "s1" : "s2") }
        batch.append(Self.record(1, tenant: "acme", engine: "anthropic", cost: .unpriced(reason: "no price")))
        batch.append(Self.record(2, tenant: "other", cost: .priced(nanoUSD: 7)))
        batch.append(Self.record(3, tenant: "acme", at: now - 5 * 3_600_000))
        try await usage.insert([Array(batch[0..<1_000]), Array(batch[1_000...])])

        let acme = try await usage.summary(since: now - 3_600_000, tenant: "acme", user: nil, engine: nil)
        #expect(acme.map(\.engine) == ["anthropic", "openai"])
        let openai = try #require(acme.last)
        #expect(openai.calls == 2_500 && openai.costNanoUSD == 250_000 && openai.inputTokens == 25_000 && openai.cacheReadTokens == 2_500)
        #expect(abs(openai.successRate - 0.8) < 1e-9)
        #expect(acme.first?.unpricedCalls == 1 && acme.first?.costNanoUSD == 0)
        #expect(try await usage.summary(since: now - 6 * 3_600_000, tenant: "acme", user: nil, engine: "openai").first?.calls == 2_501)
        #expect(try await usage.summary(since: now - 3_600_000, tenant: nil, user: nil, engine: nil).reduce(0) { $0 + $1.calls } == 2_502)
        #expect(try await usage.summary(since: now - 3_600_000, tenant: "acme", user: "bob", engine: nil).isEmpty)

        #expect(try await usage.spend(tenant: "acme", session: "s1") == Spend(calls: 102, costNanoUSD: 10_100, unpricedCalls: 1))
        #expect(try await usage.spend(tenant: "other", session: "s1") == Spend(calls: 1, costNanoUSD: 7, unpricedCalls: 0))
        #expect(try await usage.spend(tenant: "other", from: now - 60_000, to: now + 60_000) == Spend(calls: 1, costNanoUSD: 7, unpricedCalls: 0))
        #expect(try await usage.spend(tenant: "nobody", from: 0, to: now + 60_000) == Spend(calls: 0, costNanoUSD: 0, unpricedCalls: 0))
        await opened.close()
    }

    @Test(arguments: Backend.allCases)
    func idempotencyKeysReplayRefuseAndBelongToTheirTenant(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let keys = try #require(try Self.idempotency(opened))
        #expect(try await keys.claim(tenant: "acme", key: "k1", fingerprint: "f1") == .claimed)
        #expect(try await keys.claim(tenant: "acme", key: "k1", fingerprint: "f1") == .inProgress)
        #expect(try await keys.claim(tenant: "acme", key: "k1", fingerprint: "f2") == .mismatch)
        #expect(try await keys.claim(tenant: "other", key: "k1", fingerprint: "f1") == .claimed, "another tenant's key is its own")
        try await keys.complete(tenant: "acme", key: "k1", status: 201, contentType: "application/json", body: Data("{\"id\":1}".utf8))
        #expect(try await keys.claim(tenant: "acme", key: "k1", fingerprint: "f1") == .replay(status: 201, contentType: "application/json", body: Data("{\"id\":1}".utf8)))
        // A 5xx releases the key: the retry runs again.
        try await keys.complete(tenant: "other", key: "k1", status: 503, contentType: nil, body: Data())
        #expect(try await keys.claim(tenant: "other", key: "k1", fingerprint: "f1") == .claimed)
        try await keys.expire()
        #expect(try await keys.claim(tenant: "acme", key: "k1", fingerprint: "f1") != .claimed, "a fresh key survives the expiry sweep")
        await opened.close()
    }

    /// The SQLite store's keys live in the gateway's file; PostgreSQL's in the shared database.
    static func idempotency(_ opened: Opened) throws -> (any IdempotencyStore)? {
        if let shared = opened.state.idempotency { return shared }
        return try SQLiteIdempotencyKeys(pool: SQLiteFile.pool(at: opened.config.dataDirectory + "/gateway.sqlite"), ttl: 86_400)
    }

    @Test(arguments: Backend.allCases)
    func concurrentCallsCannotSpendPastACapTogether(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let alerts = Mutex(0)
        let ledger = BudgetLedger(
            usage: opened.state.usage.map { UsageTracker(store: $0, logger: Self.logger) }, shared: opened.state.budgets, alertThreshold: 0.8,
            logger: Self.logger
        ) { _ in alerts.withLock { $0 += 1 } }
        // 40 calls at once, each able to cost 100, under a tenant cap of 1,000: exactly 10 admitted.
        let admitted = try await withThrowingTaskGroup(of: BudgetLedger.Reservation?.self) { group in
            for i in 0..<40 {
                group.addTask {
                    try? await ledger.reserve(.init(
                        tenant: "acme", session: "s\(i)", amountNanoUSD: 100, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
                }
            }
            var admitted: [BudgetLedger.Reservation] = []
            for try await reservation in group { if let reservation { admitted.append(reservation) } }
            return admitted
        }
        #expect(admitted.count == 10)
        // Settling for less frees the rest: 10 × 50 spent, so 5 more calls fit.
        for reservation in admitted { await ledger.settle(reservation, actualNanoUSD: 50) }
        for i in 0..<5 {
            _ = try await ledger.reserve(.init(tenant: "acme", session: "x\(i)", amountNanoUSD: 100, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
        }
        do {
            _ = try await ledger.reserve(.init(tenant: "acme", session: "y", amountNanoUSD: 100, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
            Issue.record("the tenant cap was crossed")
        } catch let exceeded as BudgetExceeded {
            #expect(exceeded.scope == .tenant && exceeded.committedNanoUSD == 1_000)
        }
        // Another tenant's account is its own.
        _ = try await ledger.reserve(.init(tenant: "other", session: "s", amountNanoUSD: 900, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
        // A session cap binds within the tenant's.
        let first = try await ledger.reserve(.init(tenant: "third", session: "s", amountNanoUSD: 600, sessionCapNanoUSD: 1_000, tenantCapNanoUSD: 10_000))
        await #expect(throws: BudgetExceeded.self) {
            try await ledger.reserve(.init(tenant: "third", session: "s", amountNanoUSD: 600, sessionCapNanoUSD: 1_000, tenantCapNanoUSD: 10_000))
        }
        await ledger.settle(first, actualNanoUSD: 850)
        #expect(alerts.withLock { $0 } == 1, "850 of the session's 1,000 crossed 80%")
        await opened.close()
    }

    @Test(arguments: Backend.allCases)
    func aRestartRemembersWhatWasSpent(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let month = BudgetLedger.monthStart(Date()) * 1000
        try await opened.state.usage?.insert([[Self.record(1, tenant: "acme", cost: .priced(nanoUSD: 900), at: month + 1)]])
        let ledger = BudgetLedger(
            usage: opened.state.usage.map { UsageTracker(store: $0, logger: Self.logger) }, shared: opened.state.budgets, alertThreshold: 0.8,
            logger: Self.logger)
        await #expect(throws: BudgetExceeded.self) {
            try await ledger.reserve(.init(tenant: "acme", session: "new", amountNanoUSD: 200, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
        }
        _ = try await ledger.reserve(.init(tenant: "acme", session: "new", amountNanoUSD: 100, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
        await opened.close()
    }
}
