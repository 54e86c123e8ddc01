import Foundation
import Logging
import ServiceLifecycle

/// Tenants as every node sees them: in SQLite on one node (``TenantStore``), in PostgreSQL across
/// nodes (``PostgresState``).
public protocol TenantDirectory: Sendable {
    func tenant(id: String) async throws -> Tenant?
    /// Every tenant, by id.
    func all() async throws -> [Tenant]
    /// Creates or updates a tenant; every node's observers hear of it.
    @discardableResult
    func upsert(id: String, name: String, tier: String, costCapUSD: Double?) async throws -> Tenant
    /// Creates a tenant unless one with this id exists; returns the stored one either way.
    func createIfMissing(id: String, name: String, tier: String) async throws -> Tenant
    /// Registers a callback run with a tenant id after every change, or with nil when changes may
    /// have been missed (a lost connection to the database): then every cached tenant is stale.
    func onChange(_ observer: @escaping @Sendable (String?) -> Void)
}

/// Where engine-call records are written and summed. Every query names its tenant, except the
/// operator's summary across tenants.
public protocol UsageStore: Sendable {
    /// Writes the records in one transaction: all of them, or none.
    func insert(_ chunks: [[UsageRecord]]) async throws
    /// Calls since `since` (epoch ms) by engine and model, optionally of one tenant, user or engine.
    func summary(since: Int64, tenant: String?, user: String?, engine: String?) async throws -> [UsageSummaryRow]
    /// What one session of a tenant has spent.
    func spend(tenant: String, session: String) async throws -> Spend
    /// What a tenant spent in [from, to) (epoch ms).
    func spend(tenant: String, from: Int64, to: Int64) async throws -> Spend
}

/// The outcome of claiming an idempotency key.
public enum IdempotencyClaim: Sendable, Equatable {
    /// The key is new: the caller runs the request and then calls ``IdempotencyStore/complete``.
    case claimed
    /// The same request ran before: replay this.
    case replay(status: Int, contentType: String?, body: Data)
    /// The key was used with another request body, method or path.
    case mismatch
    /// The same request is still running.
    case inProgress
}

/// Stored responses of idempotent POSTs, per tenant.
public protocol IdempotencyStore: Sendable {
    /// Claims `key` for `fingerprint` (method, path and body hash) within `tenant`.
    func claim(tenant: String, key: String, fingerprint: String) async throws -> IdempotencyClaim
    /// Stores the response of a claimed key; a 5xx releases the key instead, so a retry runs again.
    func complete(tenant: String, key: String, status: Int, contentType: String?, body: Data) async throws
    /// Deletes keys past their time to live.
    func expire() async throws
}

/// Seconds after which an unfinished idempotency claim may be taken over by a retry (the node
/// that claimed it stopped).
public let idempotencyClaimLease = 60.0

/// Budget accounts shared by several nodes: each hold and settlement is one transaction that
/// locks the accounts it touches, so two nodes cannot spend past a cap together.
public protocol SharedBudgets: Sendable {
    /// Holds `request.amountNanoUSD` on the tenant's month (and the session, unless it is a single
    /// call), or throws ``BudgetExceeded``. Returns the hold's id.
    func hold(_ request: BudgetLedger.Request, monthStart: Int64, monthEnd: Int64, now: Date) async throws -> String
    /// Replaces the hold with what the call cost; returns each account's spend before and after.
    func settle(holdID: String, tenant: String, session: String?, monthStart: Int64, actualNanoUSD: Int64) async throws -> [SettledAccount]
}

/// One account after a settlement.
public struct SettledAccount: Sendable, Hashable {
    /// nil: the tenant's month.
    public var session: String?
    public var spentBefore: Int64
    public var spentAfter: Int64

    public init(session: String?, spentBefore: Int64, spentAfter: Int64) {
        self.session = session
        self.spentBefore = spentBefore
        self.spentAfter = spentAfter
    }
}

/// The state every node of a deployment must agree on — tenants, usage records, budgets,
/// idempotency keys, runs with their steps and tool calls, the audit trail — opened from `store.*`: SQLite files
/// under `dataDirectory` (one node), or one PostgreSQL database (several).
public struct SharedState: Sendable {
    public let tenants: any TenantDirectory
    /// Where usage records go (nil when `telemetry.enabled` is off).
    public let usage: (any UsageStore)?
    /// nil: the gateway keeps idempotency keys in its own SQLite file.
    public let idempotency: (any IdempotencyStore)?
    /// nil: budgets are kept in this process, loaded from the usage records.
    public let budgets: (any SharedBudgets)?
    /// nil: runs are kept in the memory database, beside the memories they use.
    public let runs: (any RunStore)?
    /// The audit trail of changes made through the API.
    public let audit: any AuditStore
    /// `sqlite` or `postgres`, for logs.
    public let backend: String
    /// The shared database, when there is one (for ``problem()``).
    let postgres: PostgresState?
    /// What must run while the node runs (the PostgreSQL client and its tenant-change listener).
    public let services: [any Service]

    public init(
        tenants: any TenantDirectory, usage: (any UsageStore)?, idempotency: (any IdempotencyStore)?, budgets: (any SharedBudgets)?,
        runs: (any RunStore)? = nil, audit: any AuditStore, backend: String, services: [any Service] = [], postgres: PostgresState? = nil
    ) {
        self.postgres = postgres
        self.runs = runs
        self.audit = audit
        self.tenants = tenants
        self.usage = usage
        self.idempotency = idempotency
        self.budgets = budgets
        self.backend = backend
        self.services = services
    }

    /// Opens the store the configuration names; with PostgreSQL, connects and migrates its schema.
    public static func open(config: RuntimeConfig, logger: Logger) async throws -> SharedState {
        if let url = config.store.postgres {
            let postgres = try await PostgresState.connect(
                url: url, poolSize: config.store.poolSize, budgetHoldSeconds: config.store.budgetHoldSeconds,
                idempotencyTTL: config.gateway.idempotencyTTLSeconds, logger: logger)
            return SharedState(
                tenants: postgres, usage: config.telemetry.enabled ? postgres : nil, idempotency: postgres, budgets: postgres, runs: postgres, audit: postgres,
                backend: "postgres", services: [postgres.service], postgres: postgres)
        }
        let tenants = try TenantStore(path: (config.dataDirectory as NSString).appendingPathComponent("tenants.sqlite"))
        let usage = config.telemetry.enabled ? try SQLiteUsageStore(path: config.resolvedUsageDBPath) : nil
        let audit = try SQLiteAuditStore(path: (config.dataDirectory as NSString).appendingPathComponent("audit.sqlite"))
        return SharedState(tenants: tenants, usage: usage, idempotency: nil, budgets: nil, audit: audit, backend: "sqlite")
    }
}

extension SharedState {
    /// Why the shared database cannot serve now (it did not answer within 2 s), or nil; `/ready`
    /// reports it, so a load balancer stops sending work to a node cut off from it.
    public func problem() async -> String? {
        guard let postgres else { return nil }
        return await postgres.problem(within: .seconds(2))
    }
}

extension TenantDirectory {
    /// Creates or updates a tenant without a cost cap of its own.
    @discardableResult
    public func upsert(id: String, name: String, tier: String) async throws -> Tenant {
        try await upsert(id: id, name: name, tier: tier, costCapUSD: nil)
    }
}
