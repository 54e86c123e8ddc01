import OrionPluginABI
import OrionPluginSDK

/// `vector-flat`: exact nearest-neighbour search over contiguous float32 storage per namespace.
///
/// Scores are cosine similarity (vectors are normalised on insert, so a dot product is the cosine)
/// or the raw dot product. Metadata filters are applied before ranking, so a search returns k
/// results whenever k documents match. The index lives in memory; its checkpoint is 0 after a
/// restart, which tells the host to refill it from the document store. Documents without a
/// vector are not indexed.
final class VectorFlat: OrionPlugin, RetrieverPlugin {
    /// - Configuration keys:
    ///   - `metric` (`cosine` | `dot`, default `cosine`).
    ///   - `dimensions` (integer ≥ 1, optional): refuse vectors of any other size; without it the
    ///     first vector of each namespace fixes the size.
    struct Configuration: Decodable, Sendable {
        var metric: String?
        var dimensions: Int?
    }

    static let descriptor = PluginDescriptor(
        id: "vector-flat", version: "1.0.0", capabilities: ["retrieval", "retrieval.vector"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{
            "metric":{"enum":["cosine","dot"]},
            "dimensions":{"type":"integer","minimum":1,"maximum":65536}}}
            """,
        summary: "Exact cosine / dot-product vector search, SIMD, in memory")

    let normalise: Bool
    let fixedDimensions: Int?
    let lock = ReadWriteLock()
    // Guarded by `lock`: read under the read lock, written under the write lock.
    nonisolated(unsafe) var namespaces: [String: VectorTable] = [:]
    nonisolated(unsafe) var checkpointValue: UInt64 = 0

    init(configuration: Configuration, host: PluginHost) throws {
        normalise = (configuration.metric ?? "cosine") == "cosine"
        fixedDimensions = configuration.dimensions
    }

    func add(_ documents: DocumentBatch) throws(PluginError) {
        // Validate the whole batch before changing anything.
        for document in documents {
            guard let vector = document.vector else { continue }
            if let bad = vector.firstIndex(where: { !$0.isFinite }) {
                throw PluginError(.invalidArgument, "document \(document.id): vector value \(bad) is \(vector[bad]); values must be finite")
            }
            if let fixed = fixedDimensions, vector.count != fixed {
                throw PluginError(.invalidArgument, "document \(document.id) has \(vector.count) dimensions; this index is configured for \(fixed)")
            }
        }
        try lock.write { () throws(PluginError) in
            for document in documents {
                // A document without a vector cannot be found by vector: it is not indexed (and an
                // earlier version of it is removed).
                guard let vector = document.vector else {
                    namespaces[document.namespace.string]?.remove(id: document.id)
                    continue
                }
                let ns = document.namespace.string
                var table = namespaces[ns] ?? VectorTable(dimensions: vector.count)
                namespaces[ns] = nil  // keep the table uniquely referenced while it grows
                guard table.dimensions == vector.count else {
                    namespaces[ns] = table
                    throw PluginError(.invalidArgument, "document \(document.id) has \(vector.count) dimensions; namespace '\(ns)' holds \(table.dimensions)-dimensional vectors")
                }
                var metadata: [String: String] = [:]
                for pair in document.metadata { metadata[pair.key.string] = pair.value.string }
                table.upsert(id: document.id, vector: vector, metadata: metadata, normalise: normalise)
                namespaces[ns] = table
            }
        }
    }

    func remove(namespace: PluginString, ids: UnsafeBufferPointer<Int64>) throws(PluginError) {
        let ns = namespace.string
        lock.write {
            guard var table = namespaces.removeValue(forKey: ns) else { return }
            for id in ids { table.remove(id: id) }
            if table.count > 0 { namespaces[ns] = table }
        }
    }

    func search(_ query: SearchQuery, into results: inout SearchResults) throws(PluginError) {
        guard let vector = query.vector else {
            throw PluginError(.invalidArgument, "vector-flat needs a query vector; send one with the query or configure an embedding engine for the tier")
        }
        if let bad = vector.firstIndex(where: { !$0.isFinite }) {
            throw PluginError(.invalidArgument, "query vector value \(bad) is \(vector[bad]); values must be finite")
        }
        var filters: [(String, String)] = []
        for pair in query.filters { filters.append((pair.key.string, pair.value.string)) }
        let ns = query.namespace.string
        let topK = query.topK
        let hits: [(Int64, Float)] = try lock.read { () throws(PluginError) in
            guard let table = namespaces[ns] else { return [] }
            guard table.dimensions == vector.count else {
                throw PluginError(.invalidArgument, "the query vector has \(vector.count) dimensions; namespace '\(ns)' holds \(table.dimensions)")
            }
            return table.search(vector, topK: topK, filters: filters, normalise: normalise)
        }
        for (id, score) in hits { results.append(id: id, score: score, source: .vector) }
    }

    func clear() throws(PluginError) {
        lock.write { namespaces = [:] }
    }

    func checkpoint(_ checkpoint: UInt64) throws(PluginError) {
        lock.write { checkpointValue = checkpoint }
    }

    func stats() throws(PluginError) -> RetrieverStats {
        lock.read { RetrieverStats(documentCount: UInt64(namespaces.values.reduce(0) { $0 + $1.count }), checkpoint: checkpointValue) }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(VectorFlat.self, host: host)
}
