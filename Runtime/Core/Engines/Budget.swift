import Foundation
import Logging
import Metrics
import Synchronization

/// A spending limit a call would cross.
public struct BudgetExceeded: Error, Sendable, CustomStringConvertible {
    public enum Scope: String, Sendable { case session, tenant }
    public var scope: Scope
    public var capNanoUSD: Int64
    /// Spent plus reserved by calls in flight, before this call.
    public var committedNanoUSD: Int64
    /// The most this call could cost.
    public var requestedNanoUSD: Int64

    public var description: String {
        let what = scope == .session ? "this session's cap" : "your tenant's monthly cap"
        return "the call could cost up to \(Self.usd(requestedNanoUSD)), and \(what) of \(Self.usd(capNanoUSD)) has \(Self.usd(max(0, capNanoUSD - committedNanoUSD))) left; "
            + (scope == .session ? "start a new session or ask for a higher cap" : "wait for next month or move to a higher tier")
            + " (a smaller max_tokens lowers the reservation)"
    }

    static func usd(_ nano: Int64) -> String { String(format: "%.6f USD", Double(nano) / 1e9) }
}

/// A crossing of `telemetry.alertThreshold` of a cap (a `budget_alert` event).
public struct BudgetAlert: Sendable, Hashable {
    public var scope: BudgetExceeded.Scope
    public var tenant: String
    public var session: String?
    public var spentNanoUSD: Int64
    public var capNanoUSD: Int64
    /// The tier of the call that crossed the line.
    public var tier: String = ""
}

/// Spending per session and per tenant per calendar month (UTC), with reservations, so that
/// concurrent calls cannot spend past a cap together.
///
/// ``reserve(_:)`` admits a call only when what is spent, plus what calls in flight reserved,
/// plus this call's maximum stays within both caps; ``settle(_:actualNanoUSD:)`` replaces the
/// reservation with the actual cost. On one node an account is loaded once from the usage records
/// (so a restart remembers what was spent), then kept in memory; with ``SharedBudgets`` (PostgreSQL)
/// every hold and settlement is a transaction on accounts every node shares.
public final class BudgetLedger: Sendable {
    struct Key: Hashable, Sendable {
        var tenant: String
        /// The session, or nil for the tenant's month.
        var session: String?
        var month: Int64
    }
    struct Account: Sendable {
        var spent: Int64
        var reserved: Int64 = 0
        var lastUsed: Int64
    }

    /// One admitted call's hold on both accounts.
    public struct Reservation: Sendable, Hashable {
        /// nil for a single-call session.
        let session: Key?
        let tenant: Key
        public let amountNanoUSD: Int64
        let sessionCap: Int64
        let tenantCap: Int64
        var tier = ""
        /// The shared store's hold (nil when accounts are kept in this process).
        var holdID: String?
    }

    private let accounts = Mutex<[Key: Account]>([:])
    /// When idle accounts were last evicted (Unix seconds): at most once a minute.
    private let lastEviction = Atomic<Int64>(0)
    /// The current month's first and next month's first second (calendar arithmetic is slow on
    /// Linux, so it runs once a month, not once a call).
    private let month = Mutex<(start: Int64, next: Int64)>((0, 0))

    func currentMonth(_ now: Date) -> Int64 {
        let seconds = Int64(now.timeIntervalSince1970)
        if let cached = month.withLock({ $0.start <= seconds && seconds < $0.next ? $0.start : nil }) { return cached }
        let start = Self.monthStart(now)
        let next = Self.nextMonthStart(start)
        month.withLock { $0 = (start, next) }
        return start
    }
    let usage: UsageTracker?
    let shared: (any SharedBudgets)?
    let alertThreshold: Double
    let logger: Logger
    let onAlert: @Sendable (BudgetAlert) -> Void

    public init(
        usage: UsageTracker?, shared: (any SharedBudgets)? = nil, alertThreshold: Double, logger: Logger,
        onAlert: @escaping @Sendable (BudgetAlert) -> Void = { _ in }
    ) {
        self.usage = usage
        self.shared = shared
        self.alertThreshold = alertThreshold
        self.logger = logger
        self.onAlert = onAlert
    }

    /// The request to hold `amount` nano-USD for one call of `session` of `tenant`.
    public struct Request: Sendable {
        public var tenant: String
        public var session: String
        public var amountNanoUSD: Int64
        public var sessionCapNanoUSD: Int64
        public var tenantCapNanoUSD: Int64
        /// True when the session is this one call (a request that named none): its cap bounds the
        /// call alone, and nothing is loaded or kept for it.
        public var sessionIsSingleCall: Bool
        /// The caller's tier, carried into alerts.
        public var tier: String

