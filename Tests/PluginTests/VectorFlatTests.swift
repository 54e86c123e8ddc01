import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import OrionVectorKernels
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

    /// The exact top k by a double-precision scan, ties by smaller id.
    static func reference(_ query: [Float], _ vectors: [[Float]], cosine: Bool, k: Int, where keep: (Int) -> Bool = { _ in true }) -> [(Int64, Double)] {
        func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
        let qn = cosine ? dot(query, query).squareRoot() : 1
        return vectors.indices.filter(keep).map { row -> (Int64, Double) in
            let norm = cosine ? dot(vectors[row], vectors[row]).squareRoot() : 1
            return (Int64(row), dot(query, vectors[row]) / (qn * norm))
        }
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        .prefix(k).map { $0 }
    }

    /// Near-duplicate rows (one base vector plus noise far below the int8 step) put every score
    /// inside the int8 error bound: the first pass can rule out little, and the answer must still
    /// be the exact one, rank by rank.
    @Test(arguments: ["cosine", "dot"])
    func staysExactWhenScoresCrowdTogether(metric: String) throws {
        let (instance, retriever) = try retriever(#"{"metric": "\#(metric)"}"#)
        defer { instance.destroy() }
        let base = Self.random(1, 96, seed: 5)[0]
        let noise = Self.random(2000, 96, seed: 6)
        let vectors = noise.map { row in zip(base, row).map { $0 * 3 + $1 * 0.0005 } }
        try retriever.add(vectors.enumerated().map { RetrieverDocument(id: Int64($0.offset), namespace: "ns", fields: [], vector: $0.element) })
        for query in Self.random(5, 96, seed: 7) {
            let expected = Self.reference(query, vectors, cosine: metric == "cosine", k: 50)
            let answer = try retriever.search(namespace: "ns", text: "", vector: query, topK: 50)
            #expect(answer.hits.count == 50)
            let scale = metric == "cosine" ? 1.0 : abs(expected[0].1)
            for (hit, reference) in zip(answer.hits, expected) {
                #expect(abs(Double(hit.score) - reference.1) <= 2e-5 * scale, "rank score \(hit.score) vs exact \(reference.1)")
            }
        }
    }

    /// Spread-out rows, where the first pass rules out almost everything: still the exact top k,
    /// with and without a filter.
    @Test func twoPassSearchIsExactWithFilters() throws {
        let (instance, retriever) = try retriever()
        defer { instance.destroy() }
        let vectors = Self.random(3000, 64, seed: 11)
        try retriever.add(vectors.enumerated().map {
            RetrieverDocument(id: Int64($0.offset), namespace: "ns", fields: [], metadata: ["group": "\($0.offset % 7)"], vector: $0.element)
        })
        for query in Self.random(10, 64, seed: 12) {
            let all = try retriever.search(namespace: "ns", text: "", vector: query, topK: 100)
            #expect(all.hits.map(\.id) == Self.reference(query, vectors, cosine: true, k: 100).map(\.0))
            let filtered = try retriever.search(namespace: "ns", text: "", vector: query, topK: 20, filters: ["group": "3"])
            #expect(filtered.hits.map(\.id) == Self.reference(query, vectors, cosine: true, k: 20, where: { $0 % 7 == 3 }).map(\.0))
        }
    }

    @Test func refusesNonFiniteValues() throws {
        let (instance, retriever) = try retriever()
        defer { instance.destroy() }
        try retriever.add([RetrieverDocument(id: 1, namespace: "ns", fields: [], vector: [1, 0])])
        #expect(throws: PluginError.self) {
            try retriever.add([RetrieverDocument(id: 2, namespace: "ns", fields: [], vector: [.nan, 1])])
        }
        #expect(throws: PluginError.self) { try retriever.search(namespace: "ns", text: "", vector: [.infinity, 0], topK: 1) }
        #expect(try retriever.stats().documentCount == 1)
    }

    /// Every kernel set this CPU can run agrees with the portable one: int8 exactly, float32 to
    /// rounding, at sizes that exercise every tail and row count.
    @Test func cpuKernelsAgreeWithPortableOnes() throws {
        let portable = try #require(orion_vk_portable()).pointee
        let sets = [orion_vk_best(), orion_vk_avx2()].compactMap { $0?.pointee }
        for dimensions in [1, 7, 8, 31, 32, 33, 63, 64, 65, 100, 128, 384, 1000] {
            let rows = 9
            let floats = Self.random(rows + 1, dimensions, seed: UInt64(dimensions))
            let codes = floats.map { $0.map { Int8(($0 * 127).rounded()) } }
            let query = codes[0], table = Array(codes.dropFirst().joined())
            let sums = codes.dropFirst().map { $0.reduce(Int32(0)) { $0 + Int32($1) } }
            let expected = (0..<rows).map { row in (0..<dimensions).reduce(Int32(0)) { $0 + Int32(query[$1]) * Int32(codes[row + 1][$1]) } }
            var plain = [Int32](repeating: -1, count: rows)
            portable.dot_i8_rows(query, table, sums, rows, dimensions, &plain)
            #expect(plain == expected)
            let which: [UInt32] = [3, 0, 8, 3]
            let exact = which.map { row in (0..<dimensions).reduce(0.0) { $0 + Double(floats[0][$1]) * Double(floats[Int(row) + 1][$1]) } }
            for set in [portable] + sets {
                let isa = String(cString: set.isa)
                var fast = [Int32](repeating: -1, count: rows)
                set.dot_i8_rows(query, table, sums, rows, dimensions, &fast)
                #expect(fast == expected, "\(isa) int8 at \(dimensions) dimensions")
                var scores = [Float](repeating: .nan, count: which.count)
                set.dot_f32_rows(floats[0], Array(floats.dropFirst().joined()), which, which.count, dimensions, &scores)
                for (score, reference) in zip(scores, exact) { #expect(abs(Double(score) - reference) < 1e-4, "\(isa) float32 rows at \(dimensions)") }
                #expect(abs(Double(set.dot_f32(floats[0], floats[4], dimensions)) - exact[0]) < 1e-4, "\(isa) float32 at \(dimensions)")
            }
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
