import OrionPluginABI
import OrionPluginSDK

/// `hybrid-rrf`: fuses two or more retriever instances with Reciprocal Rank Fusion.
///
/// `score(d) = Σᵢ wᵢ / (k + rankᵢ(d))` over the sources whose list contains `d`, ranks from 1.
/// Each source is leased from the host's registry for the duration of one search, so a source the
/// operator swaps is picked up by the next search. A source that cannot answer (for example a
/// vector retriever when the query has no vector) is left out and the answer is marked degraded
/// with the reason; only when every source fails does the search fail.
///
/// Tie rule: equal fused scores keep the order of the earlier source's list — the document whose
/// best-placed appearance comes in an earlier source (by configured order), then at a better rank
/// there, comes first; any remaining tie goes to the smaller id.
final class HybridRRF: OrionPlugin, RetrieverPlugin {
    /// - Configuration keys:
    ///   - `sources` (list, required, ≥ 2): each `{id, weight (default 1), candidates (default 100)}`
    ///     — the retriever instance id, its weight wᵢ, and how many of its results to fuse.
    ///   - `k` (number > 0, default 60): the RRF constant.
    struct Configuration: Decodable, Sendable {
        struct Source: Decodable, Sendable {
            var id: String
            var weight: Float?
            var candidates: Int?
        }
        var sources: [Source]
        var k: Float?
    }

    static let descriptor = PluginDescriptor(
        id: "hybrid-rrf", version: "1.0.0", capabilities: ["retrieval", "retrieval.hybrid", "retrieval.fusion"],
        configSchema: """
            {"type":"object","additionalProperties":false,"required":["sources"],"properties":{
            "k":{"type":"number","exclusiveMinimum":0},
            "sources":{"type":"array","minItems":2,"maxItems":8,"items":{"type":"object","additionalProperties":false,
              "required":["id"],"properties":{"id":{"type":"string","minLength":1},
              "weight":{"type":"number","minimum":0},"candidates":{"type":"integer","minimum":1,"maximum":10000}}}}}}
            """,
        summary: "Reciprocal Rank Fusion over other retriever instances")

    struct Source {
        let id: String
        let weight: Float
        let candidates: Int
    }

    let sources: [Source]
    let k: Float
    let host: PluginHost

    init(configuration: Configuration, host: PluginHost) throws {
        guard configuration.sources.count >= 2 else {
            throw PluginError(.config, "'sources' needs at least two retriever instances to fuse")
        }
        sources = configuration.sources.map { Source(id: $0.id, weight: $0.weight ?? 1, candidates: $0.candidates ?? 100) }
        k = configuration.k ?? 60
        self.host = host
    }

    /// One document's fusion state.
    struct Fused {
        var score: Float = 0
        var details: [HitSource] = []
        /// (source index, rank) of its first appearance, for the tie rule.
        var firstSeen: (source: Int, rank: Int) = (Int.max, Int.max)
    }

    func search(_ query: SearchQuery, into results: inout SearchResults) throws(PluginError) {
        let namespace = query.namespace.string
        let text = query.text.string
        let vector = query.vector.map(Array.init)
        var filters: [String: String] = [:]
        for pair in query.filters { filters[pair.key.string] = pair.value.string }

        var lists: [(index: Int, hits: [RetrieverHit])] = []
        var failures: [String] = []
        for (index, source) in sources.enumerated() {
            do throws(PluginError) {
                let lease = try host.lease(.retriever, id: source.id)
                guard let retriever = lease.retriever else { throw PluginError(.internal, "lease without a retriever table") }
                let answer = try retriever.search(
                    namespace: namespace, text: text, vector: vector, topK: max(source.candidates, query.topK), filters: filters)
                lists.append((index, answer.hits))
                if let reason = answer.degradedReason { failures.append("\(source.id): \(reason)") }
            } catch {
                failures.append("\(source.id): \(error.message)")
            }
        }
        guard !lists.isEmpty else {
            throw PluginError(.unavailable, "no source could answer: \(failures.joined(separator: "; "))")
        }
        let ranked = Self.fuse(lists.map { list in (list.index, list.hits, sources[list.index].weight) }, k: k)
        for (id, fused) in ranked.prefix(query.topK) {
            results.append(id: id, score: fused.score, source: .hybrid, details: fused.details)
        }
        if !failures.isEmpty { results.markDegraded(reason: failures.joined(separator: "; ")) }
    }

    /// RRF over `lists` (source index, hits best first, weight); best first, by the tie rule.
    static func fuse(_ lists: [(index: Int, hits: [RetrieverHit], weight: Float)], k: Float) -> [(Int64, Fused)] {
        var fused: [Int64: Fused] = [:]
        for list in lists {
            for (offset, hit) in list.hits.enumerated() {
                let rank = offset + 1
                var entry = fused[hit.id] ?? Fused()
                entry.score += list.weight / (k + Float(rank))
                entry.details.append(HitSource(sourceIndex: UInt32(list.index), rank: UInt32(rank), score: hit.score, source: hit.source))
                if list.index < entry.firstSeen.source || (list.index == entry.firstSeen.source && rank < entry.firstSeen.rank) {
                    entry.firstSeen = (list.index, rank)
                }
                fused[hit.id] = entry
            }
        }
        return fused.sorted { a, b in
            if a.value.score != b.value.score { return a.value.score > b.value.score }
            if a.value.firstSeen.source != b.value.firstSeen.source { return a.value.firstSeen.source < b.value.firstSeen.source }
            if a.value.firstSeen.rank != b.value.firstSeen.rank { return a.value.firstSeen.rank < b.value.firstSeen.rank }
            return a.key < b.key
        }
    }

    // A fusing retriever indexes nothing itself: the host does not feed it (capability
    // `retrieval.fusion`), and these calls succeed without effect.
    func add(_ documents: DocumentBatch) throws(PluginError) {}
    func remove(namespace: PluginString, ids: UnsafeBufferPointer<Int64>) throws(PluginError) {}
    func clear() throws(PluginError) {}
    func checkpoint(_ checkpoint: UInt64) throws(PluginError) {}
    func stats() throws(PluginError) -> RetrieverStats { RetrieverStats(documentCount: 0, checkpoint: 0) }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(HybridRRF.self, host: host)
}
