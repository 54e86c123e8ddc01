import Foundation
import OrionCore
import OrionTestSupport
import Testing

/// Two-phase retrieval, and the learning it enables.
@Suite struct MemoryRetrievalTests {
    /// Memories whose intents share more or fewer words with "scale the cache layer in staging".
    static let memories = [
        MemoryInput(id: "exact", session: "s", intent: "scale the cache layer in staging", experience: "added two nodes"),
        MemoryInput(id: "close", session: "s", intent: "scale the cache layer", experience: "raised the memory limit"),
        MemoryInput(id: "far", session: "s", intent: "cache warmup in staging", experience: "ran the warmer"),
        MemoryInput(id: "other", session: "s", intent: "rotate the auth proxy keys", experience: "vault"),
    ]

    @Test func phaseBNormalisesSimilarityAndWeighsUtility() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.memories, namespace: "tenant_a")
        let cold = try h.memory.retrieve(namespace: "tenant_a", tier: "free", intent: "scale the cache layer in staging", topK: 3)
        #expect(cold.retriever == "fts")
        #expect(cold.hits.first?.memory.id == "exact", "with no outcomes yet, similarity decides")
        #expect(cold.hits.first?.similarity == 1)
        #expect(cold.hits.allSatisfy { (0...1).contains($0.similarity) })
        #expect(cold.hits.map(\.memory.id).contains("other") == false, "no shared word: not a candidate")
        for hit in cold.hits {
            #expect(abs(hit.score - 0.4 * hit.similarity) < 1e-12)
            #expect(hit.memory.experience.isEmpty == false)
        }
        // Three failures of "exact" and two successes of "close" turn the order around.
        for run in 0..<3 { try h.memory.feedback(namespace: "tenant_a", runID: "f\(run)", memoryIDs: ["exact"], outcome: .failure) }
        for run in 0..<2 { try h.memory.feedback(namespace: "tenant_a", runID: "s\(run)", memoryIDs: ["close"], outcome: .success) }
        let warm = try h.memory.retrieve(namespace: "tenant_a", tier: "free", intent: "scale the cache layer in staging", topK: 3)
        #expect(warm.hits.first?.memory.id == "close")
        let first = try #require(warm.hits.first)
        #expect(abs(first.score - (0.4 * first.similarity + 0.6 * first.utility)) < 1e-12)
        #expect(abs(first.utility - 0.19) < 1e-12)
        await h.stop()
    }

    @Test func normalisationIsMinMaxOverTheCandidates() {
        #expect(MemoryBank.normalise([4, 2, 3]) == [1, 0, 0.5])
        #expect(MemoryBank.normalise([-0.2, -0.6]) == [1, 0])
        #expect(MemoryBank.normalise([0.7, 0.7]) == [1, 1], "equal scores are all 1")
        #expect(MemoryBank.normalise([]) == [])
    }

    @Test func theFloorDropsWeakCandidatesAndExplorationIsSeeded() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.memories, namespace: "tenant_a")
        var floored = MemoryPolicy.standard
        floored.similarityFloor = 0.999
        let (strict, _) = h.bank(floored)
        let hits = try strict.retrieve(namespace: "tenant_a", tier: "free", intent: "scale the cache layer in staging", topK: 3).hits
        #expect(hits.map(\.memory.id) == ["exact"])

        var exploring = MemoryPolicy.standard
        exploring.explorationRate = 0.5
        let (bank, _) = h.bank(exploring, random: SeededGenerator(seed: 42))
        var explored = 0
        for _ in 0..<200 {
            let answer = try bank.retrieve(namespace: "tenant_a", tier: "free", intent: "scale the cache layer in staging", topK: 3)
            #expect(answer.hits.count == 3)
            #expect(answer.hits.dropFirst().allSatisfy { !$0.explored })
            if answer.hits[0].explored { explored += 1 }
        }
        // ε = 0.5 over 200 draws: 100 expected; a seeded generator makes the count repeatable.
        #expect((70...130).contains(explored), "\(explored)")
        await h.stop()
    }

    @Test func aRetrieverOutsideTheTierIsRefused() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.memories, namespace: "tenant_a")
        do {
            _ = try h.memory.retrieve(namespace: "tenant_a", tier: "free", retriever: "vector", intent: "scale", topK: 3)
            Issue.record("searched with a retriever the tier does not map")
        } catch let error as MemoryError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("choose one of: fts"))
        }
        #expect(throws: MemoryError.self) { try h.memory.retrieve(namespace: "tenant_a", tier: "gold", intent: "scale", topK: 3) }
        #expect(throws: MemoryError.self) { try h.memory.retrieve(namespace: "tenant_a", tier: "free", intent: "scale", topK: 0) }
        #expect(try h.memory.retrieve(namespace: "tenant_a", tier: "free", retriever: "fts", intent: "scale", topK: 3).hits.isEmpty == false)
        await h.stop()
    }

    @Test func memoriesAreTheOnlyDocumentsMemorySees() async throws {
        let h = try await MemoryHarness.start()
        try await h.memory.store(Self.memories, namespace: "tenant_a")
        try await h.documents.add([DocumentInput(id: "manual", fields: [DocumentField(name: "text", value: "scale the cache layer in staging")])], namespace: "tenant_a")
        let hits = try h.memory.retrieve(namespace: "tenant_a", tier: "free", intent: "scale the cache layer in staging", topK: 10).hits
        #expect(!hits.map(\.memory.id).contains("manual"))
        #expect(try await h.memory.delete(ids: ["manual", "exact"], namespace: "tenant_a") == 1, "a plain document is not a memory")
        await #expect(throws: MemoryError.self, "a memory cannot take over a plain document's id") {
            try await h.memory.store([MemoryInput(id: "manual", session: "s", intent: "x", experience: "y")], namespace: "tenant_a")
        }
        #expect(try h.documents.store.document(id: "manual", namespace: "tenant_a") != nil)
        #expect(try h.memory.memory(id: "exact", namespace: "tenant_a") == nil)
        await h.stop()
    }

    @Test func afterTheScriptedEpisodesTheGoodMemoryRanksFirst() async throws {
        let h = try await MemoryHarness.start()
        let scenario = LearningScenario(intents: 20, episodes: 12)
        var curves: [String: [Double]] = [:]
        for (name, policy) in [("similarity", MemoryPolicy.similarityOnly), ("default", .standard)] {
            let (bank, runner) = h.bank(policy)
            try await scenario.seed(bank, namespace: "tenant_\(name)")
            curves[name] = try await scenario.run(runner, namespace: "tenant_\(name)", tier: "free")
        }
        let similarity = try #require(curves["similarity"]), learned = try #require(curves["default"])
        #expect(similarity.allSatisfy { $0 == 0 }, "plain similarity keeps ranking the near-duplicate first: \(similarity)")
        #expect(learned.first == 0, "nothing is known before the first outcome")
        #expect(try #require(learned.last) >= 0.95, "\(learned)")
        await h.stop()
    }
}
