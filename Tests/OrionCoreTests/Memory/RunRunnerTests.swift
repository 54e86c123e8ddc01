import Foundation
import OrionCore
import OrionTestSupport
import Testing

struct ActFailed: Error {}

/// The loop every run and chat goes through: retrieve → act → outcome → feedback.
@Suite struct RunRunnerTests {
    static let seed = [
        MemoryInput(id: "a", session: "s", intent: "migrate the user database", experience: "used pg_dump"),
        MemoryInput(id: "b", session: "s", intent: "migrate the user database to staging", experience: "used logical replication"),
    ]

    @Test func aRunRecordsWhatItRetrievedAndAppliesItsOutcome() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.seed, namespace: "tenant_a")
        var given: [String] = []
        let record = try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s1", intent: "migrate the user database", topK: 2)) { context in
            given = context.memories.map(\.memory.id)
            return RunConclusion(outcome: .success, newExperience: "copied with pg_dump, then verified row counts")
        }
        #expect(Set(given) == ["a", "b"])
        #expect(record.status == .finished)
        #expect(record.retrievedMemoryIDs == given)
        #expect(record.usedMemoryIDs == given)
        #expect(record.outcome == "success")
        #expect(record.reward == 1)
        for id in given { #expect(abs(try #require(try h.memory.memory(id: id, namespace: "tenant_a")).utility - 0.1) < 1e-12) }
        let newID = try #require(record.newMemoryID)
        let learned = try #require(try h.memory.memory(id: newID, namespace: "tenant_a"))
        #expect(learned.intent == "migrate the user database")
        #expect(learned.session == "s1")
        #expect(try await h.runs.records(namespace: "tenant_a").map(\.id) == [record.id])
        #expect(try await h.runs.records(namespace: "tenant_b").isEmpty)
        await h.stop()
    }

    @Test func aRunWithoutAVectorRetrievesByMeaningAndStoresItsExperienceEmbedded() async throws {
        let h = try await MemoryHarness.start(embeddings: true)
        let stored = try await h.memory.store(
            [
                MemoryInput(id: "password", session: "s", intent: "reset a forgotten password", experience: "used the reset link"),
                MemoryInput(id: "bread", session: "s", intent: "bake sourdough bread", experience: "fed the starter"),
            ],
            namespace: "tenant_a", tier: "free")
        #expect(stored.allSatisfy { $0.embedding?.count == 384 }, "the tier's engine embedded each intent")
        // No word in common with either memory: only the engine-made query vector finds it.
        let record = try await h.runs.run(
            RunRequest(namespace: "tenant_a", tier: "free", session: "s1", intent: "I lost my passphrase and cannot sign in", topK: 1)
        ) { context in
            #expect(context.memories.map(\.memory.id) == ["password"])
            return RunConclusion(outcome: .success, newExperience: "sent a reset link by mail")
        }
        #expect(record.degradedReason == nil, "\(record.degradedReason ?? "")")
        let newID = try #require(record.newMemoryID)
        let learned = try #require(try h.memory.memory(id: newID, namespace: "tenant_a"))
        #expect(learned.embedding?.count == 384, "the new experience was stored with the query's vector")
        await h.stop()
    }

    @Test func onlyTheMemoriesARunUsedLearn() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.seed, namespace: "tenant_a")
        try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "migrate the user database", topK: 2)) { _ in
            RunConclusion(outcome: .failure, usedMemoryIDs: ["b"])
        }
        #expect(try h.memory.memory(id: "a", namespace: "tenant_a")?.utility == 0)
        #expect(abs(try #require(try h.memory.memory(id: "b", namespace: "tenant_a")).utility + 0.05) < 1e-12)
        await #expect(throws: MemoryError.self) {
            try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "migrate", topK: 1)) { _ in
                RunConclusion(outcome: .success, usedMemoryIDs: ["not-given"])
            }
        }
        await h.stop()
    }

    @Test func aFailingActIsRecordedAndTeachesNothing() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.seed, namespace: "tenant_a")
        await #expect(throws: ActFailed.self) {
            try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "migrate the user database", id: "boom")) { _ in
                throw ActFailed()
            }
        }
        let record = try #require(try await h.runs.record(id: "boom", namespace: "tenant_a"))
        #expect(record.status == .error)
        #expect(record.error?.contains("ActFailed") == true)
        #expect(try h.memory.memory(id: "a", namespace: "tenant_a")?.outcomes == 0)
        await #expect(throws: MemoryError.self, "a run id is used once") {
            try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "x", id: "boom")) { _ in
                RunConclusion(outcome: .success)
            }
        }
        await h.stop()
    }

    @Test func aChatDefaultsToSuccessAndAThumbsDownReplacesIt() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.seed, namespace: "tenant_a")
        let chat = try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", kind: .chat, intent: "migrate the user database", topK: 1)) { _ in
            .chat()
        }
        let used = try #require(chat.usedMemoryIDs.first)
        #expect(abs(try #require(try h.memory.memory(id: used, namespace: "tenant_a")).utility - 0.1) < 1e-12)
        let (rated, effects) = try await h.runs.feedback(namespace: "tenant_a", runID: chat.id, outcome: .reward(-1))
        #expect(effects.map(\.effect) == [.replaced])
        #expect(rated.outcome == "reward")
        #expect(rated.reward == -1)
        #expect(abs(try #require(try h.memory.memory(id: used, namespace: "tenant_a")).utility + 0.1) < 1e-12)
        let (_, again) = try await h.runs.feedback(namespace: "tenant_a", runID: chat.id, outcome: .reward(1))
        #expect(again.map(\.effect) == [.alreadyApplied])
        await #expect(throws: MemoryError.self, "another tenant cannot rate the run") {
            try await h.runs.feedback(namespace: "tenant_b", runID: chat.id, outcome: .reward(1))
        }
        await h.stop()
    }

    @Test func aRunWithoutARetrieverGoesOnAndSaysWhy() async throws {
        let h = try await MemoryHarness.start()
        let record = try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "no-such-tier", session: "s", intent: "restart the queue")) { context in
            #expect(context.memories.isEmpty)
            return RunConclusion(outcome: .success)
        }
        #expect(record.status == .finished)
        #expect(record.degradedReason?.contains("no-such-tier") == true)
        await h.stop()
    }
}
