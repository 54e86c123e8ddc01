import Foundation
import Logging
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// The document store as the source of truth, and retrievers kept in step with it.
@Suite struct DocumentIndexTests {
    let dir = TestPlugins.temporaryDirectory("orion-docs")
    var pluginsD: String { (dir as NSString).appendingPathComponent("plugins.d") }
    var storePath: String { (dir as NSString).appendingPathComponent("documents.sqlite") }

    init() throws {
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: vector\nplugin: vector-flat\n".write(toFile: pluginsD + "/vector.yaml", atomically: true, encoding: .utf8)
        try "id: words\nplugin: fixture-swift-retriever\n".write(toFile: pluginsD + "/words.yaml", atomically: true, encoding: .utf8)
    }

    /// A runtime whose retrievers are filled from the store at `storePath`.
    func start() async throws -> (PluginRuntime, DocumentIndex) {
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let index = DocumentIndex(store: try DocumentStore(path: storePath), registry: runtime.registry, logger: logger, batchSize: 7)
        await runtime.addPreparer(index)
        try await runtime.reload()
        return (runtime, index)
    }

    static let words = ["orion", "nebula", "galaxy", "comet", "quasar", "pulsar", "meteor", "aurora"]

    /// A deterministic unit vector for document `n`.
    static func vector(_ n: Int) -> [Float] {
        var v = (0..<8).map { Float(sin(Double(n * 7 + $0 * 3))) }
        let norm = sqrt(v.reduce(0) { $0 + $1 * $1 })
        for i in v.indices { v[i] /= norm }
        return v
    }

    static func documents(_ tenant: Int, count: Int = 20) -> [DocumentInput] {
        (0..<count).map { i in
            DocumentInput(
                id: "doc-\(i)", fields: [DocumentField(name: "text", value: "\(words[i % 8]) \(words[(i + tenant) % 8]) report")],
                metadata: ["parity": i % 2 == 0 ? "even" : "odd", "tenant": "t\(tenant)"], embedding: vector(tenant * 100 + i))
        }
    }

    @Test func randomQueriesNeverReturnAnotherTenantsDocuments() async throws {
        let (runtime, index) = try await start()
        for tenant in 0..<3 { try await index.add(Self.documents(tenant), namespace: "tenant_\(tenant)") }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let tenant = Int.random(in: 0..<3, using: &generator)
            let text = (0..<3).map { _ in Self.words.randomElement(using: &generator)! }.joined(separator: " ")  // words is non-empty
            for retriever in ["vector", "words"] {
                let answer = try index.search(instanceID: retriever, namespace: "tenant_\(tenant)", text: text, vector: Self.vector(Int.random(in: 0..<400, using: &generator)), topK: 10)
                #expect(answer.hits.allSatisfy { $0.document.namespace == "tenant_\(tenant)" && $0.document.metadata["tenant"] == "t\(tenant)" })
                if retriever == "vector" { #expect(answer.hits.count == 10) }
            }
        }
        await runtime.shutdown()
    }

    @Test func filtersApplyBeforeRanking() async throws {
        let (runtime, index) = try await start()
        try await index.add(Self.documents(0, count: 40), namespace: "tenant_a")
        let answer = try index.search(instanceID: "vector", namespace: "tenant_a", text: "", vector: Self.vector(3), topK: 15, filters: ["parity": "odd"])
        #expect(answer.hits.count == 15)
        #expect(answer.hits.allSatisfy { $0.document.metadata["parity"] == "odd" })
        // The best odd document is the query's own source document.
        #expect(answer.hits.first?.document.id == "doc-3")
        await runtime.shutdown()
    }

    @Test func deleteRemovesFromEveryIndex() async throws {
        let (runtime, index) = try await start()
        try await index.add(Self.documents(0), namespace: "tenant_a")
        let removed = try await index.delete(ids: ["doc-4", "doc-missing"], namespace: "tenant_a")
        #expect(removed == 1)
        let byVector = try index.search(instanceID: "vector", namespace: "tenant_a", text: "", vector: Self.vector(4), topK: 20)
        let byWords = try index.search(instanceID: "words", namespace: "tenant_a", text: Self.words.joined(separator: " "), topK: 20)
        #expect(byVector.hits.count == 19)
        #expect(!byVector.hits.contains { $0.document.id == "doc-4" })
        #expect(!byWords.hits.contains { $0.document.id == "doc-4" })
        await runtime.shutdown()
    }

