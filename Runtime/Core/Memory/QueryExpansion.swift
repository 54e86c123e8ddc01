import Foundation
import OrionPluginHost

/// Rephrases a memory query (`memory.queryExpansionEnabled`): each rephrasing is searched by the
/// tier's full-text retriever and fused with the query's own candidates by reciprocal rank. An
/// expander answers within its own time limit and never throws: no rephrasings is always an answer.
public protocol QueryExpanding: Sendable {
    /// Up to two rephrasings of `intent` for a tenant of `tier` in `namespace`, charged to that
    /// tenant: against `tenantCapUSD`, its own monthly cap, when it has one, else its tier's.
    func rephrasings(of intent: String, tier: String, namespace: String, tenantCapUSD: Double?) async -> [String]
}

extension MemoryBank {
    /// Queries shorter than this are not expanded: they have little to rephrase.
    public static let expansionMinimumLength = 50
    /// The constant of reciprocal rank fusion: a hit at rank r adds 1 / (k + r).
    static let fusionK = 60.0

    /// Rephrasings of `intent`, when an expander is installed and the query is long enough.
    func expansions(of intent: String, tier: String, namespace: String?, tenantCapUSD: Double?) async -> [String] {
        guard let expander, let namespace, intent.count > Self.expansionMinimumLength else { return [] }
        return await expander.rephrasings(of: intent, tier: tier, namespace: namespace, tenantCapUSD: tenantCapUSD)
    }

    /// Phase A's hits fused with the full-text hits of each rephrasing (reciprocal rank fusion,
    /// scores 1 / (60 + rank) summed over the lists a memory is in). A rephrasing whose search fails
    /// is left out.
    func fuse(_ hits: [SearchHit], expansions: [String], tier: String, namespace: String, topK: Int) -> [SearchHit] {
        guard !expansions.isEmpty, let fullText = fullTextRetriever(tier: tier) else { return hits }
        var lists = [hits]
        for text in expansions {
            if let answer = try? documents.search(
                instanceID: fullText, namespace: namespace, text: text, topK: topK, filters: [Self.kindKey: Self.kindValue])
            {
                lists.append(answer.hits)
            }
        }
        guard lists.count > 1 else { return hits }
        var fused: [Int64: (hit: SearchHit, score: Double, first: Int)] = [:]
        var order = 0
        for list in lists {
            for (rank, hit) in list.enumerated() {
                let add = 1 / (Self.fusionK + Double(rank + 1))
                if let existing = fused[hit.document.key] {
                    fused[hit.document.key] = (existing.hit, existing.score + add, existing.first)
                } else {
                    fused[hit.document.key] = (hit, add, order)
                    order += 1
                }
            }
        }
        return fused.values.sorted { $0.score != $1.score ? $0.score > $1.score : $0.first < $1.first }.map { entry in
            var hit = entry.hit
            hit.score = Float(entry.score)
            return hit
        }
    }

    /// The tier's first loaded full-text retriever (`retrieval.fts`).
    func fullTextRetriever(tier: String) -> String? {
        let instances = documents.registry.snapshot.instances
        let ids = (try? documents.registry.instanceIDs(tier: tier, capability: "retrieval")) ?? []
        return ids.first { instances[$0]?.instance.image.info.manifest.capabilities.contains("retrieval.fts") == true }
    }
}
