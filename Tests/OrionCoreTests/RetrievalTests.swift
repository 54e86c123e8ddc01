import Foundation
import Logging
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

@Suite struct RetrievalMetricsTests {
    @Test func ndcgWithGradedRelevanceMatchesAHandComputedValue() {
        // Ranking: a (rel 3), x (unjudged), b (rel 1), c (rel 2).
        // DCG  = 3/log2(2) + 0 + 1/log2(4) + 2/log2(5) = 3 + 0.5 + 0.861353 = 4.361353
        // IDCG = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.261860 + 0.5 = 4.761860
        let value = RetrievalMetrics.ndcg(ranking: ["a", "x", "b", "c"], relevance: ["a": 3, "b": 1, "c": 2], k: 10)
        #expect(abs(value - 4.361353 / 4.761860) < 1e-5)
    }

    @Test func ndcgCutsAtK() {
        // Only the first two count: DCG = 0 + 1/log2(3); IDCG = 1.
        let value = RetrievalMetrics.ndcg(ranking: ["x", "a", "b"], relevance: ["a": 1], k: 2)
        #expect(abs(value - 1 / log2(3.0)) < 1e-9)
        #expect(RetrievalMetrics.ndcg(ranking: ["x", "y", "a"], relevance: ["a": 1], k: 2) == 0)
        #expect(RetrievalMetrics.ndcg(ranking: ["a"], relevance: ["a": 0], k: 10) == 0, "no relevant document: 0")
        #expect(RetrievalMetrics.ndcg(ranking: ["a", "b"], relevance: ["a": 1, "b": 1], k: 10) == 1)
    }

    @Test func recallCountsRelevantDocumentsInTheFirstK() {
        #expect(RetrievalMetrics.recall(ranking: ["a", "x", "b"], relevance: ["a": 1, "b": 2, "c": 1, "z": 0], k: 100) == 2.0 / 3.0)
        #expect(RetrievalMetrics.recall(ranking: ["x", "a"], relevance: ["a": 1], k: 1) == 0)
    }
}

/// Retrievers deployed together, fed and searched through the document index.
@Suite struct RetrievalTests {
    let dir = TestPlugins.temporaryDirectory("orion-retrieval")
    var pluginsD: String { (dir as NSString).appendingPathComponent("plugins.d") }

