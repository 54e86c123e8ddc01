import Foundation

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
    ) async throws -> [UsageSummaryRow] {
        try await store.summary(since: now - Int64(hours * 3_600_000), tenant: tenant, user: user, engine: engine)
    }

    /// What one session of a tenant has spent so far (written records).
    public func sessionSpend(tenant: String, session: String) async throws -> Spend {
        try await store.spend(tenant: tenant, session: session)
    }

    /// What a tenant spent in [from, to) (Unix epoch milliseconds).
    public func tenantSpend(tenant: String, from: Int64, to: Int64) async throws -> Spend {
        try await store.spend(tenant: tenant, from: from, to: to)
    }
}
