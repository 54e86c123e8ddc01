import OrionPluginABI

/// A retriever: a derived search index over the host's document store.
///
/// Every method may be called concurrently from any thread. Documents are keyed by the host's
/// `Int64` id within a tenant namespace; a search must return ids of its namespace only.
public protocol RetrieverPlugin: AnyObject, Sendable {
    /// Indexes (or replaces, by namespace and id) a batch of documents.
    func add(_ documents: DocumentBatch) throws(PluginError)
    /// Removes documents from one namespace; unknown ids are ignored.
    func remove(namespace: PluginString, ids: UnsafeBufferPointer<Int64>) throws(PluginError)
    /// Searches one namespace, best first, writing at most `query.topK` hits.
    func search(_ query: SearchQuery, into results: inout SearchResults) throws(PluginError)
    /// Drops every document.
    func clear() throws(PluginError)
    /// Records that the index reflects the host's store up to `checkpoint`.
    func checkpoint(_ checkpoint: UInt64) throws(PluginError)
    /// Document count and last checkpoint.
    func stats() throws(PluginError) -> RetrieverStats
}

/// Counts a retriever reports.
public struct RetrieverStats: Sendable, Hashable {
    public var documentCount: UInt64
    public var checkpoint: UInt64
    public init(documentCount: UInt64, checkpoint: UInt64) {
        self.documentCount = documentCount
        self.checkpoint = checkpoint
    }
}

/// A borrowed batch of documents, valid during ``RetrieverPlugin/add(_:)`` only.
public struct DocumentBatch: RandomAccessCollection, @unchecked Sendable {
    // @unchecked: borrowed for the duration of one call, never escapes it.
    public let base: UnsafeBufferPointer<orion_document>
    public init(_ base: UnsafeBufferPointer<orion_document>) { self.base = base }
    public var startIndex: Int { 0 }
    public var endIndex: Int { base.count }
    public subscript(position: Int) -> DocumentView { DocumentView(base[position]) }
}

/// A borrowed document.
public struct DocumentView: @unchecked Sendable {
    // @unchecked: see DocumentBatch.
    public let raw: orion_document
    public init(_ raw: orion_document) { self.raw = raw }

    public var id: Int64 { raw.id }
    public var namespace: PluginString { PluginString(raw.ns) }
    /// Text fields in the order given, e.g. `title`, `text`.
    public var fields: KeyValueList { KeyValueList(raw.fields, raw.field_count) }
    /// Flattened metadata (values as text).
    public var metadata: KeyValueList { KeyValueList(raw.metadata, raw.metadata_count) }
    /// The document's vector, if it carries one.
    public var vector: UnsafeBufferPointer<Float>? {
        guard let v = raw.vector, raw.dimensions > 0 else { return nil }
        return UnsafeBufferPointer(start: v, count: Int(raw.dimensions))
    }
}

/// A borrowed list of key/value pairs.
public struct KeyValueList: RandomAccessCollection, @unchecked Sendable {
    // @unchecked: borrowed for the duration of one call, never escapes it.
    public let base: UnsafeBufferPointer<orion_kv>
    public init(_ pointer: UnsafePointer<orion_kv>?, _ count: Int) {
        base = UnsafeBufferPointer(start: pointer, count: pointer == nil ? 0 : count)
    }
    public var startIndex: Int { 0 }
    public var endIndex: Int { base.count }
    public subscript(position: Int) -> (key: PluginString, value: PluginString) {
        (PluginString(base[position].key), PluginString(base[position].value))
    }
    /// The first value for `key`.
    public func value(for key: String) -> PluginString? {
        first { $0.key.string == key }?.value
    }
}

/// A borrowed search request.
public struct SearchQuery: @unchecked Sendable {
    // @unchecked: borrowed for the duration of one call, never escapes it.
    public let raw: orion_query
    public init(_ raw: orion_query) { self.raw = raw }

    public var namespace: PluginString { PluginString(raw.ns) }
    public var text: PluginString { PluginString(raw.text) }
    public var topK: Int { Int(raw.top_k) }
    public var vector: UnsafeBufferPointer<Float>? {
        guard let v = raw.vector, raw.dimensions > 0 else { return nil }
        return UnsafeBufferPointer(start: v, count: Int(raw.dimensions))
    }
    /// Metadata equality filters, all of which must match.
    public var filters: KeyValueList { KeyValueList(raw.filters, raw.filter_count) }
}

/// One source's part in a fused hit.
public struct HitSource: Sendable, Hashable {
    public var sourceIndex: UInt32
    public var rank: UInt32
    public var score: Float
    public var source: HitSourceTag
    public init(sourceIndex: UInt32, rank: UInt32, score: Float, source: HitSourceTag) {
        self.sourceIndex = sourceIndex
        self.rank = rank
        self.score = score
        self.source = source
    }
}

/// Where a hit came from.
public struct HitSourceTag: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let vector = HitSourceTag(rawValue: ORION_SOURCE_VECTOR)
    public static let fts = HitSourceTag(rawValue: ORION_SOURCE_FTS)
    public static let hybrid = HitSourceTag(rawValue: ORION_SOURCE_HYBRID)
    public var description: String {
        switch rawValue {
        case ORION_SOURCE_VECTOR: "vector"
        case ORION_SOURCE_FTS: "fts"
        case ORION_SOURCE_HYBRID: "hybrid"
        default: "source-\(rawValue)"
        }
    }
}

/// Writes hits into the host's caller-allocated result buffers.
public struct SearchResults: ~Copyable {
    @usableFromInline let out: UnsafeMutablePointer<orion_search_out>

    public init(_ out: UnsafeMutablePointer<orion_search_out>) { self.out = out }

    /// How many more hits fit.
    public var remainingCapacity: Int { Int(out.pointee.hit_capacity) - Int(out.pointee.hit_count) }
    /// Hits written so far.
    public var count: Int { Int(out.pointee.hit_count) }

    /// Appends a hit; returns false when the buffer is full.
    @discardableResult @inlinable
    public mutating func append(id: Int64, score: Float, source: HitSourceTag) -> Bool {
        let n = out.pointee.hit_count
        guard n < out.pointee.hit_capacity, let hits = out.pointee.hits else { return false }
        hits[Int(n)] = orion_hit(
            id: id, score: score, source: source.rawValue, detail_offset: 0, detail_count: 0)
        out.pointee.hit_count = n + 1
        return true
    }

    /// Appends a fused hit with each source's rank and score; returns false when full.
    @discardableResult
    public mutating func append(id: Int64, score: Float, source: HitSourceTag, details: [HitSource]) -> Bool {
        let d = out.pointee.detail_count
        guard Int(d) + details.count <= Int(out.pointee.detail_capacity), let detailBuffer = out.pointee.details
        else { return append(id: id, score: score, source: source) }
        guard append(id: id, score: score, source: source) else { return false }
        for (i, detail) in details.enumerated() {
            detailBuffer[Int(d) + i] = orion_hit_source(
                source_index: detail.sourceIndex, rank: detail.rank, score: detail.score,
                source: detail.source.rawValue)
        }
        out.pointee.detail_count = d + UInt32(details.count)
        let hit = Int(out.pointee.hit_count) - 1
        out.pointee.hits[hit].detail_offset = d
        out.pointee.hits[hit].detail_count = UInt32(details.count)
        return true
    }

    /// Marks the results as degraded (a source could not answer), with a reason for the caller.
    public mutating func markDegraded(reason: String) {
        out.pointee.flags |= ORION_SEARCH_DEGRADED
        withUnsafeMutableBytes(of: &out.pointee.degraded_reason) { raw in
            let bytes = Array(reason.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
    }
}