    @Test func aRestartRebuildsIndexesConsistentWithTheStore() async throws {
        do {
            let (runtime, index) = try await start()
            try await index.add(Self.documents(0), namespace: "tenant_a")
            try await index.delete(ids: ["doc-1"], namespace: "tenant_a")
            await runtime.shutdown()
        }
        let (runtime, index) = try await start()
        for id in ["vector", "words"] {
            let lease = try runtime.registry.lease(kind: .retriever, id: id)
            let stats = try #require(lease.retriever).stats()
            #expect(stats.documentCount == 19, "\(id) holds what the store holds")
            #expect(stats.checkpoint == UInt64(try index.store.revision()))
            lease.release()
        }
        let answer = try index.search(instanceID: "vector", namespace: "tenant_a", text: "", vector: Self.vector(0), topK: 50)
        #expect(Set(answer.hits.map(\.document.id)) == Set((0..<20).filter { $0 != 1 }.map { "doc-\($0)" }))
        await runtime.shutdown()
    }

    @Test func aSwappedInRetrieverIsFilledBeforeItServesAndCaughtUpAfter() async throws {
        let (runtime, index) = try await start()
        try await index.add(Self.documents(0), namespace: "tenant_a")
        try "id: vector\nplugin: vector-flat\nconfig: { metric: dot }\n".write(toFile: pluginsD + "/vector.yaml", atomically: true, encoding: .utf8)
        let failures = SharedCounter()
        let writer = Task {
            for i in 100..<140 {
                try await index.add([DocumentInput(id: "late-\(i)", fields: [DocumentField(name: "text", value: "late")], embedding: Self.vector(i))], namespace: "tenant_a")
            }
        }
        let reader = Task {
            for _ in 0..<300 {
                do {
                    let answer = try index.search(instanceID: "vector", namespace: "tenant_a", text: "", vector: Self.vector(2), topK: 5)
                    if answer.hits.count != 5 { failures.increment() }
                } catch {
                    failures.increment()
                }
                await Task.yield()
            }
        }
        let report = try await runtime.reload()
        #expect(report.created == ["vector"])
        try await writer.value
        await reader.value
        #expect(failures.count == 0, "no search failed or came back short during the swap")
        let lease = try runtime.registry.lease(kind: .retriever, id: "vector")
        #expect(try #require(lease.retriever).stats().documentCount == 60)
        lease.release()
        await runtime.shutdown()
    }

    @Test func vectorSearchWithoutAVectorIsAClearError() async throws {
        let (runtime, index) = try await start()
        try await index.add(Self.documents(0, count: 3), namespace: "tenant_a")
        #expect {
            try index.search(instanceID: "vector", namespace: "tenant_a", text: "orion", topK: 3)
        } throws: { error in
            "\(error)".contains("vector-flat needs a query vector")
        }
        await runtime.shutdown()
    }

    @Test func aVectorOfAnotherSizeIsRefusedAndNothingOfItsRequestIsWritten() async throws {
        let (runtime, index) = try await start()
        try await index.add([DocumentInput(id: "a", fields: [DocumentField(name: "text", value: "one")], embedding: [1, 0, 0, 0])], namespace: "tenant_a")
        let revision = try index.store.revision()
        // A request mixing sizes, and one whose size differs from the namespace's, are refused whole.
        for batch in [
            [DocumentInput(id: "b", fields: [], embedding: [0, 1, 0, 0]), DocumentInput(id: "c", fields: [], embedding: [1, 0, 0])],
            [DocumentInput(id: "d", fields: [], embedding: [1, 0, 0])],
        ] {
            await #expect {
                try await index.add(batch, namespace: "tenant_a")
            } throws: { error in
                (error as? DocumentStoreError)?.message.contains("same model") == true
            }
        }
        #expect(try index.store.revision() == revision)
        #expect(try index.store.count() == 1)
        // Another tenant has its own size; a document without a vector is always welcome.
        try await index.add([DocumentInput(id: "a", fields: [], embedding: [1, 0, 0])], namespace: "tenant_b")
        try await index.add([DocumentInput(id: "t", fields: [DocumentField(name: "text", value: "words")])], namespace: "tenant_a")
        // Replacing a document with a vector of another size is refused too.
        await #expect(throws: DocumentStoreError.self) {
            try await index.add([DocumentInput(id: "a", fields: [], embedding: [1, 0])], namespace: "tenant_a")
        }
        #expect(try index.search(instanceID: "vector", namespace: "tenant_a", text: "", vector: [1, 0, 0, 0], topK: 1).hits.first?.document.id == "a")
        await runtime.shutdown()
    }
}
