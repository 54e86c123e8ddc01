import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// `vector-flat` through its .so: exact results against a brute-force reference.
@Suite struct VectorFlatTests {
    func retriever(_ config: String = "{}") throws -> (PluginInstance, RetrieverCaller) {
        let image = try PluginImage(path: TestPlugins.path("vector-flat"))
        let instance = try PluginInstance(image: image, config: Data(config.utf8), services: RecordingHost())
        return (instance, try #require(instance.retriever))
    }

    static func random(_ n: Int, _ dims: Int, seed: UInt64) -> [[Float]] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
        return (0..<n).map { _ in (0..<dims).map { _ in next() } }
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return dot / (na * nb)
    }

    @Test(arguments: [7, 16, 384])
    func matchesBruteForceCosine(dimensions: Int) throws {
        let (instance, retriever) = try retriever()
        defer { instance.destroy() }
        let vectors = Self.random(300, dimensions, seed: UInt64(dimensions))
        try retriever.add(vectors.enumerated().map { RetrieverDocument(id: Int64($0.offset), namespace: "ns", fields: [], vector: $0.element) })
        for query in Self.random(10, dimensions, seed: 99) {
            let expected = vectors.enumerated().map { (Int64($0.offset), Self.cosine(query, $0.element)) }
                .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(10)
            let answer = try retriever.search(namespace: "ns", text: "", vector: query, topK: 10)
            #expect(answer.hits.map(\.id) == expected.map(\.0))
            for (hit, reference) in zip(answer.hits, expected) { #expect(abs(hit.score - reference.1) < 1e-4) }
        }
    }

    @Test func replacesAndRemovesKeepingStorageDense() throws {
        let (instance, retriever) = try retriever(#"{"metric": "dot"}"#)
        defer { instance.destroy() }
        try retriever.add((0..<5).map { RetrieverDocument(id: Int64($0), namespace: "ns", fields: [], vector: [Float($0), 0]) })
        try retriever.remove(namespace: "ns", ids: [0, 2])
        try retriever.add([RetrieverDocument(id: 1, namespace: "ns", fields: [], vector: [10, 0])])
        let answer = try retriever.search(namespace: "ns", text: "", vector: [1, 0], topK: 10)
        #expect(answer.hits.map(\.id) == [1, 4, 3])
        #expect(answer.hits.map(\.score) == [10, 4, 3])
        #expect(try retriever.stats().documentCount == 3)
    }

    @Test func refusesMismatchedDimensionsWithoutChangingAnything() throws {
        let (instance, retriever) = try retriever(#"{"dimensions": 2}"#)
        defer { instance.destroy() }
        try retriever.add([RetrieverDocument(id: 1, namespace: "ns", fields: [], vector: [1, 0])])
        #expect(throws: PluginError.self) {
            try retriever.add([
                RetrieverDocument(id: 2, namespace: "ns", fields: [], vector: [0, 1]),
                RetrieverDocument(id: 3, namespace: "ns", fields: [], vector: [0, 1, 0]),
            ])
        }
        #expect(try retriever.stats().documentCount == 1, "the valid half of a refused batch was not applied")
        #expect(throws: PluginError.self) { try retriever.search(namespace: "ns", text: "", vector: [1, 0, 0], topK: 1) }
    }

    @Test func passesTheConformanceKit() async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("vector-flat"))
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }
}
