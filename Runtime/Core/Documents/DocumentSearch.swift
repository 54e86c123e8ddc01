import Logging
import OrionPluginHost
import OrionPluginSDK

/// One search result, hydrated from the store.
public struct SearchHit: Sendable, Hashable {
    public var document: StoredDocument
    public var score: Float
    public var source: HitSourceTag
    /// Each source's rank and score, for fused results.
    public var details: [HitSource]
}

/// A hydrated answer.
public struct SearchAnswer: Sendable, Hashable {
    public var hits: [SearchHit]
    /// Why some source could not answer, when the answer is degraded.
    public var degradedReason: String?
}

/// Why a search failed.
public struct SearchError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// True when the retriever refused the query itself (a wrong vector dimension, say): the
    /// caller's mistake, not an outage.
    public var isInvalidQuery = false
    public var description: String { message }
}

extension DocumentIndex {
    /// True when the loaded retriever `instanceID` searches with a query vector: its manifest
    /// lists `retrieval.vector` or `retrieval.hybrid`.
    public nonisolated func usesQueryVector(instanceID: String) -> Bool {
        let capabilities = registry.snapshot.instances[instanceID]?.instance.image.info.manifest.capabilities ?? []
        return capabilities.contains("retrieval.vector") || capabilities.contains("retrieval.hybrid")
    }

    /// Searches `namespace` with retriever instance `instanceID` and hydrates the hits from the
    /// store. Tenancy is enforced twice: the retriever searches one namespace, and only documents
    /// of that namespace are hydrated — an id from anywhere else is dropped.
    public nonisolated func search(
        instanceID: String, namespace: String, text: String, vector: [Float]? = nil, topK: Int, filters: [String: String] = [:]
    ) throws -> SearchAnswer {
        let answer = try retrieve(instanceID: instanceID, namespace: namespace, text: text, vector: vector, topK: topK, filters: filters)
        let documents = try store.documents(keys: answer.hits.map(\.id), namespace: namespace)
        var hits: [SearchHit] = []
        for hit in answer.hits {
            guard let document = documents[hit.id] else {
                logger.warning("retriever returned a key outside the namespace, or a deleted one; dropped", metadata: ["orion.plugin.instance": "\(instanceID)"])
                continue
            }
            hits.append(SearchHit(document: document, score: hit.score, source: hit.source, details: hit.details))
        }
        return SearchAnswer(hits: hits, degradedReason: answer.degradedReason)
    }
}

extension DocumentIndex {
    /// The ranking alone — the caller's ids, best first — for callers that do not need the
    /// documents (benchmarks, id-only APIs). Tenancy is enforced as in ``search(instanceID:namespace:text:vector:topK:filters:)``.
    public nonisolated func ranking(
        instanceID: String, namespace: String, text: String, vector: [Float]? = nil, topK: Int, filters: [String: String] = [:]
    ) throws -> (ids: [String], degradedReason: String?) {
        let answer = try retrieve(instanceID: instanceID, namespace: namespace, text: text, vector: vector, topK: topK, filters: filters)
        let ids = try store.ids(keys: answer.hits.map(\.id), namespace: namespace)
        return (ids.compactMap { $0 }, answer.degradedReason)
    }

    /// One retriever's raw answer for one namespace: store keys, not yet mapped to ids.
    public nonisolated func retrieve(
        instanceID: String, namespace: String, text: String, vector: [Float]?, topK: Int, filters: [String: String]
    ) throws -> RetrieverAnswer {
        guard topK > 0 else { return RetrieverAnswer(hits: [], degradedReason: nil) }
        let lease: Lease
        do {
            lease = try registry.lease(kind: .retriever, id: instanceID)
        } catch {
            throw SearchError(message: error.message)
        }
        defer { lease.release() }
        guard let retriever = lease.retriever else { throw SearchError(message: "instance '\(instanceID)' is not a retriever") }
        do {
            return try PluginCallMetrics.measure(instance: instanceID, operation: "search") { () throws(PluginError) in
                try retriever.search(namespace: namespace, text: text, vector: vector, topK: topK, filters: filters)
            }
        } catch {
            throw SearchError(message: "retriever '\(instanceID)' failed: \(error.message)", isInvalidQuery: error.code == .invalidArgument)
        }
    }

    /// Searches with the retriever the tier maps to `retrieval` (its primary, else the next).
    public nonisolated func search(
        tier: String, namespace: String, text: String, vector: [Float]? = nil, topK: Int, filters: [String: String] = [:]
    ) throws -> SearchAnswer {
        let ids: [String]
        do {
            ids = try registry.instanceIDs(tier: tier, capability: "retrieval")
        } catch {
            throw SearchError(message: error.message)
        }
        var last: (any Error)?
        for id in ids {
            do {
                return try search(instanceID: id, namespace: namespace, text: text, vector: vector, topK: topK, filters: filters)
            } catch {
                last = error
            }
        }
        throw last ?? SearchError(message: "tier '\(tier)' maps no retriever")
    }
}
