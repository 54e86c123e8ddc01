import Foundation
import GRDB
import Logging
import OrionPluginHost
import OrionPluginSDK

/// Keeps every indexing retriever in step with the document store.
///
/// Writes go to the store first (the source of truth), then to each retriever instance in the
/// current snapshot, which then records the store revision it reflects (`checkpoint`). A new or
/// swapped-in retriever is filled before it is published (``prepare(_:spec:)``) and caught up with
/// writes that raced its publication (``didPublish(_:)``); a retriever whose own state is missing
/// or stale after a restart is rebuilt from the store.
///
/// Retrievers whose manifest lists the capability `retrieval.fusion` (hybrid retrievers, which
/// index nothing themselves) are never fed.
public actor DocumentIndex: InstancePreparer {
    public nonisolated let store: DocumentStore
    nonisolated let registry: Registry
    nonisolated let logger: Logger
    /// Documents per `add` call into a plugin.
    let batchSize: Int

    public init(store: DocumentStore, registry: Registry, logger: Logger, batchSize: Int = 512) {
        self.store = store
        self.registry = registry
        self.logger = logger
        self.batchSize = batchSize
    }

    /// True for retriever instances that index documents.
    nonisolated static func indexes(_ instance: PluginInstance) -> Bool {
        instance.image.info.kinds.contains(.retriever) && !instance.image.info.manifest.capabilities.contains("retrieval.fusion")
    }

    // MARK: Writes

    /// Stores `inputs` in `namespace` and indexes them in every retriever.
    @discardableResult
    public func add(_ inputs: [DocumentInput], namespace: String) throws -> [StoredDocument] {
        try add(inputs, namespace: namespace, alongside: nil)
    }

    /// ``add(_:namespace:)`` with rows of other tables written in the store's transaction.
    func add(_ inputs: [DocumentInput], namespace: String, alongside: ((Database, [StoredDocument]) throws -> Void)?) throws -> [StoredDocument] {
        let stored = try store.upsert(inputs, namespace: namespace, alongside: alongside)
        guard let revision = stored.first?.revision else { return [] }
        let documents = stored.map(Self.retrieverDocument)
        forEachIndexingRetriever { id, retriever in
            for start in stride(from: 0, to: documents.count, by: batchSize) {
                try retriever.add(Array(documents[start..<min(start + batchSize, documents.count)]))
            }
            try retriever.checkpoint(UInt64(revision))
        }
        return stored
    }

    /// Removes documents by id from `namespace`, in the store and in every retriever.
    @discardableResult
    public func delete(ids: [String], namespace: String) throws -> Int {
        let keys = try store.delete(ids: ids, namespace: namespace)
        let revision = try store.revision()
        forEachIndexingRetriever { _, retriever in
            try retriever.remove(namespace: namespace, ids: keys)
            try retriever.checkpoint(UInt64(revision))
        }
        return keys.count
    }

    /// Runs `body` for every indexing retriever in the current snapshot. A retriever that fails is
    /// logged and left behind its checkpoint, so the next reload or restart rebuilds it.
    private func forEachIndexingRetriever(_ body: (String, RetrieverCaller) throws -> Void) {
        for (id, handle) in registry.snapshot.instances.sorted(by: { $0.key < $1.key }) where Self.indexes(handle.instance) {
            guard let lease = try? registry.lease(kind: .retriever, id: id), let retriever = lease.retriever else { continue }
            defer { lease.release() }
            do {
                try PluginCallMetrics.measure(instance: id, operation: "index") { try body(id, retriever) }
            } catch {
                logger.error("retriever failed to index; it will be rebuilt from the store", metadata: ["orion.plugin.instance": "\(id)", "orion.error": "\(error)"])
            }
        }
    }

    // MARK: Filling new instances

    /// Fills a new retriever before it is published: nothing when its own (persisted) state is
    /// already at the store's revision, else a rebuild.
    public func prepare(_ instance: PluginInstance, spec: InstanceSpec) async throws {
        guard Self.indexes(instance), let retriever = instance.retriever else { return }
        let revision = try store.revision()
        let stats = try retriever.stats()
        let count = try store.count()
        // The count is not compared: a retriever may leave documents out (a vector index skips
        // documents without a vector).
        if stats.checkpoint == UInt64(revision), revision > 0 {
            logger.info("retriever index is current", metadata: ["orion.plugin.instance": "\(spec.id)", "orion.documents": "\(count)"])
            return
        }
        let started = Date()
        try retriever.clear()
        try store.forEachBatch(size: batchSize) { batch in
            try retriever.add(batch.map(Self.retrieverDocument))
        }
        try retriever.checkpoint(UInt64(revision))
        logger.info(
            "retriever filled from the document store",
            metadata: [
                "orion.plugin.instance": "\(spec.id)", "orion.documents": "\(count)",
                "orion.seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))",
            ])
    }

    /// Catches newly published retrievers up with writes that happened after they were filled.
    public func didPublish(_ instances: [PluginInstance]) async {
        for instance in instances where Self.indexes(instance) {
            guard let retriever = instance.retriever else { continue }
            do {
                let seen = Int64(try retriever.stats().checkpoint)
                let revision = try store.revision()
                guard seen < revision else { continue }
                try store.forEachBatch(after: seen, size: batchSize) { batch in
                    try retriever.add(batch.map(Self.retrieverDocument))
                }
                for (namespace, keys) in try store.removals(after: seen) {
                    try retriever.remove(namespace: namespace, ids: keys)
                }
                try retriever.checkpoint(UInt64(revision))
            } catch {
                logger.error("retriever catch-up failed", metadata: ["orion.plugin.id": "\(instance.image.info.id)", "orion.error": "\(error)"])
            }
        }
    }

    static func retrieverDocument(_ document: StoredDocument) -> RetrieverDocument {
        RetrieverDocument(
            id: document.key, namespace: document.namespace, fields: document.fields.map { ($0.name, $0.value) },
            metadata: document.metadata, vector: document.embedding)
    }
}