        public init(
            tenant: String, session: String, amountNanoUSD: Int64, sessionCapNanoUSD: Int64, tenantCapNanoUSD: Int64, sessionIsSingleCall: Bool = false,
            tier: String = ""
        ) {
            self.tier = tier
            self.tenant = tenant
            self.session = session
            self.amountNanoUSD = amountNanoUSD
            self.sessionCapNanoUSD = sessionCapNanoUSD
            self.tenantCapNanoUSD = tenantCapNanoUSD
            self.sessionIsSingleCall = sessionIsSingleCall
        }
    }

    /// Holds the call's maximum cost, or throws the cap it would cross.
    public func reserve(_ request: Request, now: Date = Date()) async throws -> Reservation {
        let month = currentMonth(now)
        let sessionKey = request.sessionIsSingleCall ? nil : Key(tenant: request.tenant, session: request.session, month: 0)
        let tenantKey = Key(tenant: request.tenant, session: nil, month: month)
        if let shared {
            let hold = try await shared.hold(request, monthStart: month, monthEnd: Self.nextMonthStart(month), now: now)
            return Reservation(
                session: sessionKey, tenant: tenantKey, amountNanoUSD: request.amountNanoUSD, sessionCap: request.sessionCapNanoUSD,
                tenantCap: request.tenantCapNanoUSD, tier: request.tier, holdID: hold)
        }
        // Read what the records say outside the lock; the first loader wins.
        let missing = accounts.withLock { all in (sessionKey.map { all[$0] == nil } ?? false, all[tenantKey] == nil) }
        let sessionSpent = missing.0 ? try await sessionKey.asyncMap(spentFromRecords) ?? 0 : 0
        let tenantSpent = missing.1 ? try await spentFromRecords(tenantKey) : 0
        let stamp = Int64(now.timeIntervalSince1970)
        return try accounts.withLock { all in
            var session = sessionKey.map { all[$0] ?? Account(spent: sessionSpent, lastUsed: stamp) } ?? Account(spent: 0, lastUsed: stamp)
            var tenant = all[tenantKey] ?? Account(spent: tenantSpent, lastUsed: stamp)
            defer {
                if let sessionKey { all[sessionKey] = session }
                all[tenantKey] = tenant
            }
            for (scope, account, cap) in [(BudgetExceeded.Scope.session, session, request.sessionCapNanoUSD), (.tenant, tenant, request.tenantCapNanoUSD)] {
                let committed = account.spent + account.reserved
                // A call is admitted while budget is left and its maximum fits in it; a call that
                // cannot be priced (amount 0) still needs budget left.
                if committed + request.amountNanoUSD > cap || committed >= cap {
                    throw BudgetExceeded(scope: scope, capNanoUSD: cap, committedNanoUSD: committed, requestedNanoUSD: request.amountNanoUSD)
                }
            }
            session.reserved += request.amountNanoUSD
            tenant.reserved += request.amountNanoUSD
            session.lastUsed = stamp
            tenant.lastUsed = stamp
            if all.count > 100_000, stamp - lastEviction.load(ordering: .relaxed) >= 60 {
                lastEviction.store(stamp, ordering: .relaxed)
                Self.evictIdle(&all, now: stamp)
            }
            return Reservation(
                session: sessionKey, tenant: tenantKey, amountNanoUSD: request.amountNanoUSD, sessionCap: request.sessionCapNanoUSD,
                tenantCap: request.tenantCapNanoUSD, tier: request.tier)
        }
    }

