import Foundation
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// `vector-hnsw` through its .so: filtered search on both of its plans, a saved graph loaded back
/// with its checkpoint, an unreadable save, and refusals.
@Suite struct VectorHNSWTests {
    let dir = TestPlugins.temporaryDirectory("orion-hnsw")

    func retriever(_ config: String = "{}", host: RecordingHost = RecordingHost()) throws -> (PluginInstance, RetrieverCaller) {
        let image = try PluginImage(path: TestPlugins.path("vector-hnsw"))
        let instance = try PluginInstance(image: image, config: Data(config.utf8), services: host)
        return (instance, try #require(instance.retriever))
    }

    /// `n` documents of 16 dimensions; one in ten is in bucket "x", the rest in "y".
    static func documents(_ n: Int, seed: UInt64 = 7) -> [RetrieverDocument] {
        VectorFlatTests.random(n, 16, seed: seed).enumerated().map { row, vector in
            RetrieverDocument(
                id: Int64(row), namespace: "ns", fields: [],
                metadata: ["bucket": row % 10 == 0 ? "x" : "y", "parity": row % 2 == 0 ? "even" : "odd"], vector: vector)
        }
    }

    static func rows(_ documents: [RetrieverDocument]) -> [[Float]] { documents.map { $0.vector ?? [] } }

    /// A selective filter is scanned exactly; a broad one walks the graph, collecting only
    /// matches. Either way every hit matches, k matches give k hits, and the graph's answer keeps
    /// the exact answer's top 10.
    @Test func filtersApplyOnBothPlansAndTheGraphKeepsRecall() throws {
        let (instance, hnsw) = try retriever()
        defer { instance.destroy() }
        let documents = Self.documents(4_000)
        try hnsw.add(documents)
        let rows = Self.rows(documents)
        var found = 0, possible = 0
        for query in VectorFlatTests.random(20, 16, seed: 11) {
            // 400 documents in "x": scanned exactly, so the answer is the exact one.
            let selective = try hnsw.search(namespace: "ns", text: "", vector: query, topK: 10, filters: ["bucket": "x"])
            let exactX = VectorFlatTests.reference(query, rows, cosine: true, k: 10) { $0 % 10 == 0 }
            #expect(selective.hits.map(\.id) == exactX.map(\.0))
            // 3,600 in "y": the filtered graph search.
            let broad = try hnsw.search(namespace: "ns", text: "", vector: query, topK: 10, filters: ["bucket": "y"])
            #expect(broad.hits.count == 10)
            #expect(broad.hits.allSatisfy { $0.id % 10 != 0 })
            let exactY = VectorFlatTests.reference(query, rows, cosine: true, k: 10) { $0 % 10 != 0 }
            found += Set(broad.hits.map(\.id)).intersection(exactY.map(\.0)).count
            possible += exactY.count
            // Two filters: both must hold.
            let both = try hnsw.search(namespace: "ns", text: "", vector: query, topK: 10, filters: ["bucket": "y", "parity": "odd"])
            #expect(both.hits.count == 10)
            #expect(both.hits.allSatisfy { $0.id % 10 != 0 && $0.id % 2 == 1 })
        }
        #expect(Double(found) / Double(possible) >= 0.95, "recall@10 of the filtered graph search: \(found)/\(possible)")
        // A pair no document carries: nothing, not an error.
        #expect(try hnsw.search(namespace: "ns", text: "", vector: rows[0], topK: 10, filters: ["bucket": "z"]).hits.isEmpty)
    }

    /// With `path`, a checkpoint saves the graph; a new instance loads it back with that
    /// checkpoint, the same answers, and without the documents removed before the save.
    @Test func aSavedGraphLoadsWithItsCheckpointAndHonoursRemovals() throws {
        let config = #"{"path": "\#(dir)/graph"}"#
        let documents = Self.documents(300)
        let query = VectorFlatTests.random(1, 16, seed: 5)[0]
        let before: [Int64]
        do {
            let (instance, hnsw) = try retriever(config)
            try hnsw.add(documents)
            try hnsw.remove(namespace: "ns", ids: [1, 2, 3])
            try hnsw.checkpoint(42)
            before = try hnsw.search(namespace: "ns", text: "", vector: query, topK: 20).hits.map(\.id)
            instance.destroy()
        }
        let host = RecordingHost()
        let (instance, hnsw) = try retriever(config, host: host)
        defer { instance.destroy() }
        #expect(try hnsw.stats() == RetrieverStats(documentCount: 297, checkpoint: 42))
        #expect(try hnsw.search(namespace: "ns", text: "", vector: query, topK: 20).hits.map(\.id) == before)
        let all = try hnsw.search(namespace: "ns", text: "", vector: query, topK: 300).hits.map(\.id)
        #expect(all.count == 297 && Set(all).isDisjoint(with: [1, 2, 3]))
        #expect(host.logs.contains { $0.contains("loaded 1 namespace(s), 297 document(s) at checkpoint 42") })
        // Filters work on a loaded graph: its metadata was saved with it.
        #expect(try hnsw.search(namespace: "ns", text: "", vector: query, topK: 10, filters: ["bucket": "x"]).hits.allSatisfy { $0.id % 10 == 0 })
    }

    /// A save that cannot be read is set aside with a warning: the instance starts empty at
    /// checkpoint 0, which tells the host to refill it from the store.
    @Test func anUnreadableSaveStartsEmptySoTheHostRebuilds() throws {
        let config = #"{"path": "\#(dir)/graph"}"#
        do {
            let (instance, hnsw) = try retriever(config)
            try hnsw.add(Self.documents(50))
            try hnsw.checkpoint(7)
            instance.destroy()
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/graph").filter { !$0.hasPrefix(".") }
        for file in files where !file.contains("manifest") {
            try Data("not a graph".utf8).write(to: URL(fileURLWithPath: dir + "/graph/" + file))
        }
        let host = RecordingHost()
        let (instance, hnsw) = try retriever(config, host: host)
        defer { instance.destroy() }
        #expect(try hnsw.stats() == RetrieverStats(documentCount: 0, checkpoint: 0))
        #expect(host.logs.contains { $0.contains("ignores the saved index") })
        // It indexes and saves again afterwards.
        try hnsw.add(Self.documents(10))
        try hnsw.checkpoint(8)
        #expect(try hnsw.stats() == RetrieverStats(documentCount: 10, checkpoint: 8))
    }

    @Test func wrongConfigurationsAndCallsAreRefusedWithTheirReason() throws {
        func refusal(_ config: String) -> String? {
            do throws(PluginLoadError) {
                let image = try PluginImage(path: TestPlugins.path("vector-hnsw"))
                try PluginInstance(image: image, config: Data(config.utf8), services: RecordingHost()).destroy()
                return nil
            } catch {
                return error.message
            }
        }
        #expect(refusal(#"{"M": 1}"#)?.contains("'M'") == true)
        #expect(refusal(#"{"efSearch": "many"}"#)?.contains("efSearch") == true)
        #expect(refusal(#"{"metric": "manhattan"}"#)?.contains("metric") == true)
        #expect(refusal(#"{"colour": 1}"#)?.contains("known keys: M, efConstruction, efSearch, metric, maxElements, path") == true)
        #expect(refusal(#"{"path": "/proc/orion-cannot-write-here"}"#)?.contains("'path'") == true)

        let (instance, hnsw) = try retriever(#"{"maxElements": 4}"#)
        defer { instance.destroy() }
        try hnsw.add(Self.documents(20))  // past maxElements: the graph doubles
        #expect(try hnsw.stats().documentCount == 20)
        #expect(throws: PluginError.self) {
            try hnsw.add([RetrieverDocument(id: 99, namespace: "ns", fields: [], vector: [1, 2, 3])])
        }
        #expect(throws: PluginError.self) { try hnsw.search(namespace: "ns", text: "words only", topK: 3) }
        #expect(throws: PluginError.self) { try hnsw.search(namespace: "ns", text: "", vector: [1, 2], topK: 3) }
        #expect(throws: PluginError.self) {
            try hnsw.add([RetrieverDocument(id: 100, namespace: "ns", fields: [], vector: [Float](repeating: .nan, count: 16))])
        }
        #expect(try hnsw.stats().documentCount == 20, "refused documents add nothing")
    }
}
