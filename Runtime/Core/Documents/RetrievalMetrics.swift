import Foundation

/// Retrieval quality measures with trec_eval's semantics (as BEIR reports them).
public enum RetrievalMetrics {
    /// nDCG@k with graded relevance and linear gain: DCG = Σᵢ relᵢ / log₂(i + 1) over the first k
    /// results (i from 1), divided by the DCG of the ideal ordering of the judged documents.
    /// Documents without a judgement count as 0. A query with no relevant document scores 0.
    public static func ndcg(ranking: [String], relevance: [String: Int], k: Int = 10) -> Double {
        let ideal = relevance.values.filter { $0 > 0 }.sorted(by: >).prefix(k)
        let idcg = ideal.enumerated().reduce(0.0) { $0 + Double($1.element) / log2(Double($1.offset + 2)) }
        guard idcg > 0 else { return 0 }
        let dcg = ranking.prefix(k).enumerated().reduce(0.0) { sum, entry in
            sum + Double(max(0, relevance[entry.element] ?? 0)) / log2(Double(entry.offset + 2))
        }
        return dcg / idcg
    }

    /// Recall@k: the share of relevant documents (relevance > 0) among the first k results.
    public static func recall(ranking: [String], relevance: [String: Int], k: Int = 100) -> Double {
        let relevant = Set(relevance.filter { $0.value > 0 }.keys)
        guard !relevant.isEmpty else { return 0 }
        return Double(Set(ranking.prefix(k)).intersection(relevant).count) / Double(relevant.count)
    }
}
