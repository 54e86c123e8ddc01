import ArgumentParser
import Foundation
import Logging
import OrionCore
import OrionPluginHost

/// `orion bench retrieval --synthetic N`: exact (`vector`) against approximate (`hnsw`) search
/// on N random unit vectors — HNSW's recall@10 against the exact answer, queries per second of
/// each, build time and memory.
///
/// Vectors are Gaussian, normalised, from a fixed seed, so runs are comparable. Full-rank random
/// vectors are the hard case for a graph index (no structure to follow): it needs a far larger
/// efSearch for the same recall than on embeddings of real text, hence `--ef-search`. With
/// `intrinsicDimensions` R, documents and queries lie near one random R-dimensional subspace
/// instead (plus 10% noise in every dimension), as embeddings of text lie near a manifold of far
/// fewer dimensions than their vectors have.
struct SyntheticBench {
    var count: Int
    var queries: Int
    var dimensions: Int
    var intrinsicDimensions: Int?
    var efSearch: Int?
    var flatID = "vector"
    var hnswID = "hnsw"

    struct Result: Encodable {
        var vectors: Int
        var dimensions: Int
        var intrinsic_dimensions: Int
        var queries: Int
        var flat_build_seconds: Double
        var flat_qps: Double
        var flat_rss_mb: Double
        var hnsw_build_seconds: Double
        var hnsw_qps: Double
        var hnsw_rss_mb: Double
        var hnsw_recall_at_10: Double
        var hnsw_speedup: Double
    }

    func run(config: RuntimeConfig, logger: Logger) async throws -> Result {
        let namespace = Namespace.forTenant("bench")
        let store = try DocumentStore(path: config.resolvedDocumentStorePath)
        var random = Gaussian(seed: 0x0A11_CE5E_ED)
        let source = SyntheticVectors(dimensions: dimensions, intrinsic: intrinsicDimensions, random: &random)
        var progress = Progress(total: count, label: "store")
        var written = 0
        while written < count {
            let batch = (written..<min(written + 2000, count)).map { i in
                DocumentInput(id: "v\(i)", fields: [], embedding: source.next(&random))
            }
            _ = try store.upsert(batch, namespace: namespace)
            written += batch.count
            progress.update(written)
        }
        progress.update(count, force: true)
        progress.finish()
        let queryVectors = (0..<queries).map { _ in source.next(&random) }

        let full = try DeploymentSpec.load(directory: config.plugins.directory)
        func instance(_ id: String, overrides: [String: JSONValue] = [:]) throws -> InstanceSpec {
            guard let spec = full.instances.first(where: { $0.id == id }) else {
                throw ValidationError("no instance '\(id)' in \(config.plugins.directory); --synthetic compares '\(flatID)' (vector-flat) and '\(hnswID)' (vector-hnsw)")
            }
            return BenchRetrieval.detached(spec, overrides: overrides)
        }
        let flat = try instance(flatID)
        let hnsw = try instance(hnswID, overrides: efSearch.map { ["efSearch": .number(Double($0))] } ?? [:])

        let runtime = PluginRuntime(config: config, logger: logger)
        let index = DocumentIndex(store: store, registry: runtime.registry, logger: logger)
        await runtime.addPreparer(index)
        let baseline = BenchRetrieval.residentMegabytes()

        func build(_ instances: [InstanceSpec]) async throws -> Double {
            let start = ContinuousClock.now
            let report = try await runtime.apply(DeploymentSpec(instances: instances, tiers: []), reason: "bench")
            if let refusal = report.refusals.first { throw ValidationError("instance refused: \(refusal)") }
            return BenchRetrieval.seconds(ContinuousClock.now - start)
        }
        func search(_ id: String) throws -> (rankings: [[String]], qps: Double) {
            func pass() throws -> [[String]] {
                try queryVectors.map { try index.ranking(instanceID: id, namespace: namespace, text: "", vector: $0, topK: 10).ids }
            }
            let rankings = try pass()  // warm-up
            return (rankings, Double(queries) / (try BenchRetrieval.fastestPass(of: 3) { _ = try pass() }))
        }

        let flatBuild = try await build([flat])
        let flatRSS = BenchRetrieval.residentMegabytes() - baseline
        let exact = try search(flatID)
        let hnswBuild = try await build([flat, hnsw])
        let hnswRSS = BenchRetrieval.residentMegabytes() - baseline - flatRSS
        let approximate = try search(hnswID)
        await runtime.shutdown()

        var found = 0, possible = 0
        for (truth, answer) in zip(exact.rankings, approximate.rankings) {
            possible += truth.count
            found += Set(truth).intersection(answer).count
        }
        return Result(
            vectors: count, dimensions: dimensions, intrinsic_dimensions: intrinsicDimensions ?? dimensions, queries: queries,
            flat_build_seconds: flatBuild, flat_qps: exact.qps, flat_rss_mb: flatRSS,
            hnsw_build_seconds: hnswBuild, hnsw_qps: approximate.qps, hnsw_rss_mb: hnswRSS,
            hnsw_recall_at_10: Double(found) / Double(max(possible, 1)), hnsw_speedup: approximate.qps / max(exact.qps, 1e-9))
    }

