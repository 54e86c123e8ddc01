import Foundation
import GRDB
import Logging
import OrionCore
import OrionTestSupport
import ServiceLifecycle
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

    /// The run store of a backend, and the memory database a run's outcome is written to.
    static func runStore(_ opened: Opened) throws -> (store: any RunStore, memory: DatabasePool) {
        let documents = try DocumentStore(path: opened.config.dataDirectory + "/documents.sqlite")
        return (opened.state.runs ?? SQLiteRunStore(pool: documents.pool), documents.pool)
    }

    static func run(_ id: String, _ namespace: String, at started: Int64) -> RunRecord {
        RunRecord(
            id: id, namespace: namespace, session: "s", kind: .chat, intent: "intent of \(id)", retrievedMemoryIDs: ["m1", "m2"], usedMemoryIDs: [],
            status: .running, degradedReason: nil, startedAt: started, tier: "free", user: "alice")
    }

    struct WriteFailed: Error {}

    @Test(arguments: Backend.allCases)
    func runsAreJournaledWholeAndReadOnlyInTheirNamespace(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let (runs, memory) = try Self.runStore(opened)
        try await runs.insert(Self.run("r1", "tenant_a", at: 1_000), node: "n1")
        try await runs.insert(Self.run("r2", "tenant_a", at: 2_000), node: "n2")
        try await runs.insert(Self.run("r3", "tenant_b", at: 3_000), node: "n1")
        await #expect(throws: MemoryError.self, "a run id is used once") { try await runs.insert(Self.run("r1", "tenant_b", at: 4_000), node: "n1") }

        // A closing whose memory write fails keeps nothing of itself.
        let steps = [
            RunStep(kind: "retrieve", name: "memory", status: .ok, startedAt: 1_001, durationMs: 1.5, detail: ["hits": "2"]),
            RunStep(kind: "generate", name: "openai/gpt-4o-mini", status: .ok, startedAt: 1_003, durationMs: 20, detail: [:]),
        ]
        let calls = [
            ToolCallRecord(name: "search", argumentsSHA256: "ab", startedAt: 1_004, durationMs: 3, success: true),
            ToolCallRecord(name: "fetch", argumentsSHA256: "cd", startedAt: 1_008, durationMs: 4, success: false, error: "timeout"),
        ]
        let closing = RunClosing(
            id: "r1", namespace: "tenant_a", status: .finished, error: nil, outcome: "success", reward: 1, used: ["m2"], endedAt: 1_050, steps: steps,
            toolCalls: calls)
        await #expect(throws: WriteFailed.self) { try await runs.close(closing, memory: MemoryWrite(pool: memory) { _ in throw WriteFailed() }) }
        let untouched = try #require(try await runs.run(id: "r1", namespace: "tenant_a"))
        #expect(untouched.status == .running && untouched.steps.isEmpty && untouched.toolCalls.isEmpty && untouched.usedMemoryIDs.isEmpty)

        let wrote = SharedFlag()
        try await runs.close(closing, memory: MemoryWrite(pool: memory) { _ in wrote.set() })
        #expect(wrote.isSet)
        let closed = try #require(try await runs.run(id: "r1", namespace: "tenant_a"))
        #expect(closed.status == .finished && closed.outcome == "success" && closed.reward == 1 && closed.endedAt == 1_050)
        #expect(closed.retrievedMemoryIDs == ["m1", "m2"] && closed.usedMemoryIDs == ["m2"])
        #expect(closed.steps == steps && closed.toolCalls == calls)
        #expect(try await runs.run(id: "r1", namespace: "tenant_b") == nil, "another tenant's run is not found")

        try await runs.setOutcome(id: "r1", namespace: "tenant_a", outcome: "reward", reward: -0.5)
        try await runs.setNewMemory(id: "r1", namespace: "tenant_a", memoryID: "m9")
        try await runs.fail(id: "r1", namespace: "tenant_a", message: "the new experience was not stored", endedAt: nil)
        try await runs.setOutcome(id: "r1", namespace: "tenant_b", outcome: "failure", reward: -1)
        let noted = try #require(try await runs.run(id: "r1", namespace: "tenant_a"))
        #expect(noted.outcome == "reward" && noted.reward == -0.5 && noted.newMemoryID == "m9" && noted.status == .finished)
        #expect(noted.error == "the new experience was not stored")

        #expect(try await runs.runs(namespace: "tenant_a", query: RunQuery()).map(\.id) == ["r2", "r1"], "newest first")
        #expect(try await runs.runs(namespace: "tenant_a", query: RunQuery(status: .finished)).map(\.id) == ["r1"])
        #expect(try await runs.runs(namespace: "tenant_a", query: RunQuery(since: 1_500)).map(\.id) == ["r2"])
        #expect(try await runs.runs(namespace: "tenant_a", query: RunQuery(until: 1_500)).map(\.id) == ["r1"])
        #expect(try await runs.runs(namespace: "tenant_a", query: RunQuery(limit: 1)).map(\.id) == ["r2"])
        #expect(try await runs.runs(namespace: "tenant_a", query: RunQuery()).allSatisfy { $0.steps.isEmpty }, "lists carry no steps")

        // A node closes only the runs it left running.
        #expect(try await runs.closeInterrupted(node: "n1", message: "interrupted", endedAt: 5_000) == 1)
        #expect(try await runs.run(id: "r3", namespace: "tenant_b")?.status == .error)
        #expect(try await runs.run(id: "r2", namespace: "tenant_a")?.status == .running)
        await opened.close()
    }

    @Test func aWrongAddressFailsAtOnceWithItsCause() async throws {
        var parts = try #require(URLComponents(string: PostgresDatabase.adminURL))
        parts.password = "not-the-password"
        let url = try #require(try? RuntimeConfig.PostgresURL.parse(parts.string!).get())
        do {
            _ = try await PostgresState.connect(url: url, logger: Self.logger)
            Issue.record("a wrong password was accepted")
        } catch let error as StoreError {
            #expect(error.description.contains("password authentication failed") && error.description.contains("SQLSTATE 28P01"), "\(error)")
            #expect(!error.description.contains("not-the-password"), "the password is not repeated")
        }
    }

    @Test func postgresAddressesAreCheckedWithAReason() {
        func failure(_ text: String) -> String? {
            if case .failure(let failure) = RuntimeConfig.PostgresURL.parse(text) { return failure.message }
            return nil
        }
        #expect(failure("mysql://u@h/db")?.contains("must be postgres://") == true)
        #expect(failure("postgres://u:secret@h")?.contains("names no database") == true)
        #expect(failure("postgres://h/db")?.contains("names no user") == true)
        #expect(failure("postgres://u@h/db?sslmode=verify-full")?.contains("sslmode must be disable or require") == true)
        #expect(failure("postgres://u@h/db?timeout=3")?.contains("unknown parameter 'timeout'") == true)
        #expect(failure("mysql://u:secret@h/db")?.contains("secret") == false, "a password is not repeated")
        let local = try? RuntimeConfig.PostgresURL.parse("postgresql://orion:p%40ss@127.0.0.1/orion").get()
        #expect(local?.password == "p@ss" && local?.port == 5432 && local?.requireTLS == false)
        #expect((try? RuntimeConfig.PostgresURL.parse("postgres://orion@db.internal:6432/orion").get())?.requireTLS == true)
        #expect(local?.description == "postgres://orion@127.0.0.1:5432/orion")
    }

    @Test(arguments: Backend.allCases)
    func theAuditTrailIsReadPerTenantNewestFirst(_ backend: Backend) async throws {
        let opened = try await Self.open(backend)
        let audit = opened.state.audit
        func entry(_ i: Int) -> AuditEntry {
            let tenant = i % 5 == 0 ? "other" : "acme"
            let node = i % 2 == 0 ? "node-a" : "node-b"
            return AuditEntry(
                id: "e\(i)", at: 1_000 + Int64(i), tenant: tenant, actor: "alice", action: "POST /api/memory", path: "/api/memory", status: 201,
                digest: "sha256:\(i)", node: node)
        }
        let entries: [AuditEntry] = (0..<2_500).map(entry)
        try await audit.append(Array(entries[..<1_200]))
        try await audit.append(Array(entries[1_200...]))
        let latest = try await audit.entries(tenant: "acme", since: 0, limit: 3)
        #expect(latest.map(\.id) == ["e2499", "e2498", "e2497"])
        #expect(latest.first == entries[2_499])
        #expect(try await audit.entries(tenant: "acme", since: 0, limit: 5_000).count == 2_000)
        let recent: [String] = stride(from: 2_495, through: 2_000, by: -5).map { "e\($0)" }
        let since = try await audit.entries(tenant: "other", since: 3_000, limit: 1_000).map(\.id)
        #expect(since == recent)
        #expect(try await audit.entries(tenant: "nobody", since: 0, limit: 10).isEmpty)
        await #expect(throws: (any Error).self, "an entry id is written once") { try await audit.append([entries[0]]) }
        #expect(try await audit.entries(tenant: "other", since: 0, limit: 1_000).count == 500, "a failed batch adds nothing")
        #expect(try await audit.expire(before: 1_100) == 100, "entries at 1,000 to 1,099 are past the retention")
        #expect(try await audit.entries(tenant: "acme", since: 0, limit: 5_000).count == 1_920)
        await opened.close()
    }

    /// Two nodes on one database: a change on one reaches the other's observers (NOTIFY); when the
    /// other's listening connection is cut, it reconnects and reports that anything may have changed.
    @Test(.timeLimit(.minutes(1)))
    func tenantChangesReachEveryNodeAndALostListenerDropsEverything() async throws {
        let first = try await Self.open(.postgres)
        let second = try await Self.open(.postgres, database: first.database)
        let heard = Mutex<[String?]>([])
        second.state.tenants.onChange { id in heard.withLock { $0.append(id) } }
        let listener = Task { try await second.state.services[0].run() }
        func wait(for expected: String?, after count: Int) async throws -> Bool {
            for _ in 0..<100 {  // at most 10 s
                if heard.withLock({ $0.dropFirst(count).contains(expected) }) { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        #expect(try await wait(for: nil, after: 0), "a listener that starts reports that it may have missed changes")
        var seen = heard.withLock { $0.count }
        try await first.state.tenants.upsert(id: "acme", name: "Acme", tier: "pro")
        #expect(try await wait(for: "acme", after: seen))

        seen = heard.withLock { $0.count }
        let cut = try #require(first.state.tenants as? PostgresState)
        try await cut.terminateListeners()
        #expect(try await wait(for: nil, after: seen), "after reconnecting, every cached tenant is dropped")
        seen = heard.withLock { $0.count }
        try await first.state.tenants.upsert(id: "beta", name: "Beta", tier: "free")
        #expect(try await wait(for: "beta", after: seen), "and changes are heard again")
        listener.cancel()
        (second.state.tenants as? PostgresState)?.close()
        await first.close()
    }

    /// A cancel asked on one node for a run another node runs reaches that node (NOTIFY); a run
    /// the asking node runs itself, one that ended, or one of another tenant is not announced.
    @Test(.timeLimit(.minutes(1)))
    func aCancelReachesTheNodeThatRunsTheRun() async throws {
        let first = try await Self.open(.postgres)
        let second = try await Self.open(.postgres, database: first.database)
        let heard = Mutex<[CancelRequest]>([])
        let runsB = try #require(second.state.runs)
        runsB.onCancelRequest { request in heard.withLock { $0.append(request) } }
        let listener = Task { try await second.state.services[0].run() }
        let runsA = try #require(first.state.runs)
        try await runsB.insert(Self.run("r1", "tenant_a", at: 1_000), node: "node-b")
        try await runsB.insert(Self.run("r2", "tenant_a", at: 1_000), node: "node-b")

        // The listener may still be connecting: ask until it hears (10 s at most).
        var asked = false
        for _ in 0..<100 where heard.withLock({ $0.isEmpty }) {
            asked = try await runsA.requestCancel(id: "r1", namespace: "tenant_a", reason: "cancelled by olga", from: "node-a")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(asked)
        #expect(heard.withLock { $0.first } == CancelRequest(runID: "r1", namespace: "tenant_a", reason: "cancelled by olga"))

        #expect(try await runsB.requestCancel(id: "r1", namespace: "tenant_a", reason: "x", from: "node-b") == false, "its own run: nobody else to ask")
        #expect(try await runsA.requestCancel(id: "r1", namespace: "tenant_b", reason: "x", from: "node-a") == false, "another tenant's run")
        #expect(try await runsA.requestCancel(id: "missing", namespace: "tenant_a", reason: "x", from: "node-a") == false)
        try await runsB.close(
            RunClosing(id: "r2", namespace: "tenant_a", status: .finished, error: nil, outcome: nil, reward: nil, used: [], endedAt: 2_000, steps: [], toolCalls: []),
            memory: nil)
        #expect(try await runsA.requestCancel(id: "r2", namespace: "tenant_a", reason: "x", from: "node-a") == false, "a run that ended")
        listener.cancel()
        (second.state.tenants as? PostgresState)?.close()
        await first.close()
    }

    /// Two nodes' run runners on one database: a cancel sent through one reaches the run the other
    /// runs, which ends cancelled with the reason.
    @Test(.timeLimit(.minutes(1)))
    func aRunIsCancelledThroughAnyNode() async throws {
        let first = try await Self.open(.postgres)
        let second = try await Self.open(.postgres, database: first.database)
        let h = try await MemoryHarness.start()
        defer { Task { await h.stop() } }
        let nodeA = RunRunner(memory: h.memory, node: "node-a", store: first.state.runs, logger: Self.logger)
        let nodeB = RunRunner(memory: h.memory, node: "node-b", store: second.state.runs, logger: Self.logger)
        let listener = Task { try await second.state.services[0].run() }
        let started = AsyncStream.makeStream(of: Void.self)
        let run = Task {
            try await nodeB.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "a long task", topK: 0, id: "long")) { context in
                started.continuation.yield()
                for _ in 0..<2_000 where !context.trace.isCancelled { try await Task.sleep(for: .milliseconds(5)) }  // 10 s at most
                return RunConclusion(outcome: .success)
            }
        }
        for await _ in started.stream { break }
        // Node B's listener may still be connecting: ask again until the run has ended.
        var answers: [RunRunner.CancelResult] = []
        for _ in 0..<50 {
            let answer = try await nodeA.cancel(runID: "long", namespace: "tenant_a", reason: "stop it")
            answers.append(answer)
            if answer != .requestedOfItsNode { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(answers.first == .requestedOfItsNode)
        #expect(answers.last == .alreadyEnded(.cancelled), "\(answers)")
        await #expect(throws: RunCancelled.self) { try await run.value }
        let record = try #require(try await nodeA.record(id: "long", namespace: "tenant_a"))
        #expect(record.status == .cancelled && record.error == "stop it")
        listener.cancel()
        (second.state.tenants as? PostgresState)?.close()
        await first.close()
    }

    /// A settlement retried after its commit's answer was lost adds the cost once.
    @Test func aSettlementCountsOnceWhenRetried() async throws {
        let opened = try await Self.open(.postgres)
        let budgets = try #require(opened.state.budgets)
        let month = BudgetLedger.monthStart(Date())
        let request = BudgetLedger.Request(tenant: "acme", session: "s", amountNanoUSD: 500, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000)
        let hold = try await budgets.hold(request, monthStart: month, monthEnd: month + 40 * 86_400, now: Date())
        let settled = try await budgets.settle(holdID: hold, tenant: "acme", session: "s", monthStart: month, actualNanoUSD: 300)
        #expect(Set(settled.map(\.spentAfter)) == [300])
        #expect(try await budgets.settle(holdID: hold, tenant: "acme", session: "s", monthStart: month, actualNanoUSD: 300).isEmpty)
        // 300 spent: 700 left, so a hold of 700 fits and one of 701 does not.
        await #expect(throws: BudgetExceeded.self) {
            try await budgets.hold(
                .init(tenant: "acme", session: "t", amountNanoUSD: 701, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000), monthStart: month,
                monthEnd: month + 40 * 86_400, now: Date())
        }
        _ = try await budgets.hold(
            .init(tenant: "acme", session: "t", amountNanoUSD: 700, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000), monthStart: month,
            monthEnd: month + 40 * 86_400, now: Date())
        await opened.close()
    }
}
