import Foundation
import GRDB
import OrionPluginHost
import Synchronization
import OrionPluginSDK

/// One memory as phase B ranked it.
public struct MemoryHit: Sendable, Hashable {
    public var memory: Memory
    /// The retriever's score (cosine, BM25, RRF… depending on the retriever).
    public var rawSimilarity: Double
    /// The score min–max normalised over the candidate set: the best candidate 1, the worst 0.
    public var similarity: Double
    public var utility: Double
    /// similarityWeight × similarity + utilityWeight × utility.
    public var score: Double
    /// True when ε-greedy exploration put this memory first.
    public var explored: Bool
}

/// A two-phase retrieval's answer.
public struct MemoryRetrieval: Sendable, Hashable {
    public var hits: [MemoryHit]
    /// The retriever instance phase A used.
    public var retriever: String
    /// How many candidates phase A returned (before the similarity floor).
    public var candidates: Int
    /// Why a source of a fused retriever could not answer, when the answer is degraded.
    public var degradedReason: String?
}

/// The vector a retrieval searches with, if any, and why there is none when one was expected.
public struct QueryVector: Sendable, Hashable {
    public var vector: [Float]?
    public var degradedReason: String?
    /// True when the tier's embeddings engine made `vector` (the caller sent none).
    public var isEngineMade = false
    /// Rephrasings of the query (query expansion), searched by full text and fused with its hits.
    public var expansions: [String] = []

    /// This query's degraded reason and the search's, together; nil when neither has one.
    public func degradedReason(with search: String?) -> String? {
        let reasons = [degradedReason, search].compactMap { $0 }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }
}

extension MemoryBank {
    /// Two-phase retrieval of memories for `intent` in `namespace`.
    ///
    /// Phase A asks the retriever for candidateMultiplier × topK memories (the tier's primary
    /// retriever, or `retriever` when the caller names one of the tier's). Phase B normalises the
    /// candidates' scores to [0, 1] (min–max over the set: retriever scores such as BM25 and RRF are
    /// not on a cosine scale), drops those under the similarity floor, and ranks the rest by
    /// similarityWeight × similarity + utilityWeight × utility. With probability ε the first result
    /// is a uniformly drawn candidate instead (exploration).
    public func retrieve(
        namespace: String, tier: String, retriever: String? = nil, intent: String, vector: [Float]? = nil, topK: Int, expansions: [String] = []
    ) throws -> MemoryRetrieval {
        guard topK > 0 else { throw MemoryError(.invalidArgument, "topK must be at least 1, got \(topK)") }
        guard !intent.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || vector != nil else {
            throw MemoryError(.invalidArgument, "an intent text or a vector is required to retrieve memories")
        }
        let candidates = topK * policy.candidateMultiplier
        var lastError: String?
        for id in try retrieverIDs(tier: tier, requested: retriever) {
            let answer: SearchAnswer
            do {
                answer = try documents.search(
                    instanceID: id, namespace: namespace, text: intent, vector: vector, topK: candidates,
                    filters: [Self.kindKey: Self.kindValue])
            } catch let error as SearchError where error.isInvalidQuery {
                throw MemoryError(.invalidArgument, error.message)
            } catch {
                lastError = "\(error)"
                if retriever != nil { break }
                continue
            }
            let candidatesFound = fuse(answer.hits, expansions: expansions, tier: tier, namespace: namespace, topK: candidates)
            let hits = try rank(candidatesFound, namespace: namespace, topK: topK)
            return MemoryRetrieval(hits: hits, retriever: id, candidates: candidatesFound.count, degradedReason: answer.degradedReason)
        }
        throw MemoryError(.unavailable, "no retriever of tier '\(tier)' could search memories: \(lastError ?? "none is loaded")")
    }

    /// The query vector for a retrieval of `intent`: `given` when the caller sent one; else the
    /// tier's embeddings engine's vector, when the tier maps one and the retriever that will
    /// answer uses vectors (`retrieval.vector` or `retrieval.hybrid` in their manifests); else none. An engine
    /// failure does not fail the search: it goes on by text, and `degradedReason` says why.
    ///
    /// With `namespace` (whose tenant pays for it, within `tenantCapUSD` when the tenant has a cap
    /// of its own) and an expander installed, a query longer than 50 characters is also rephrased,
    /// while it is embedded; see ``QueryExpanding``.
    public func queryVector(
        tier: String, retriever: String? = nil, intent: String, given: [Float]? = nil, namespace: String? = nil, tenantCapUSD: Double? = nil
    ) async -> QueryVector {
        async let rephrased = expansions(of: intent, tier: tier, namespace: namespace, tenantCapUSD: tenantCapUSD)
        var query = await embeddedQuery(tier: tier, retriever: retriever, intent: intent, given: given)
        query.expansions = await rephrased
        return query
    }

