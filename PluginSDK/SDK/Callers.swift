import OrionPluginABI

// Typed calls into a plugin's C function tables, for the host and for plugins that call other
// plugins (a hybrid retriever calls the retrievers it fuses). They copy nothing they do not have to
// and hold no lease themselves: whoever made one keeps the instance alive while it is used.
//
// All of them are @unchecked Sendable: they hold an instance pointer and a static table, and the ABI
// requires every per-instance function to be callable concurrently from any thread.

/// Calls into a rate limiter.
public struct RateLimiterCaller: @unchecked Sendable {
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafePointer<orion_rate_limiter_v1>

    public init(instance: UnsafeMutableRawPointer, table: UnsafePointer<orion_rate_limiter_v1>) {
        self.instance = instance
        self.table = table
    }

    /// Admits or refuses `cost` units for `key`.
    @inlinable
    public func acquire(key: orion_str, cost: Int64) throws(PluginError) -> RateDecision {
        var out = orion_rate_decision()
        out.struct_size = UInt32(MemoryLayout<orion_rate_decision>.size)
        var error = ErrorBuffer.make()
        let status = table.pointee.acquire(instance, key, cost, &out, &error)
        guard status == ORION_OK else { throw PluginError(status: status, error: &error) }
        return RateDecision(out)
    }

    /// Admits or refuses `cost` units for `key`.
    public func acquire(key: String, cost: Int64 = 1) throws(PluginError) -> RateDecision {
        try key.withOrionStr { (str) throws(PluginError) in try acquire(key: str, cost: cost) }
    }
}

/// Calls into a pricing table.
public struct PricingCaller: @unchecked Sendable {
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafePointer<orion_pricing_v1>

    public init(instance: UnsafeMutableRawPointer, table: UnsafePointer<orion_pricing_v1>) {
        self.instance = instance
        self.table = table
    }

    /// The prices of `model`; throws ``PluginError/Code/notFound`` for an unknown model.
    public func price(model: String) throws(PluginError) -> ModelPrice {
        var out = orion_price()
        out.struct_size = UInt32(MemoryLayout<orion_price>.size)
        var error = ErrorBuffer.make()
        let status = model.withOrionStr { table.pointee.price(instance, $0, &out, &error) }
        guard status == ORION_OK else { throw PluginError(status: status, error: &error) }
        return ModelPrice(out)
    }
}

/// A document to hand to a retriever.
public struct RetrieverDocument: Sendable, Hashable {
    public var id: Int64
    public var namespace: String
    public var fieldNames: [String]
    public var fieldValues: [String]
    public var metadata: [String: String]
    public var vector: [Float]?

    public init(id: Int64, namespace: String, fields: [(String, String)], metadata: [String: String] = [:], vector: [Float]? = nil) {
        self.id = id
        self.namespace = namespace
        self.fieldNames = fields.map(\.0)
        self.fieldValues = fields.map(\.1)
        self.metadata = metadata
        self.vector = vector
    }
}

/// One ranked result from a retriever.
public struct RetrieverHit: Sendable, Hashable {
    public var id: Int64
    public var score: Float
    public var source: HitSourceTag
    /// Each source's rank and score, for fused results.
    public var details: [HitSource]
    public init(id: Int64, score: Float, source: HitSourceTag, details: [HitSource] = []) {
        self.id = id
        self.score = score
        self.source = source
        self.details = details
    }
}

/// The answer to one search.
public struct RetrieverAnswer: Sendable, Hashable {
    public var hits: [RetrieverHit]
    /// Why some source could not answer, when the answer is degraded.
    public var degradedReason: String?

    public init(hits: [RetrieverHit], degradedReason: String?) {
        self.hits = hits
        self.degradedReason = degradedReason
    }
}

/// Calls into a retriever.
public struct RetrieverCaller: @unchecked Sendable {
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafePointer<orion_retriever_v1>

    /// Fused hits carry at most this many source entries each.
    public static let maxSourcesPerHit = 8

    public init(instance: UnsafeMutableRawPointer, table: UnsafePointer<orion_retriever_v1>) {
        self.instance = instance
        self.table = table
    }

    @inline(__always)
    private func check(_ body: (UnsafeMutablePointer<orion_error>) -> orion_status) throws(PluginError) {
        var error = ErrorBuffer.make()
        let status = body(&error)
        guard status == ORION_OK else { throw PluginError(status: status, error: &error) }
    }

    /// Indexes a batch of documents.
    public func add(_ documents: [RetrieverDocument]) throws(PluginError) {
        // Keep every string alive while the C structs point into it.
        let strings = StringArena()
        var kvStorage: [[orion_kv]] = []
        var raws: [orion_document] = []
        raws.reserveCapacity(documents.count)
        for doc in documents {
            let fields = zip(doc.fieldNames, doc.fieldValues).map { orion_kv(key: strings.str($0), value: strings.str($1)) }
            let metadata = doc.metadata.sorted { $0.key < $1.key }.map {
                orion_kv(key: strings.str($0.key), value: strings.str($0.value))
            }
            kvStorage.append(fields)
            kvStorage.append(metadata)
            raws.append(orion_document(
                struct_size: UInt32(MemoryLayout<orion_document>.size), id: doc.id, ns: strings.str(doc.namespace),
                fields: nil, field_count: fields.count, metadata: nil, metadata_count: metadata.count,
                vector: doc.vector.map { strings.floats($0) }, dimensions: UInt32(doc.vector?.count ?? 0)))
        }
        let pointers = kvStorage.map { strings.kvs($0) }
        for i in raws.indices {
            raws[i].fields = pointers[2 * i]
            raws[i].metadata = pointers[2 * i + 1]
        }
        try withExtendedLifetime(strings) { () throws(PluginError) in
            try raws.withUnsafeBufferPointer { (buffer) throws(PluginError) in
                try check { table.pointee.add(instance, buffer.baseAddress, buffer.count, $0) }
            }
        }
    }

