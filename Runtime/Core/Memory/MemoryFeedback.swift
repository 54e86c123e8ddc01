import Foundation
import GRDB

/// What one feedback did to one memory.
public struct FeedbackResult: Sendable, Hashable {
    public enum Effect: String, Sendable {
        /// The update was applied.
        case applied
        /// An explicit outcome replaced the default one applied earlier for the same run.
        case replaced
        /// This run's outcome was already applied to this memory; nothing changed.
        case alreadyApplied = "already_applied"
        /// Learning is off (`memory.memrlEnabled: false`); nothing changed.
        case notLearning = "not_learning"
    }
    public var id: String
    public var effect: Effect
    public var reward: Double
    public var previousUtility: Double
    public var utility: Double
    public var outcomes: Int
}

extension MemoryBank {
    /// Applies `outcome` of run `runID` to each memory of `memoryIDs` in `namespace`, in one
    /// transaction: Q ← clamp(Q + α (r + γ·maxNext − Q)), outcome count + 1, last used = now.
    ///
    /// Idempotent per (run, memory): a retried feedback changes nothing. An explicit outcome for a
    /// (run, memory) whose earlier outcome was a default (`isDefault`, e.g. a chat's implied
    /// success) replaces it: the utility moves by α (r_new − r_old)(1 − α)ⁿ, n being the updates
    /// applied to that memory since, which is exactly the utility the explicit outcome would have
    /// given (as long as no clamp was hit). An unknown id refuses the whole call and changes nothing.
    @discardableResult
    public func feedback(
        namespace: String, runID: String, memoryIDs: [String], outcome: Outcome, isDefault: Bool = false, maxNext: Double = 0,
        now: Int64 = MemoryBank.now()
    ) throws -> [FeedbackResult] {
        try store.pool.write { db in
            try applyFeedback(db, namespace: namespace, runID: runID, memoryIDs: memoryIDs, outcome: outcome, isDefault: isDefault, maxNext: maxNext, skipMissing: false, now: now)
        }
    }

    /// ``feedback(namespace:runID:memoryIDs:outcome:isDefault:maxNext:now:)`` inside a caller's
    /// transaction; `skipMissing` leaves out ids deleted since (a run's late feedback).
    func applyFeedback(
        _ db: Database, namespace: String, runID: String, memoryIDs: [String], outcome: Outcome, isDefault: Bool, maxNext: Double,
        skipMissing: Bool, now: Int64
    ) throws -> [FeedbackResult] {
        guard !runID.isEmpty else { throw MemoryError(.invalidArgument, "a run id is required: feedback is applied once per (run, memory)") }
        let reward = policy.reward(for: outcome)
        guard reward.isFinite, (-1...1).contains(reward) else {
            throw MemoryError(.invalidArgument, "a reward must be a number in [-1, 1], got \(reward)")
        }
        guard maxNext.isFinite, (-1...1).contains(maxNext) else {
            throw MemoryError(.invalidArgument, "maxNext must be a utility in [-1, 1], got \(maxNext)")
        }
        guard Set(memoryIDs).count == memoryIDs.count else { throw MemoryError(.invalidArgument, "a memory id appears twice in one feedback") }
        var results: [FeedbackResult] = []
        var missing: [String] = []
        for id in memoryIDs {
            guard let row = try Row.fetchOne(
                db, sql: "SELECT m.key, m.utility, m.outcomes FROM memories m JOIN documents d ON d.key = m.key WHERE d.namespace = ? AND d.id = ?",
                arguments: [namespace, id])
            else {
                missing.append(id)
                continue
            }
            let key: Int64 = row["key"]
            let utility: Double = row["utility"]
            let outcomes: Int = row["outcomes"]
            guard learns else {
                results.append(FeedbackResult(id: id, effect: .notLearning, reward: reward, previousUtility: utility, utility: utility, outcomes: outcomes))
                continue
            }
            let earlier = try Row.fetchOne(
                db, sql: "SELECT reward, is_default, outcomes_after FROM memory_feedback WHERE run_id = ? AND key = ?", arguments: [runID, key])
            if let earlier {
                let earlierReward: Double = earlier["reward"]
                let wasDefault: Bool = earlier["is_default"]
                guard wasDefault, !isDefault else {
                    results.append(FeedbackResult(id: id, effect: .alreadyApplied, reward: earlierReward, previousUtility: utility, utility: utility, outcomes: outcomes))
                    continue
                }
                let since: Int = outcomes - (earlier["outcomes_after"] as Int)
                let delta = policy.learningRate * (reward - earlierReward) * pow(1 - policy.learningRate, Double(since))
                let replaced = MemoryPolicy.clamp(utility + delta)
                try db.execute(sql: "UPDATE memories SET utility = ?, last_used = ? WHERE key = ?", arguments: [replaced, now, key])
                try db.execute(
                    sql: "UPDATE memory_feedback SET reward = ?, is_default = 0, applied_at = ? WHERE run_id = ? AND key = ?",
                    arguments: [reward, now, runID, key])
                results.append(FeedbackResult(id: id, effect: .replaced, reward: reward, previousUtility: utility, utility: replaced, outcomes: outcomes))
                continue
            }
            let updated = policy.updated(utility: utility, reward: reward, maxNext: maxNext)
            try db.execute(
                sql: "UPDATE memories SET utility = ?, outcomes = outcomes + 1, last_used = ? WHERE key = ?", arguments: [updated, now, key])
            try db.execute(
                sql: "INSERT INTO memory_feedback (run_id, key, reward, is_default, outcomes_after, applied_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [runID, key, reward, isDefault, outcomes + 1, now])
            results.append(FeedbackResult(id: id, effect: .applied, reward: reward, previousUtility: utility, utility: updated, outcomes: outcomes + 1))
        }
        if !missing.isEmpty && !skipMissing {
            throw MemoryError(.notFound, "no memory \(missing.map { "'\($0)'" }.joined(separator: ", ")) in this tenant; nothing was applied")
        }
        return results
    }
}
