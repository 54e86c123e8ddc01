import Foundation
import OrionCore
import OrionTestSupport
import Testing

/// The Q-value update: the formula, idempotency, replacement of a default, concurrency, restart
/// and tenancy.
@Suite struct MemoryFeedbackTests {
    @Test(arguments: [
        (Outcome.success, 0.1), (.partial, 0.01), (.failure, -0.05), (.reward(0.7), 0.07), (.reward(-1), -0.1),
    ])
    func oneUpdateFromZero(outcome: Outcome, expected: Double) {
        // Q ← Q + α (r + γ·0 − Q) with Q = 0, α = 0.1.
        let policy = MemoryPolicy.standard
        #expect(abs(policy.updated(utility: 0, reward: policy.reward(for: outcome)) - expected) < 1e-12)
    }

    @Test func theUpdateUsesDiscountAndClamps() {
        var policy = MemoryPolicy.standard
        // 0.5 + 0.1 (1 + 0.9 × 0.8 − 0.5) = 0.622
        #expect(abs(policy.updated(utility: 0.5, reward: 1, maxNext: 0.8) - 0.622) < 1e-12)
        policy.learningRate = 1
        #expect(policy.updated(utility: 0.9, reward: 1, maxNext: 1) == 1, "1 + 0.9 is clamped to 1")
        #expect(policy.updated(utility: -0.9, reward: -1, maxNext: -1) == -1, "-1 - 0.9 is clamped to -1")
        #expect(MemoryPolicy.paper.reward(for: .failure) == -1)
        #expect(MemoryPolicy.paper.updated(utility: 0.5, reward: 1, maxNext: 1) == 0.55, "γ = 0 in the paper preset")
    }