    /// Removes documents from a namespace.
    public func remove(namespace: String, ids: [Int64]) throws(PluginError) {
        try namespace.withOrionStr { (ns) throws(PluginError) in
            try ids.withUnsafeBufferPointer { (buffer) throws(PluginError) in
                try check { table.pointee.remove(instance, ns, buffer.baseAddress, buffer.count, $0) }
            }
        }
    }

    /// Searches one namespace.
    public func search(
        namespace: String, text: String, vector: [Float]? = nil, topK: Int, filters: [String: String] = [:]
    ) throws(PluginError) -> RetrieverAnswer {
        guard topK > 0 else { return RetrieverAnswer(hits: [], degradedReason: nil) }
        let strings = StringArena()
        let filterPairs = filters.sorted { $0.key < $1.key }.map {
            orion_kv(key: strings.str($0.key), value: strings.str($0.value))
        }
        var query = orion_query(
            struct_size: UInt32(MemoryLayout<orion_query>.size), ns: strings.str(namespace), text: strings.str(text),
            vector: vector.map { strings.floats($0) }, dimensions: UInt32(vector?.count ?? 0), top_k: UInt32(topK),
            filters: strings.kvs(filterPairs), filter_count: filterPairs.count)
        var hits = [orion_hit](repeating: orion_hit(), count: topK)
        var details = [orion_hit_source](repeating: orion_hit_source(), count: topK * Self.maxSourcesPerHit)
        var out = orion_search_out()
        out.struct_size = UInt32(MemoryLayout<orion_search_out>.size)
        try withExtendedLifetime(strings) { () throws(PluginError) in
            try hits.withUnsafeMutableBufferPointer { (hitBuffer) throws(PluginError) in
                try details.withUnsafeMutableBufferPointer { (detailBuffer) throws(PluginError) in
                    out.hits = hitBuffer.baseAddress
                    out.hit_capacity = UInt32(hitBuffer.count)
                    out.details = detailBuffer.baseAddress
                    out.detail_capacity = UInt32(detailBuffer.count)
                    try check { table.pointee.search(instance, &query, &out, $0) }
                }
            }
        }
        let hitCount = min(Int(out.hit_count), hits.count)
        let detailCount = min(Int(out.detail_count), details.count)
        let answerHits = hits[..<hitCount].map { hit -> RetrieverHit in
            let start = Int(hit.detail_offset)
            let end = start + Int(hit.detail_count)
            let sources = (hit.detail_count > 0 && end <= detailCount)
                ? details[start..<end].map {
                    HitSource(sourceIndex: $0.source_index, rank: $0.rank, score: $0.score, source: HitSourceTag(rawValue: $0.source))
                } : []
            return RetrieverHit(id: hit.id, score: hit.score, source: HitSourceTag(rawValue: hit.source), details: sources)
        }
        var reason: String?
        if out.flags & ORION_SEARCH_DEGRADED != 0 {
            reason = withUnsafeBytes(of: out.degraded_reason) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return RetrieverAnswer(hits: answerHits, degradedReason: reason)
    }

    /// Drops every document.
    public func clear() throws(PluginError) {
        try check { table.pointee.clear(instance, $0) }
    }

    /// Records the store position the index reflects.
    public func checkpoint(_ value: UInt64) throws(PluginError) {
        try check { table.pointee.checkpoint(instance, value, $0) }
    }

    /// Document count and checkpoint.
    public func stats() throws(PluginError) -> RetrieverStats {
        var out = orion_retriever_stats()
        out.struct_size = UInt32(MemoryLayout<orion_retriever_stats>.size)
        try check { table.pointee.stats(instance, &out, $0) }
        return RetrieverStats(documentCount: out.document_count, checkpoint: out.checkpoint)
    }
}

/// Owns copies of strings and arrays for the duration of one call across the ABI: keep it alive
/// (`withExtendedLifetime`) until the call returns.
public final class StringArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    public init() {}

    deinit { for block in blocks { block.deallocate() } }

    public func str(_ string: String) -> orion_str {
        let utf8 = Array(string.utf8)
        guard !utf8.isEmpty else { return orion_str(ptr: nil, len: 0) }
        let block = UnsafeMutableRawPointer.allocate(byteCount: utf8.count, alignment: 1)
        block.copyMemory(from: utf8, byteCount: utf8.count)
        blocks.append(block)
        return orion_str(ptr: block.assumingMemoryBound(to: CChar.self), len: utf8.count)
    }

    func floats(_ values: [Float]) -> UnsafePointer<Float> {
        let block = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        block.initialize(from: values, count: values.count)
        blocks.append(UnsafeMutableRawPointer(block))
        return UnsafePointer(block)
    }

    func kvs(_ values: [orion_kv]) -> UnsafePointer<orion_kv>? {
        guard !values.isEmpty else { return nil }
        let block = UnsafeMutablePointer<orion_kv>.allocate(capacity: values.count)
        block.initialize(from: values, count: values.count)
        blocks.append(UnsafeMutableRawPointer(block))
        return UnsafePointer(block)
    }
}