    /// Replaces the reservation with what the call cost (0 for a call that failed or had no price).
    public func settle(_ reservation: Reservation, actualNanoUSD: Int64) async {
        if let shared, let hold = reservation.holdID {
            let settle = { @Sendable in
                try await shared.settle(
                    holdID: hold, tenant: reservation.tenant.tenant, session: reservation.session?.session, monthStart: reservation.tenant.month,
                    actualNanoUSD: actualNanoUSD)
            }
            do {
                emit(alerts(settled: try await settle(), reservation))
            } catch {
                // The caller is not kept waiting: the settlement is retried in the background
                // (1, 2, 4, 8, 16 s). Meanwhile the hold counts its full amount until it expires
                // (store.budgetHoldSeconds); a settlement that never lands leaves the call's cost
                // out of the account, which the usage records still hold. One that lands late
                // raises its alerts then.
                Counter(label: "orion_budget_settle_failures_total").increment()
                logger.warning("a budget settlement failed; retrying", metadata: ["orion.tenant": "\(reservation.tenant.tenant)", "orion.error": "\(error)"])
                Task {
                    for attempt in 0..<5 {
                        try? await Task.sleep(for: .seconds(1 << attempt))
                        if let settled = try? await settle() {
                            emit(alerts(settled: settled, reservation))
                            return
                        }
                    }
                    Counter(label: "orion_budget_settlements_lost_total").increment()
                    logger.error(
                        "a budget settlement was given up after 5 retries", metadata: ["orion.tenant": "\(reservation.tenant.tenant)", "orion.hold": "\(hold)"])
                }
            }
        } else {
            var alerts: [BudgetAlert] = []
            accounts.withLock { all in
                for (key, cap) in [(reservation.session, reservation.sessionCap), (reservation.tenant, reservation.tenantCap)] {
                    guard let key, var account = all[key] else { continue }
                    account.reserved = max(0, account.reserved - reservation.amountNanoUSD)
                    let before = account.spent
                    account.spent += actualNanoUSD
                    all[key] = account
                    if let alert = crossing(key, cap: cap, before: before, after: account.spent, tier: reservation.tier) { alerts.append(alert) }
                }
            }
            emit(alerts)
        }
    }

    /// The alert for an account whose spend went from `before` to `after`, if that crossed
    /// `alertThreshold` of its cap.
    func crossing(_ key: Key, cap: Int64, before: Int64, after: Int64, tier: String) -> BudgetAlert? {
        let line = Int64((Double(cap) * alertThreshold).rounded(.up))
        guard cap > 0, before < line, after >= line else { return nil }
        return BudgetAlert(scope: key.session == nil ? .tenant : .session, tenant: key.tenant, session: key.session, spentNanoUSD: after, capNanoUSD: cap, tier: tier)
    }

    /// The alerts the accounts of a shared settlement crossed.
    func alerts(settled: [SettledAccount], _ reservation: Reservation) -> [BudgetAlert] {
        settled.compactMap { account in
            guard let key = account.session == nil ? reservation.tenant : reservation.session else { return nil }
            return crossing(
                key, cap: key.session == nil ? reservation.tenantCap : reservation.sessionCap, before: account.spentBefore, after: account.spentAfter,
                tier: reservation.tier)
        }
    }

    func emit(_ alerts: [BudgetAlert]) {
        for alert in alerts {
            Counter(label: "orion_budget_alerts_total", dimensions: [("scope", alert.scope.rawValue)]).increment()
            logger.warning(
                "budget_alert",
                metadata: [
                    "orion.budget.scope": "\(alert.scope.rawValue)", "orion.tenant": "\(alert.tenant)", "orion.session": "\(alert.session ?? "")",
                    "orion.budget.spent_usd": "\(Double(alert.spentNanoUSD) / 1e9)", "orion.budget.cap_usd": "\(Double(alert.capNanoUSD) / 1e9)",
                ])
            onAlert(alert)
        }
    }

    /// What a session has spent (settled calls), nano-USD.
    public func spent(tenant: String, session: String) -> Int64? {
        accounts.withLock { $0[Key(tenant: tenant, session: session, month: 0)]?.spent }
    }

    func spentFromRecords(_ key: Key) async throws -> Int64 {
        guard let usage else { return 0 }
        if let session = key.session { return try await usage.sessionSpend(tenant: key.tenant, session: session).costNanoUSD }
        return try await usage.tenantSpend(tenant: key.tenant, from: key.month * 1000, to: Self.nextMonthStart(key.month) * 1000).costNanoUSD
    }

    /// Accounts idle for an hour with nothing reserved: their records were written long ago, so
    /// loading them again later gives the same balance.
    static func evictIdle(_ all: inout [Key: Account], now: Int64) {
        all = all.filter { $0.value.reserved > 0 || now - $0.value.lastUsed < 3600 }
    }

    static var utc: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!  // UTC always exists
        return calendar
    }

    /// The first second of `date`'s month (UTC), Unix seconds.
    public static func monthStart(_ date: Date) -> Int64 {
        let parts = utc.dateComponents([.year, .month], from: date)
        return Int64(utc.date(from: parts)!.timeIntervalSince1970)  // year and month always form a date
    }

    static func nextMonthStart(_ start: Int64) -> Int64 {
        let date = Date(timeIntervalSince1970: TimeInterval(start))
        return Int64(utc.date(byAdding: .month, value: 1, to: date)!.timeIntervalSince1970)  // adding a month always works
    }
}

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