    func embeddedQuery(tier: String, retriever: String?, intent: String, given: [Float]?) async -> QueryVector {
        if let given { return QueryVector(vector: given, degradedReason: nil) }
        guard embedder.isAvailable(tier: tier), !intent.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
            let ids = try? retrieverIDs(tier: tier, requested: retriever)
        else { return QueryVector(vector: nil, degradedReason: nil) }
        // The retriever that will answer: the one asked for, else the first loaded one.
        let instances = documents.registry.snapshot.instances
        guard let answering = ids.first(where: { instances[$0] != nil }) else { return QueryVector(vector: nil, degradedReason: nil) }
        guard documents.usesQueryVector(instanceID: answering) else { return QueryVector(vector: nil, degradedReason: nil) }
        do {
            let vector = try await embedder.embed(tier: tier, texts: [intent])?.first
            return QueryVector(vector: vector, degradedReason: nil, isEngineMade: vector != nil)
        } catch {
            return QueryVector(vector: nil, degradedReason: "the query was not embedded (\(error.message)); searched by text only")
        }
    }

    /// ``retrieve(namespace:tier:retriever:intent:vector:topK:)`` with a ``QueryVector``, whose
    /// degraded reason joins the answer's.
    public func retrieve(
        namespace: String, tier: String, retriever: String? = nil, intent: String, query: QueryVector, topK: Int
    ) throws -> MemoryRetrieval {
        var answer = try retrieve(
            namespace: namespace, tier: tier, retriever: retriever, intent: intent, vector: query.vector, topK: topK, expansions: query.expansions)
        answer.degradedReason = query.degradedReason(with: answer.degradedReason)
        return answer
    }

    /// The retriever instances phase A may use, in order.
    func retrieverIDs(tier: String, requested: String?) throws -> [String] {
        var ids: [String]
        do {
            ids = try documents.registry.instanceIDs(tier: tier, capability: "retrieval")
        } catch {
            throw MemoryError(.unavailable, error.message)
        }
        if !allowsFusion {
            let instances = documents.registry.snapshot.instances
            ids = ids.filter { id in instances[id].map { !$0.instance.image.info.manifest.capabilities.contains("retrieval.fusion") } ?? true }
        }
        guard let requested else { return ids }
        guard ids.contains(requested) else {
            throw MemoryError(
                .invalidArgument,
                "retriever '\(requested)' is not available to tier '\(tier)'; choose one of: \(ids.joined(separator: ", "))")
        }
        return [requested]
    }

    /// Phase B over phase A's hits (best first).
    func rank(_ hits: [SearchHit], namespace: String, topK: Int) throws -> [MemoryHit] {
        guard !hits.isEmpty else { return [] }
        let rows = try store.pool.read { db in try Self.memories(db, keys: hits.map(\.document.key), namespace: namespace) }
        let scores = hits.map { Double($0.score) }
        let normalised = Self.normalise(scores)
        var ranked: [(hit: MemoryHit, rank: Int)] = []
        for (rank, hit) in hits.enumerated() {
            guard let memory = rows[hit.document.key] else { continue }  // deleted since phase A
            let similarity = normalised[rank]
            guard similarity >= policy.similarityFloor else { continue }
            let score = policy.similarityWeight * similarity + policy.utilityWeight * memory.utility
            ranked.append((MemoryHit(memory: memory, rawSimilarity: scores[rank], similarity: similarity, utility: memory.utility, score: score, explored: false), rank))
        }
        // Best score first; ties go to the more similar memory, then to phase A's order.
        ranked.sort { a, b in
            if a.hit.score != b.hit.score { return a.hit.score > b.hit.score }
            if a.hit.similarity != b.hit.similarity { return a.hit.similarity > b.hit.similarity }
            return a.rank < b.rank
        }
        var out = ranked.map(\.hit)
        if policy.explorationRate > 0, out.count > 1 {
            let (explore, pick) = draw.withLock { random in
                (Double.random(in: 0..<1, using: &random) < policy.explorationRate, Int.random(in: 0..<out.count, using: &random))
            }
            if explore {
                var chosen = out.remove(at: pick)
                chosen.explored = true
                out.insert(chosen, at: 0)
            }
        }
        return Array(out.prefix(topK))
    }

    /// Min–max normalisation to [0, 1]; a set whose scores are all equal is all 1.
    public static func normalise(_ scores: [Double]) -> [Double] {
        guard let low = scores.min(), let high = scores.max() else { return [] }
        let span = high - low
        guard span > 1e-12 else { return scores.map { _ in 1 } }
        return scores.map { ($0 - low) / span }
    }
}