    @Test func feedbackUpdatesTheStoredMemory() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store([MemoryInput(id: "m", session: "s", intent: "rotate keys", experience: "used the vault cli")], namespace: "tenant_a")
        var expected = 0.0
        for (run, outcome) in [Outcome.success, .success, .failure, .partial, .reward(0.3)].enumerated() {
            let before = Date()
            let result = try #require(try h.memory.feedback(namespace: "tenant_a", runID: "r\(run)", memoryIDs: ["m"], outcome: outcome).first)
            expected = expected + 0.1 * (MemoryPolicy.standard.reward(for: outcome) - expected)
            #expect(result.effect == .applied)
            #expect(abs(result.utility - expected) < 1e-12)
            let stored = try #require(try h.memory.memory(id: "m", namespace: "tenant_a"))
            #expect(abs(stored.utility - expected) < 1e-12)
            #expect(stored.outcomes == run + 1)
            #expect(try #require(stored.lastUsed) >= Int64(before.timeIntervalSince1970 * 1000) - 1)
        }
        await h.stop()
    }

    @Test func aRetriedFeedbackAppliesOnce() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store([MemoryInput(id: "m", session: "s", intent: "rotate keys", experience: "vault")], namespace: "tenant_a")
        try h.memory.feedback(namespace: "tenant_a", runID: "run-1", memoryIDs: ["m"], outcome: .success)
        let retry = try h.memory.feedback(namespace: "tenant_a", runID: "run-1", memoryIDs: ["m"], outcome: .success)
        #expect(retry.first?.effect == .alreadyApplied)
        let other = try h.memory.feedback(namespace: "tenant_a", runID: "run-1", memoryIDs: ["m"], outcome: .failure)
        #expect(other.first?.effect == .alreadyApplied, "an explicit outcome does not replace an explicit one")
        let stored = try #require(try h.memory.memory(id: "m", namespace: "tenant_a"))
        #expect(abs(stored.utility - 0.1) < 1e-12)
        #expect(stored.outcomes == 1)
        await h.stop()
    }

    @Test func anExplicitRatingReplacesADefaultAsIfGivenFirst() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store([
            MemoryInput(id: "m", session: "s", intent: "rotate keys", experience: "vault"),
            MemoryInput(id: "n", session: "s", intent: "rotate keys", experience: "vault"),
        ], namespace: "tenant_a")
        // m: chat-1 ends with the default success, chat-2 succeeds, then chat-1 gets a thumbs-down.
        try h.memory.feedback(namespace: "tenant_a", runID: "chat-1", memoryIDs: ["m"], outcome: .success, isDefault: true)
        try h.memory.feedback(namespace: "tenant_a", runID: "chat-2", memoryIDs: ["m"], outcome: .success)
        let replaced = try h.memory.feedback(namespace: "tenant_a", runID: "chat-1", memoryIDs: ["m"], outcome: .reward(-1))
        #expect(replaced.first?.effect == .replaced)
        // n: the same outcomes given explicitly in the same order.
        try h.memory.feedback(namespace: "tenant_a", runID: "chat-1", memoryIDs: ["n"], outcome: .reward(-1))
        try h.memory.feedback(namespace: "tenant_a", runID: "chat-2", memoryIDs: ["n"], outcome: .success)
        let m = try #require(try h.memory.memory(id: "m", namespace: "tenant_a"))
        let n = try #require(try h.memory.memory(id: "n", namespace: "tenant_a"))
        #expect(abs(m.utility - n.utility) < 1e-12, "\(m.utility) vs \(n.utility)")
        #expect(m.outcomes == 2)
        let again = try h.memory.feedback(namespace: "tenant_a", runID: "chat-1", memoryIDs: ["m"], outcome: .reward(1))
        #expect(again.first?.effect == .alreadyApplied, "a second rating changes nothing")
        await h.stop()
    }

    @Test func aHundredConcurrentFeedbacksEqualTheSequence() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store([
            MemoryInput(id: "hot", session: "s", intent: "scale the cache", experience: "added nodes"),
            MemoryInput(id: "calm", session: "s", intent: "scale the cache", experience: "added nodes"),
        ], namespace: "tenant_a")
        // Each feedback is sent twice, as a client retrying would: 200 calls, 100 distinct runs.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for attempt in 0..<200 {
                group.addTask {
                    try h.memory.feedback(namespace: "tenant_a", runID: "run-\(attempt % 100)", memoryIDs: ["hot"], outcome: .success)
                }
            }
            try await group.waitForAll()
        }
        for run in 0..<100 { try h.memory.feedback(namespace: "tenant_a", runID: "run-\(run)", memoryIDs: ["calm"], outcome: .success) }
        let hot = try #require(try h.memory.memory(id: "hot", namespace: "tenant_a"))
        let calm = try #require(try h.memory.memory(id: "calm", namespace: "tenant_a"))
        #expect(hot.outcomes == 100)
        #expect(hot.utility == calm.utility)
        #expect(abs(hot.utility - (1 - pow(0.9, 100))) < 1e-9)
        await h.stop()
    }

    @Test func utilitiesSurviveARestart() async throws {
        let dir = TestPlugins.temporaryDirectory("orion-memory")
        do {
            let h = try await MemoryHarness.start(dir: dir)
            try await h.memory.store([MemoryInput(id: "m", session: "s", intent: "patch the ledger", experience: "hotfix")], namespace: "tenant_a")
            try h.memory.feedback(namespace: "tenant_a", runID: "r1", memoryIDs: ["m"], outcome: .failure)
            await h.stop()
        }
        let h = try await MemoryHarness.start(dir: dir)
        let stored = try #require(try h.memory.memory(id: "m", namespace: "tenant_a"))
        #expect(abs(stored.utility + 0.05) < 1e-12)
        #expect(stored.outcomes == 1)
        let retry = try h.memory.feedback(namespace: "tenant_a", runID: "r1", memoryIDs: ["m"], outcome: .failure)
        #expect(retry.first?.effect == .alreadyApplied, "idempotency survives the restart too")
        let found = try h.memory.retrieve(namespace: "tenant_a", tier: "free", intent: "patch the ledger", topK: 1)
        #expect(found.hits.first?.utility == stored.utility, "the retriever was refilled from the store")
        await h.stop()
    }

    @Test func oneTenantsFeedbackNeverReachesAnother() async throws {
        let h = try await MemoryHarness.start()
        for tenant in ["tenant_a", "tenant_b"] {
            try await h.memory.store([MemoryInput(id: "shared-id", session: "s", intent: "audit the proxy", experience: tenant)], namespace: tenant)
        }
        try await h.memory.store([MemoryInput(id: "only-b", session: "s", intent: "audit the proxy", experience: "b")], namespace: "tenant_b")
        try h.memory.feedback(namespace: "tenant_a", runID: "r", memoryIDs: ["shared-id"], outcome: .success)
        #expect(try h.memory.memory(id: "shared-id", namespace: "tenant_b")?.utility == 0)
        #expect(throws: MemoryError.self) {
            try h.memory.feedback(namespace: "tenant_a", runID: "r2", memoryIDs: ["shared-id", "only-b"], outcome: .failure)
        }
        #expect(try h.memory.memory(id: "only-b", namespace: "tenant_b")?.utility == 0)
        #expect(abs(try #require(try h.memory.memory(id: "shared-id", namespace: "tenant_a")).utility - 0.1) < 1e-12, "a refused call applies nothing")
        let seen = try h.memory.retrieve(namespace: "tenant_a", tier: "free", intent: "audit the proxy", topK: 5)
        #expect(seen.hits.map(\.memory.namespace) == ["tenant_a"])
        #expect(try await h.memory.delete(ids: ["only-b"], namespace: "tenant_a") == 0)
        #expect(try h.memory.memory(id: "only-b", namespace: "tenant_b") != nil)
        await h.stop()
    }

    @Test func badFeedbackIsRefusedWithAReason() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store([MemoryInput(id: "m", session: "s", intent: "archive logs", experience: "x")], namespace: "tenant_a")
        for (call, says) in [
            ({ try h.memory.feedback(namespace: "tenant_a", runID: "", memoryIDs: ["m"], outcome: .success) }, "run id"),
            ({ try h.memory.feedback(namespace: "tenant_a", runID: "r", memoryIDs: ["m"], outcome: .reward(2)) }, "[-1, 1]"),
            ({ try h.memory.feedback(namespace: "tenant_a", runID: "r", memoryIDs: ["m"], outcome: .reward(.nan)) }, "[-1, 1]"),
            ({ try h.memory.feedback(namespace: "tenant_a", runID: "r", memoryIDs: ["m", "m"], outcome: .success) }, "twice"),
            ({ try h.memory.feedback(namespace: "tenant_a", runID: "r", memoryIDs: ["nope"], outcome: .success) }, "no memory 'nope'"),
        ] as [(() throws -> [FeedbackResult], String)] {
            do {
                _ = try call()
                Issue.record("accepted; expected a refusal mentioning \(says)")
            } catch let error as MemoryError {
                #expect(error.message.contains(says), "\(error.message)")
            }
        }
        #expect(try h.memory.memory(id: "m", namespace: "tenant_a")?.outcomes == 0)
        await #expect(throws: MemoryError.self) {
            try await h.memory.store([MemoryInput(session: "s", intent: "  ", experience: "x")], namespace: "tenant_a")
        }
        await h.stop()
    }

    @Test func withLearningOffOutcomesChangeNothing() async throws {
        let h = try await MemoryHarness.start(learns: false)
        try await h.memory.store([MemoryInput(id: "m", session: "s", intent: "restart the hub", experience: "x")], namespace: "tenant_a")
        let result = try h.memory.feedback(namespace: "tenant_a", runID: "r", memoryIDs: ["m"], outcome: .success)
        #expect(result.first?.effect == .notLearning)
        #expect(try h.memory.memory(id: "m", namespace: "tenant_a")?.utility == 0)
        await h.stop()
    }
}
