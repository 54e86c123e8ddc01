import ArgumentParser
import Foundation
import Logging
import OrionCore
import OrionPluginHost
import OrionPluginSDK

/// `orion bench retrieval DIR --retriever ID`: quality and speed of one retriever instance from
/// plugins.d on a BEIR-format folder.
///
/// The corpus goes into a temporary document store; the instance (and, for a hybrid, the sources
/// its config names) is created and filled from it — that is the build time. Every query runs once
/// to warm up (that pass gives nDCG@10 and Recall@100), then in timed single-threaded passes:
/// queries per second is the fastest pass.
/// A query's time covers the retriever and mapping its keys back to ids in the store (tenancy
/// enforced), not decoding the documents' fields.
struct BenchRetrieval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval", abstract: "nDCG@10, Recall@100, queries/s, build time and memory of one retriever.")

    @Argument(help: "A BEIR-format folder: corpus.jsonl, queries.jsonl, qrels.tsv, and corpus.f32/queries.f32 with meta.json.")
    var directory: String?
    @Option(help: "The retriever instance id from plugins.d (fts, xapian, vector, hnsw, hybrid, hybrid-sqlite).") var retriever: String?
    @Option(help: "Instead of a folder: exact 'vector' against 'hnsw' on this many random unit vectors.") var synthetic: Int?
    @Option(help: "With --synthetic: how many random queries.") var syntheticQueries = 200
    @Option(help: "With --synthetic: dimensions of the random vectors.") var dimensions = 384
    @Option(help: "With --synthetic: efSearch for 'hnsw' instead of its plugins.d value (random vectors need far more than text embeddings).")
    var efSearch: Int?
    @Option(help: ArgumentHelp(
        "With --synthetic: draw vectors near a random subspace of this many dimensions (plus 10% noise) instead of from all of them.",
        discussion: "Embeddings of text lie near a low-dimensional manifold; full-rank random vectors are the worst case for a graph index."))
    var intrinsicDimensions: Int?
    @Option(help: "An exact retriever instance (e.g. vector) to measure --retriever's recall@10 against (for an approximate index such as hnsw).")
    var exact: String?
    @Flag(help: "Also run the queries embedded by the default tier's embeddings engine (instead of queries.f32) and report both nDCG@10.")
    var embed = false
    @Flag(help: "End with one JSON object.") var json = false
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        if let synthetic {
            guard synthetic >= 10 else { throw ValidationError("--synthetic needs at least 10 vectors") }
            guard syntheticQueries >= 1, dimensions >= 1 else { throw ValidationError("--synthetic-queries and --dimensions must be at least 1") }
            guard directory == nil, retriever == nil else { throw ValidationError("--synthetic compares 'vector' and 'hnsw' on random vectors; drop the folder and --retriever") }
        } else {
            guard directory != nil else { throw ValidationError("give a BEIR-format folder, or --synthetic N") }
            guard retriever != nil else { throw ValidationError("give --retriever ID (an instance id from plugins.d)") }
        }
        if embed, synthetic != nil { throw ValidationError("--embed needs a folder with query texts, not --synthetic") }
        if exact != nil, synthetic != nil { throw ValidationError("--exact is for a folder; --synthetic always compares with exact search") }
        if let efSearch, efSearch < 1 { throw ValidationError("--ef-search must be at least 1") }
        if let intrinsicDimensions {
            guard synthetic != nil else { throw ValidationError("--intrinsic-dimensions shapes --synthetic's vectors; give --synthetic N") }
            guard (1...dimensions).contains(intrinsicDimensions) else {
                throw ValidationError("--intrinsic-dimensions must be between 1 and --dimensions (\(dimensions))")
            }
        }
    }

    func run() async throws {
        let (config, logger, scratch) = try options.benchDeployment()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if let synthetic {
            let bench = SyntheticBench(
                count: synthetic, queries: syntheticQueries, dimensions: dimensions, intrinsicDimensions: intrinsicDimensions, efSearch: efSearch)
            let result = try await bench.run(config: config, logger: logger)
            SyntheticBench.print(result, efSearch: efSearch)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            }
            return
        }
        // validate() guarantees both.
        let directory = directory!, retriever = retriever!
        let dataset = try Dataset.load(directory)

        // The corpus, into a fresh store.
        let store = try DocumentStore(path: config.resolvedDocumentStorePath)
        let namespace = Namespace.forTenant("bench")
        var progress = Progress(total: dataset.documents.count, label: "store")
        for start in stride(from: 0, to: dataset.documents.count, by: 1000) {
            let slice = Array(dataset.documents[start..<min(start + 1000, dataset.documents.count)])
            _ = try store.upsert(slice, namespace: namespace)
            progress.update(start + slice.count)
        }
        progress.update(dataset.documents.count, force: true)
        progress.finish()

        // The instance under test and its sources, built from the store (and the embeddings engine).
        var spec = try Self.deployment(for: retriever, in: config)
        if let exact, !spec.instances.contains(where: { $0.id == exact }) {
            spec.instances += try Self.deployment(for: exact, in: config).instances.filter { added in !spec.instances.contains { $0.id == added.id } }
        }
        let engineID = embed ? try Self.addEmbeddingsEngine(to: &spec, config: config) : nil
        let runtime = PluginRuntime(config: config, logger: logger)
        let index = DocumentIndex(store: store, registry: runtime.registry, logger: logger)
        await runtime.addPreparer(index)
        let buildStart = Date()
        let report = try await runtime.apply(spec, reason: "bench")
        let buildSeconds = Date().timeIntervalSince(buildStart)
        if let refusal = report.refusals.first { throw ValidationError("instance refused: \(refusal)") }

        // Warm-up, then the timed pass.
        func runAll() throws -> [[String]] {
            try dataset.queries.map { query in
                try index.ranking(instanceID: retriever, namespace: namespace, text: query.text, vector: query.vector, topK: 100).ids
            }
        }
        let rankings = try runAll()
        // Timed passes: the fastest of several, so a noisy neighbour on the machine does not
        // decide the figure.
        let queryCount = Double(dataset.queries.count)
        let qps = queryCount / (try Self.fastestPass(of: Self.timedPasses) { _ = try runAll() })
        // The retriever alone (no mapping of keys back to ids), for comparison.
        let retrieverQPS = queryCount / (try Self.fastestPass(of: Self.timedPasses) {
            for query in dataset.queries {
                _ = try index.retrieve(instanceID: retriever, namespace: namespace, text: query.text, vector: query.vector, topK: 100, filters: [:])
            }
        })

        let (ndcg, recall, judged) = Self.quality(dataset, rankings)
        // Agreement with exact search: the share of the exact top 10 that the retriever's top 10 holds.
        var recallVsExact: Double?
        if let exact {
            var sum = 0.0
            for (query, ranking) in zip(dataset.queries, rankings) {
                let truth = try index.ranking(instanceID: exact, namespace: namespace, text: query.text, vector: query.vector, topK: 10).ids
                guard !truth.isEmpty else { continue }
                sum += Double(Set(truth).intersection(ranking.prefix(10)).count) / Double(truth.count)
            }
            recallVsExact = sum / Double(max(dataset.queries.count, 1))
        }
        var embedded: EmbeddedRun?
        if let engineID {
            embedded = try await Self.embeddedRun(dataset, engineID: engineID, registry: runtime.registry) { vectors in
                try zip(dataset.queries, vectors).map { query, vector in
                    try index.ranking(instanceID: retriever, namespace: namespace, text: query.text, vector: vector, topK: 100).ids
                }
            }
        }
        let rss = Self.residentMegabytes()
        print("retriever \(retriever): \(dataset.documents.count) documents, \(judged) judged queries")
        print(String(format: "  nDCG@10      %.4f%@", ndcg, embedded == nil ? "" : " (shipped query vectors)"))
        if let embedded {
            print(String(
                format: "  nDCG@10      %.4f (queries embedded by '%@': Δ %+.4f; cosine to the shipped vectors ≥ %.6f; %.0f queries/s embedded)",
                embedded.ndcg, engineID ?? "", embedded.ndcg - ndcg, embedded.minCosine, embedded.queriesPerSecond))
        }
        print(String(format: "  Recall@100   %.4f", recall))
        if let recallVsExact, let exact { print(String(format: "  recall@10 against '%@' (exact): %.4f", exact, recallVsExact)) }
        print(String(format: "  queries/s    %.1f (one thread, warm; retriever alone %.1f)", qps, retrieverQPS))
        print(String(format: "  build        %.2f s", buildSeconds))
        print(String(format: "  resident     %.0f MB", rss))
        if json {
            var object: [String: Double] = ["ndcg_at_10": ndcg, "recall_at_100": recall, "qps": qps, "build_seconds": buildSeconds, "rss_mb": rss]
            if let embedded {
                object["ndcg_at_10_embedded"] = embedded.ndcg
                object["ndcg_delta_embedded"] = embedded.ndcg - ndcg
                object["embed_min_cosine"] = embedded.minCosine
            }
            if let recallVsExact { object["recall_at_10_vs_exact"] = recallVsExact }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        await runtime.shutdown()
    }

    /// Mean nDCG@10 and Recall@100 of `rankings` over the judged queries.
    static func quality(_ dataset: Dataset, _ rankings: [[String]]) -> (ndcg: Double, recall: Double, judged: Int) {
        var ndcg = 0.0, recall = 0.0, judged = 0
        for (query, ranking) in zip(dataset.queries, rankings) {
            guard let relevance = dataset.qrels[query.id] else { continue }
            judged += 1
            ndcg += RetrievalMetrics.ndcg(ranking: ranking, relevance: relevance, k: 10)
            recall += RetrievalMetrics.recall(ranking: ranking, relevance: relevance, k: 100)
        }
        return (ndcg / Double(max(judged, 1)), recall / Double(max(judged, 1)), judged)
    }

    /// The pass with queries embedded by an engine instead of the shipped vectors.
    struct EmbeddedRun {
        var ndcg: Double
        var minCosine: Double
        var queriesPerSecond: Double
    }

    /// Embeds every query text with engine `engineID` (batches of 32), ranks with those vectors,
    /// and compares them with the shipped ones.
    static func embeddedRun(
        _ dataset: Dataset, engineID: String, registry: Registry, rank: ([[Float]]) throws -> [[String]]
    ) async throws -> EmbeddedRun {
        let lease = try registry.lease(kind: .engine, id: engineID)
        defer { lease.release() }
        guard let engine = lease.engine else { throw ValidationError("instance '\(engineID)' is not an engine") }
        let started = ContinuousClock.now
        let vectors = try await engine.embedAll(dataset.queries.map(\.text), batch: 32)
        let seconds = Self.seconds(ContinuousClock.now - started)
        var minCosine = 1.0
        for (query, vector) in zip(dataset.queries, vectors) {
            guard let shipped = query.vector else { continue }
            guard shipped.count == vector.count else {
                throw ValidationError("the engine makes \(vector.count)-dimensional vectors, the folder's are \(shipped.count)-dimensional")
            }
            minCosine = min(minCosine, zip(shipped, vector).reduce(0) { $0 + Double($1.0) * Double($1.1) })
        }
        let (ndcg, _, _) = quality(dataset, try rank(vectors))
        return EmbeddedRun(ndcg: ndcg, minCosine: minCosine, queriesPerSecond: Double(vectors.count) / max(seconds, 1e-9))
    }

    /// Adds the instance the default tier maps to `embeddings` (from plugins.d) to `spec`.
    static func addEmbeddingsEngine(to spec: inout DeploymentSpec, config: RuntimeConfig) throws -> String {
        guard let instance = try StandaloneEmbedder.spec(tier: config.plugins.defaultTier, config: config) else {
            throw ValidationError("tier '\(config.plugins.defaultTier)' in \(config.plugins.directory) maps no instance to 'embeddings'")
        }
        if !spec.instances.contains(where: { $0.id == instance.id }) { spec.instances.append(instance) }
        return instance.id
    }

    /// The instance `id` from plugins.d plus, for a fusing retriever, the instances its `sources`
    /// name; persistent `path` settings are dropped so the bench never touches deployed indexes.
    static func deployment(for id: String, in config: RuntimeConfig) throws -> DeploymentSpec {
        let full = try DeploymentSpec.load(directory: config.plugins.directory)
        guard let target = full.instances.first(where: { $0.id == id }) else {
            throw ValidationError("no instance '\(id)' in \(config.plugins.directory); declared: \(full.instances.map(\.id).sorted().joined(separator: ", "))")
        }
        let sourceIDs = (target.config["sources"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue ?? $0.stringValue }
        let wanted = Set([id] + sourceIDs)
        let instances = full.instances.filter { wanted.contains($0.id) }.map { detached($0) }
        return DeploymentSpec(instances: instances, tiers: [])
    }

    /// `instance` with its persistent `path` dropped (so a bench never touches a deployed index)
    /// and `overrides` applied to its settings.
    static func detached(_ instance: InstanceSpec, overrides: [String: JSONValue] = [:]) -> InstanceSpec {
        var copy = instance
        if case .object(var settings) = copy.config {
            settings["path"] = nil
            settings.merge(overrides) { _, new in new }
            copy.config = .object(settings)
        }
        return copy
    }

    /// Seconds taken by the fastest of `passes` runs of `pass` (at least 1 ns).
    static func fastestPass(of passes: Int, _ pass: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        var best = Duration.seconds(1_000_000)
        for _ in 0..<passes { best = min(best, try clock.measure(pass)) }
        return max(seconds(best), 1e-9)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Timed passes over all queries; the fastest counts.
    static let timedPasses = 5

    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kilobytes / 1024
    }
}