    init() throws {
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try write("a.yaml", "id: a\nplugin: fixture-swift-retriever\n")
        try write("b.yaml", "id: b\nplugin: fixture-swift-retriever\n")
        try write("fts.yaml", "id: fts\nplugin: fts-sqlite\n")
        try write("vector.yaml", "id: vector\nplugin: vector-flat\n")
        try write("xapian.yaml", "id: xapian\nplugin: fts-xapian\n")
        try write("hnsw.yaml", "id: hnsw\nplugin: vector-hnsw\n")
        try write("hybrid.yaml", "id: hybrid\nplugin: hybrid-rrf\nconfig:\n  sources: [{ id: vector }, { id: fts }]\n")
        try write("tiers.yaml", "tiers:\n  free:\n    capabilities: { retrieval: fts }\n")
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: (pluginsD as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func start() async throws -> (PluginRuntime, DocumentIndex) {
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let index = DocumentIndex(store: try DocumentStore(path: dir + "/documents.sqlite"), registry: runtime.registry, logger: logger)
        await runtime.addPreparer(index)
        try await runtime.reload()
        return (runtime, index)
    }

    /// Sources with known rankings: a ranks [1, 2, 3], b ranks [3, 4, 1] for "x y z".
    func fusion(_ hybridConfig: String) async throws -> RetrieverAnswer {
        try write("hybrid.yaml", "id: hybrid\nplugin: hybrid-rrf\nconfig:\n\(hybridConfig)")
        let (runtime, _) = try await start()
        let a = try runtime.registry.lease(kind: .retriever, id: "a")
        try #require(a.retriever).add([
            RetrieverDocument(id: 1, namespace: "ns", fields: [("text", "x y z")]),
            RetrieverDocument(id: 2, namespace: "ns", fields: [("text", "x y")]),
            RetrieverDocument(id: 3, namespace: "ns", fields: [("text", "x")]),
        ])
        let b = try runtime.registry.lease(kind: .retriever, id: "b")
        try #require(b.retriever).add([
            RetrieverDocument(id: 3, namespace: "ns", fields: [("text", "x y z")]),
            RetrieverDocument(id: 4, namespace: "ns", fields: [("text", "x y")]),
            RetrieverDocument(id: 1, namespace: "ns", fields: [("text", "x")]),
        ])
        a.release()
        b.release()
        let hybrid = try runtime.registry.lease(kind: .retriever, id: "hybrid")
        defer { hybrid.release() }
        let answer = try #require(hybrid.retriever).search(namespace: "ns", text: "x y z", topK: 10)
        await runtime.shutdown()
        return answer
    }

    @Test func rrfArithmeticAndTheTieRule() async throws {
        let answer = try await fusion("  sources: [{ id: a }, { id: b }]\n")
        // 1 and 3 tie at 1/61 + 1/63; 1 comes first in the earlier list. 2 and 4 tie at 1/62; 2 is in
        // the earlier list.
        #expect(answer.hits.map(\.id) == [1, 3, 2, 4])
        #expect(abs(answer.hits[0].score - (1.0 / 61 + 1.0 / 63)) < 1e-6)
        #expect(abs(answer.hits[2].score - 1.0 / 62) < 1e-6)
        #expect(answer.hits.allSatisfy { $0.source == .hybrid })
        #expect(answer.hits[0].details.map(\.sourceIndex) == [0, 1])
        #expect(answer.hits[0].details.map(\.rank) == [1, 3])
        #expect(answer.hits[0].details.allSatisfy { $0.source == .fts })
        // A document found by one source only carries that source alone.
        #expect(answer.hits[2].details.map(\.sourceIndex) == [0])
        #expect(answer.hits[3].details.map(\.sourceIndex) == [1])
        #expect(answer.degradedReason == nil)
    }

    @Test func weightsAndKChangeTheFusion() async throws {
        let answer = try await fusion("  k: 10\n  sources: [{ id: a, weight: 1 }, { id: b, weight: 2 }]\n")
        // doc 3: 1/13 + 2/11; doc 1: 1/11 + 2/13; doc 4: 2/12; doc 2: 1/12.
        #expect(answer.hits.map(\.id) == [3, 1, 4, 2])
        #expect(abs(answer.hits[0].score - (1.0 / 13 + 2.0 / 11)) < 1e-6)
    }

    @Test func aMissingSourceDegradesTheAnswer() async throws {
        let answer = try await fusion("  sources: [{ id: a }, { id: gone }]\n")
        #expect(answer.hits.map(\.id) == [1, 2, 3])
        #expect(answer.degradedReason?.contains("gone") == true)
    }

    @Test(arguments: ["vector", "hnsw"])
    func vectorIndexesSkipTextOnlyDocumentsAndDropTheirOlderVectors(retriever: String) async throws {
        let (runtime, index) = try await start()
        let v: [Float] = [1, 0, 0, 0]
        try await index.add([
            DocumentInput(id: "with", fields: [DocumentField(name: "text", value: "alpha")], embedding: v),
            DocumentInput(id: "without", fields: [DocumentField(name: "text", value: "beta")]),
        ], namespace: "ns")
        #expect(try index.ranking(instanceID: retriever, namespace: "ns", text: "", vector: v, topK: 10).ids == ["with"])
        // The same id stored again without a vector is no longer found by vector.
        try await index.add([DocumentInput(id: "with", fields: [DocumentField(name: "text", value: "alpha")])], namespace: "ns")
        #expect(try index.ranking(instanceID: retriever, namespace: "ns", text: "", vector: v, topK: 10).ids.isEmpty)
        // A rebuild from the store (a new instance) accepts the text-only documents too.
        let stats = try #require(try runtime.registry.lease(kind: .retriever, id: retriever).retriever).stats()
        #expect(stats.checkpoint == UInt64(try index.store.revision()), "the index kept up; nothing was refused")
        await runtime.shutdown()
    }

    @Test func ftsSearchesOperatorCharactersLiterally() async throws {
        let (runtime, index) = try await start()
        try await index.add([
            DocumentInput(id: "near", fields: [DocumentField(name: "text", value: "stars NEAR the galaxy")]),
            DocumentInput(id: "orion", fields: [DocumentField(name: "title", value: "Orion"), DocumentField(name: "text", value: "a nebula")]),
            DocumentInput(id: "other", fields: [DocumentField(name: "text", value: "nothing relevant")]),
        ], namespace: "tenant_a")
        for text in [#""orion"#, "orion*", "title:orion", "^orion", "-orion", "(orion", "orion)", "orion NEAR", "AND", "OR NOT", #"" * : ^ - ( ) + {} [] ' \"#, "NEAR(orion galaxy, 2)"] {
            let answer = try index.search(instanceID: "fts", namespace: "tenant_a", text: text, topK: 5)
            #expect(!answer.hits.contains { $0.document.id == "other" }, "\(text)")
        }
        #expect(try index.search(instanceID: "fts", namespace: "tenant_a", text: "NEAR", topK: 5).hits.map(\.document.id) == ["near"])
        #expect(try index.search(instanceID: "fts", namespace: "tenant_a", text: "\"orion\" OR", topK: 5).hits.map(\.document.id) == ["orion"])
        // Porter stemming: "nebulae"… no; "galaxies" matches "galaxy".
        #expect(try index.search(instanceID: "fts", namespace: "tenant_a", text: "galaxies", topK: 5).hits.map(\.document.id) == ["near"])
        await runtime.shutdown()
    }

    /// fts-xapian leaves English stopwords out of queries (not out of the index): they no longer
    /// rank a document that shares only them, and a query made only of stopwords still searches
    /// them. `stopwords: none` keeps them.
    @Test func xapianLeavesStopwordsOutOfQueries() async throws {
        try write("plain.yaml", "id: plain\nplugin: fts-xapian\nconfig: { stopwords: none }\n")
        let (runtime, index) = try await start()
        try await index.add([
            DocumentInput(id: "comet", fields: [DocumentField(name: "text", value: "a comet")]),
            DocumentInput(id: "filler", fields: [DocumentField(name: "text", value: "the of and the of and the of")]),
            DocumentInput(id: "hamlet", fields: [DocumentField(name: "text", value: "to be or not to be")]),
        ], namespace: "tenant_a")
        #expect(try index.search(instanceID: "xapian", namespace: "tenant_a", text: "the comet of the year", topK: 5).hits.map(\.document.id) == ["comet"])
        #expect(try index.search(instanceID: "plain", namespace: "tenant_a", text: "the comet of the year", topK: 5).hits.map(\.document.id).contains("filler"))
        #expect(try index.search(instanceID: "xapian", namespace: "tenant_a", text: "To be, or not to be", topK: 5).hits.map(\.document.id).first == "hamlet")
        await runtime.shutdown()
    }

    @Test func xapianRefusesAnUnknownStopwordList() async throws {
        try write("bad.yaml", "id: bad\nplugin: fts-xapian\nconfig: { stopwords: klingon }\n")
        let (runtime, _) = try await start()
        #expect(throws: (any Error).self) { try runtime.registry.lease(kind: .retriever, id: "bad") }
        let xapian = try runtime.registry.lease(kind: .retriever, id: "xapian")
        #expect(xapian.retriever != nil, "the other instances still load")
        xapian.release()
        await runtime.shutdown()
    }

    @Test func noRetrieverEverReturnsAnotherTenantsDocument() async throws {
        let (runtime, index) = try await start()
        let words = ["orion", "nebula", "galaxy", "comet", "quasar", "pulsar"]
        for tenant in 0..<3 {
            try await index.add((0..<15).map { i in
                DocumentInput(
                    id: "d\(i)", fields: [DocumentField(name: "text", value: "\(words[i % 6]) \(words[(i + tenant) % 6])")],
                    metadata: ["tenant": "\(tenant)"], embedding: DocumentIndexTests.vector(tenant * 50 + i))
            }, namespace: "tenant_\(tenant)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let tenant = Int.random(in: 0..<3, using: &generator)
            let text = words.shuffled(using: &generator).prefix(2).joined(separator: " ")
            for retriever in Self.allRetrievers {
                let answer = try index.search(
                    instanceID: retriever, namespace: "tenant_\(tenant)", text: text, vector: DocumentIndexTests.vector(Int.random(in: 0..<200, using: &generator)), topK: 10)
                #expect(answer.hits.allSatisfy { $0.document.metadata["tenant"] == "\(tenant)" }, "\(retriever)")
                #expect(!answer.hits.isEmpty, "\(retriever) found nothing")
            }
        }
        await runtime.shutdown()
    }

    static let allRetrievers = ["fts", "xapian", "vector", "hnsw", "hybrid", "a"]

    /// Metadata filters hold in every retriever, hybrid included, and apply before ranking: when
    /// one document in ten matches, a search for 10 still answers 10, all of them matches.
    @Test func everyRetrieverFiltersBeforeRanking() async throws {
        let (runtime, index) = try await start()
        try await index.add((0..<300).map { i in
            DocumentInput(
                id: "d\(i)", fields: [DocumentField(name: "text", value: "orion nebula survey \(i)")],
                metadata: ["shelf": i % 10 == 3 ? "rare" : "common", "parity": i % 2 == 0 ? "even" : "odd"], embedding: DocumentIndexTests.vector(i))
        }, namespace: "tenant_a")
        for retriever in Self.allRetrievers {
            for (filters, expected) in [(["shelf": "rare"], 30), (["shelf": "common"], 270), (["shelf": "rare", "parity": "odd"], 30)] {
                let answer = try index.search(
                    instanceID: retriever, namespace: "tenant_a", text: "orion nebula", vector: DocumentIndexTests.vector(13), topK: 10, filters: filters)
                #expect(answer.hits.count == min(10, expected), "\(retriever) \(filters)")
                #expect(answer.hits.allSatisfy { hit in filters.allSatisfy { hit.document.metadata[$0.key] == $0.value } }, "\(retriever) \(filters)")
            }
            // Where meaning ranks, the query's own document comes first among the matches.
            if ["vector", "hnsw", "hybrid"].contains(retriever) {
                let rare = try index.search(
                    instanceID: retriever, namespace: "tenant_a", text: "", vector: DocumentIndexTests.vector(13), topK: 5, filters: ["shelf": "rare"])
                #expect(rare.hits.first?.document.id == "d13", "\(retriever)")
            }
            let none = try index.search(instanceID: retriever, namespace: "tenant_a", text: "orion", vector: DocumentIndexTests.vector(1), topK: 10, filters: ["shelf": "missing"])
            #expect(none.hits.isEmpty, "\(retriever)")
        }
        await runtime.shutdown()
    }

    @Test func deleteRemovesADocumentFromEveryIndexAndARestartAgrees() async throws {
        do {
            let (runtime, index) = try await start()
            try await index.add((0..<12).map { i in
                DocumentInput(id: "d\(i)", fields: [DocumentField(name: "text", value: "orion nebula \(i)")], embedding: DocumentIndexTests.vector(i))
            }, namespace: "tenant_a")
            try await index.delete(ids: ["d5"], namespace: "tenant_a")
            for retriever in Self.allRetrievers {
                let answer = try index.search(instanceID: retriever, namespace: "tenant_a", text: "orion nebula", vector: DocumentIndexTests.vector(5), topK: 12)
                #expect(answer.hits.count == 11, "\(retriever)")
                #expect(!answer.hits.contains { $0.document.id == "d5" }, "\(retriever)")
            }
            await runtime.shutdown()
        }
        let (runtime, index) = try await start()
        for retriever in Self.allRetrievers {
            let answer = try index.search(instanceID: retriever, namespace: "tenant_a", text: "orion nebula", vector: DocumentIndexTests.vector(5), topK: 12)
            #expect(Set(answer.hits.map(\.document.id)) == Set((0..<12).filter { $0 != 5 }.map { "d\($0)" }), "\(retriever) after restart")
        }
        await runtime.shutdown()
    }

    @Test func hybridWithoutAQueryVectorReturnsFullTextMarkedDegraded() async throws {
        let (runtime, index) = try await start()
        try await index.add([DocumentInput(id: "d", fields: [DocumentField(name: "text", value: "orion")], embedding: [1, 0, 0, 0])], namespace: "tenant_a")
        let answer = try index.search(instanceID: "hybrid", namespace: "tenant_a", text: "orion", topK: 3)
        #expect(answer.hits.map(\.document.id) == ["d"])
        #expect(answer.degradedReason?.contains("needs a query vector") == true)
        #expect(answer.hits.first?.details.map(\.source) == [.fts])
        await runtime.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func swappingTheTiersRetrieverFromFTSToHybridWhileSearching() async throws {
        let (runtime, index) = try await start()
        try await index.add((0..<30).map { i in
            DocumentInput(id: "d\(i)", fields: [DocumentField(name: "text", value: "orion report \(i)")], embedding: DocumentIndexTests.vector(i))
        }, namespace: "tenant_a")
        let failures = SharedCounter()
        let done = SharedFlag()
        let reader = Task {
            var searches = 0
            while !done.isSet || searches < 200 {
                do {
                    let answer = try index.search(tier: "free", namespace: "tenant_a", text: "orion", vector: DocumentIndexTests.vector(3), topK: 5)
                    if answer.hits.count != 5 { failures.increment() }
                } catch {
                    failures.increment()
                }
                searches += 1
                if searches > 100_000 { break }
                await Task.yield()
            }
            return searches
        }
        for round in 0..<6 {
            try write("tiers.yaml", "tiers:\n  free:\n    capabilities: { retrieval: \(round % 2 == 0 ? "hybrid" : "fts") }\n")
            try await runtime.reload()
        }
        done.set()
        let searches = await reader.value
        #expect(searches >= 200)
        #expect(failures.count == 0)
        await runtime.shutdown()
    }
}