    static func print(_ r: Result, efSearch: Int?) {
        let shape = r.intrinsic_dimensions < r.dimensions ? " near a \(r.intrinsic_dimensions)-dimensional subspace" : ""
        Swift.print("synthetic: \(r.vectors) random unit vectors, \(r.dimensions) dimensions\(shape), \(r.queries) queries, top 10")
        Swift.print(String(format: "  exact (flat)  build %.2f s  queries/s %.1f  memory +%.0f MB", r.flat_build_seconds, r.flat_qps, r.flat_rss_mb))
        Swift.print(String(format: "  hnsw          build %.2f s  queries/s %.1f  memory +%.0f MB  recall@10 vs exact %.4f%@",
            r.hnsw_build_seconds, r.hnsw_qps, r.hnsw_rss_mb, r.hnsw_recall_at_10, efSearch.map { " (efSearch \($0))" } ?? ""))
        Swift.print(String(format: "  hnsw / flat   %.1fx queries/s", r.hnsw_speedup))
    }
}

/// Standard normal numbers from a fixed seed (xorshift64* and Box–Muller).
struct Gaussian {
    var state: UInt64

    init(seed: UInt64) { state = seed | 1 }

    mutating func uniform() -> Double {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return (Double((state &* 0x2545_F491_4F6C_DD1D) >> 11) + 0.5) / 9_007_199_254_740_992  // (0, 1)
    }

    mutating func next() -> Double {
        (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())
    }

    mutating func unitVector(_ dimensions: Int) -> [Float] {
        var v = (0..<dimensions).map { _ in next() }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in v.indices { v[i] /= norm }
        return v.map(Float.init)
    }
}

/// Where synthetic vectors come from: all `dimensions` at random, or near one random subspace of
/// `intrinsic` dimensions — x = normalise(B·z + 0.1·e), z and e standard normal, B a fixed random
/// `dimensions` × `intrinsic` matrix scaled so B·z and e have the same per-coordinate variance.
struct SyntheticVectors {
    let dimensions: Int
    let intrinsic: Int
    private let basis: [Float]  // row-major, dimensions × intrinsic

    init(dimensions: Int, intrinsic: Int?, random: inout Gaussian) {
        self.dimensions = dimensions
        self.intrinsic = intrinsic ?? dimensions
        let scale = 1 / Double(self.intrinsic).squareRoot()
        basis = intrinsic == nil ? [] : (0..<(dimensions * self.intrinsic)).map { _ in Float(random.next() * scale) }
    }

    func next(_ random: inout Gaussian) -> [Float] {
        guard !basis.isEmpty else { return random.unitVector(dimensions) }
        let z = (0..<intrinsic).map { _ in Float(random.next()) }
        var v = [Float](repeating: 0, count: dimensions)
        for row in 0..<dimensions {
            var sum: Float = 0
            for column in 0..<intrinsic { sum += basis[row * intrinsic + column] * z[column] }
            v[row] = sum + 0.1 * Float(random.next())
        }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / norm }
    }
}
