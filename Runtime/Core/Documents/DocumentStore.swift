import Foundation
import GRDB
import Synchronization

/// A document as the store holds it: the source of truth every retriever is derived from.
public struct StoredDocument: Sendable, Hashable {
    /// The store's key, handed to retrievers; stable for the document's life.
    public var key: Int64
    public var namespace: String
    /// The caller's id, unique within the namespace.
    public var id: String
    /// Text fields in order, e.g. `title`, `text`.
    public var fields: [DocumentField]
    /// Flat metadata (values as text), used by equality filters.
    public var metadata: [String: String]
    public var embedding: [Float]?
    /// Unix epoch milliseconds.
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The store revision that last wrote this document.
    public var revision: Int64
}

/// One named text field.
public struct DocumentField: Sendable, Hashable, Codable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A document to store.
public struct DocumentInput: Sendable, Hashable {
    public var id: String
    public var fields: [DocumentField]
    public var metadata: [String: String]
    public var embedding: [Float]?
    public init(id: String, fields: [DocumentField], metadata: [String: String] = [:], embedding: [Float]? = nil) {
        self.id = id
        self.fields = fields
        self.metadata = metadata
        self.embedding = embedding
    }
}

/// Why the store refused something.
public struct DocumentStoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The document store: one SQLite database in WAL mode.
///
/// Every write bumps the store's revision and records it on the documents it wrote (and, for a
/// removal, in a tombstone), so a retriever that reports the revision it has seen can be caught up
/// with exactly what changed since.
public final class DocumentStore: Sendable {
    public let path: String
    public let pool: DatabasePool
    /// key → (namespace, id) for the documents this process wrote or looked up: a key's namespace
    /// and id never change, so entries only go away with their document. About 100 bytes each.
    private let identities = Mutex<[Int64: Identity]>([:])

    struct Identity: Sendable {
        let namespace: String
        let id: String
    }

    /// Opens (and migrates) the database at `path`, creating its directory.
    public init(path: String) throws {
        self.path = path
        pool = try SQLiteFile.pool(at: path)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("documents-v1") { db in
            try db.execute(sql: """
                CREATE TABLE documents (
                    key INTEGER PRIMARY KEY AUTOINCREMENT,
                    namespace TEXT NOT NULL,
                    id TEXT NOT NULL,
                    fields TEXT NOT NULL,
                    metadata TEXT NOT NULL,
                    embedding BLOB,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    revision INTEGER NOT NULL,
                    UNIQUE (namespace, id)
                );
                CREATE INDEX documents_revision ON documents(revision);
                CREATE TABLE document_tombstones (
                    key INTEGER PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    revision INTEGER NOT NULL
                );
                CREATE INDEX document_tombstones_revision ON document_tombstones(revision);
                CREATE TABLE store_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO store_state VALUES ('revision', 0);
                """)
        }
        migrator.registerMigration("memory-v1") { db in
            // Agent memory (Runtime/Core/Memory): a memory is a document (its intent is the text the
            // retrievers index) plus this row; deleting the document deletes the memory and its
            // feedback records.
            try db.execute(sql: """
                CREATE TABLE memories (
                    key INTEGER PRIMARY KEY REFERENCES documents(key) ON DELETE CASCADE,
                    session TEXT NOT NULL,
                    experience TEXT NOT NULL,
                    utility REAL NOT NULL DEFAULT 0,
                    outcomes INTEGER NOT NULL DEFAULT 0,
                    last_used INTEGER
                );
                CREATE TABLE memory_feedback (
                    run_id TEXT NOT NULL,
                    key INTEGER NOT NULL REFERENCES memories(key) ON DELETE CASCADE,
                    reward REAL NOT NULL,
                    is_default INTEGER NOT NULL,
                    outcomes_after INTEGER NOT NULL,
                    applied_at INTEGER NOT NULL,
                    PRIMARY KEY (run_id, key)
                );
                CREATE INDEX memory_feedback_key ON memory_feedback(key);
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    session TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    intent TEXT NOT NULL,
                    retrieved TEXT NOT NULL,
                    used TEXT NOT NULL,
                    status TEXT NOT NULL,
                    outcome TEXT,
                    reward REAL,
                    error TEXT,
                    degraded TEXT,
                    new_memory TEXT,
                    started_at INTEGER NOT NULL,
                    ended_at INTEGER
                );
                CREATE INDEX runs_namespace ON runs(namespace, started_at);
                """)
        }
        migrator.registerMigration("runs-v2") { db in
            // Runs as journals (Runtime/Core/Runs): who ran it on which tier, its steps and tool
            // calls — written with the run's final record in one transaction.
            try db.execute(sql: """
                ALTER TABLE runs ADD COLUMN tier TEXT NOT NULL DEFAULT '';
                ALTER TABLE runs ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
                CREATE INDEX runs_status ON runs(namespace, status, started_at);
                CREATE TABLE run_steps (
                    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    duration_ms REAL NOT NULL,
                    detail TEXT NOT NULL,
                    PRIMARY KEY (run_id, position)
                );
                CREATE TABLE run_tool_calls (
                    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    arguments_sha256 TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    duration_ms REAL NOT NULL,
                    success INTEGER NOT NULL,
                    error TEXT,
                    PRIMARY KEY (run_id, position)
                );
                """)
        }
        migrator.registerMigration("runs-v3") { db in
            // The node (instanceId) that runs each run: a restarting node closes its own orphans only.
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN node TEXT NOT NULL DEFAULT ''")
        }
        return migrator
    }

    /// Throws unless the store takes a write now (readiness checks): a write transaction that
    /// changes nothing.
    public func checkWritable() throws {
        try pool.write { db in try db.execute(sql: "UPDATE store_state SET value = value WHERE name = 'revision'") }
    }

    /// The current revision: 0 for an empty store, then one more per write.
    public func revision() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM store_state WHERE name = 'revision'") ?? 0 }
    }

    /// Documents in all namespaces, or in one.
    public func count(namespace: String? = nil) throws -> Int {
        try pool.read { db in
            if let namespace {
                return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents WHERE namespace = ?", arguments: [namespace]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? 0
        }
    }

    /// Refuses embeddings whose size differs from the namespace's: a tenant's vectors come from one
    /// model, and a vector index holds one size per namespace (a stray size would leave every vector
    /// index unable to take the document, and behind the store).
    static func checkDimensions(_ db: Database, _ inputs: [DocumentInput], namespace: String) throws {
        let vectored = inputs.filter { $0.embedding != nil }
        guard let first = vectored.first, let firstSize = first.embedding?.count else { return }
        var expected = firstSize, source = "document \(first.id) of the same request has"
        if let bytes = try Int.fetchOne(
            db, sql: "SELECT length(embedding) FROM documents WHERE namespace = ? AND embedding IS NOT NULL LIMIT 1", arguments: [namespace])
        {
            expected = bytes / MemoryLayout<Float>.size
            source = "the tenant's stored vectors have"
        }
        if let stray = vectored.first(where: { $0.embedding?.count != expected }) {
            throw DocumentStoreError(
                message: "document \(stray.id): its embedding has \(stray.embedding?.count ?? 0) values, but \(source) \(expected); "
                    + "every vector of a tenant must come from the same model")
        }
    }

    /// Inserts or replaces (by namespace and id) `inputs` in one transaction; returns them stored.
    public func upsert(_ inputs: [DocumentInput], namespace: String, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws -> [StoredDocument] {
        try upsert(inputs, namespace: namespace, now: now, alongside: nil)
    }

    /// ``upsert(_:namespace:now:)``, running `alongside` in the same transaction once the documents
    /// are written (rows of other tables that belong to them).
    func upsert(
        _ inputs: [DocumentInput], namespace: String, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000),
        alongside: ((Database, [StoredDocument]) throws -> Void)?
    ) throws -> [StoredDocument] {
        guard !namespace.isEmpty else { throw DocumentStoreError(message: "a namespace is required") }
        for input in inputs {
            if input.id.isEmpty { throw DocumentStoreError(message: "every document needs a non-empty id") }
            if let embedding = input.embedding {
                if embedding.isEmpty { throw DocumentStoreError(message: "document \(input.id): the embedding is empty; send at least one value or none") }
                if let bad = embedding.firstIndex(where: { !$0.isFinite }) {
                    throw DocumentStoreError(message: "document \(input.id): embedding value \(bad) is \(embedding[bad]); every value must be a finite number")
                }
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let written: [StoredDocument] = try pool.write { db in
            try Self.checkDimensions(db, inputs, namespace: namespace)
            let revision = try Self.bump(db)
            var stored: [StoredDocument] = []
            stored.reserveCapacity(inputs.count)
            for input in inputs {
                let fields = String(decoding: try encoder.encode(input.fields), as: UTF8.self)
                let metadata = String(decoding: try encoder.encode(input.metadata), as: UTF8.self)
                let blob = input.embedding.map { Self.blob($0) }
                try db.execute(
                    sql: """
                        INSERT INTO documents (namespace, id, fields, metadata, embedding, created_at, updated_at, revision)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (namespace, id) DO UPDATE SET
                            fields = excluded.fields, metadata = excluded.metadata, embedding = excluded.embedding,
                            updated_at = excluded.updated_at, revision = excluded.revision
                        """,
                    arguments: [namespace, input.id, fields, metadata, blob, now, now, revision])
                let row = try Row.fetchOne(db, sql: "SELECT key, created_at FROM documents WHERE namespace = ? AND id = ?", arguments: [namespace, input.id])
                // The row was written just above in this transaction.
                let key: Int64 = row!["key"]
                stored.append(StoredDocument(
                    key: key, namespace: namespace, id: input.id, fields: input.fields, metadata: input.metadata,
                    embedding: input.embedding, createdAt: row!["created_at"], updatedAt: now, revision: revision))
            }
            try alongside?(db, stored)
            return stored
        }
        identities.withLock { cache in
            for document in written { cache[document.key] = Identity(namespace: namespace, id: document.id) }
        }
        return written
    }

    /// Removes documents by id from a namespace; returns the keys removed.
    @discardableResult
    public func delete(ids: [String], namespace: String) throws -> [Int64] {
        let removed: [Int64] = try pool.write { db in
            let revision = try Self.bump(db)
            var keys: [Int64] = []
            for id in ids {
                guard let key = try Int64.fetchOne(db, sql: "SELECT key FROM documents WHERE namespace = ? AND id = ?", arguments: [namespace, id]) else { continue }
                try db.execute(sql: "DELETE FROM documents WHERE key = ?", arguments: [key])
                try db.execute(sql: "INSERT OR REPLACE INTO document_tombstones (key, namespace, revision) VALUES (?, ?, ?)", arguments: [key, namespace, revision])
                keys.append(key)
            }
            return keys
        }
        identities.withLock { cache in for key in removed { cache[key] = nil } }
        return removed
    }

    /// Documents by key, restricted to `namespace` (keys of other namespaces are not returned).
    public func documents(keys: [Int64], namespace: String) throws -> [Int64: StoredDocument] {
        guard !keys.isEmpty else { return [:] }
        return try pool.read { db in
            let placeholders = Array(repeating: "?", count: keys.count).joined(separator: ",")
            var arguments: [any DatabaseValueConvertible] = [namespace]
            arguments += keys.map { $0 as any DatabaseValueConvertible }
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM documents WHERE namespace = ? AND key IN (\(placeholders))",
                arguments: StatementArguments(arguments))
            return Dictionary(uniqueKeysWithValues: try rows.map { row in let d = try Self.document(row); return (d.key, d) })
        }
    }

    /// The caller's ids of `keys`, in order, restricted to `namespace` (nil for a key of another
    /// namespace or a deleted one): a light hydration for callers that need the ranking only.
    public func ids(keys: [Int64], namespace: String) throws -> [String?] {
        var out = [String?](repeating: nil, count: keys.count)
        var missing: [Int] = []  // positions of keys not in the cache
        identities.withLock { cache in
            for (position, key) in keys.enumerated() {
                if let identity = cache[key] {
                    if identity.namespace == namespace { out[position] = identity.id }
                } else {
                    missing.append(position)
                }
            }
        }
        guard !missing.isEmpty else { return out }
        // Keys this process has not seen (written by another process): read and remember them.
        let found: [Int64: Identity] = try pool.read { db in
            let placeholders = Array(repeating: "?", count: missing.count).joined(separator: ",")
            let statement = try db.cachedStatement(sql: "SELECT key, namespace, id FROM documents WHERE key IN (\(placeholders))")
            let rows = try Row.fetchCursor(statement, arguments: StatementArguments(missing.map { keys[$0] as any DatabaseValueConvertible }))
            var found: [Int64: Identity] = [:]
            while let row = try rows.next() { found[row[0]] = Identity(namespace: row[1], id: row[2]) }
            return found
        }
        identities.withLock { cache in cache.merge(found) { _, new in new } }
        for position in missing {
            if let identity = found[keys[position]], identity.namespace == namespace { out[position] = identity.id }
        }
        return out
    }

    /// One document by namespace and id.
    public func document(id: String, namespace: String) throws -> StoredDocument? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM documents WHERE namespace = ? AND id = ?", arguments: [namespace, id]).map(Self.document)
        }
    }

    /// Every document written after `revision` (all of them for 0), in key order, in batches.
    public func forEachBatch(after revision: Int64 = 0, size: Int = 512, _ body: ([StoredDocument]) throws -> Void) throws {
        var lastKey: Int64 = 0
        while true {
            let batch = try pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT * FROM documents WHERE revision > ? AND key > ? ORDER BY key LIMIT ?",
                    arguments: [revision, lastKey, size]
                ).map(Self.document)
            }
            guard let last = batch.last else { return }
            try body(batch)
            lastKey = last.key
        }
    }

    /// Keys removed after `revision`, by namespace.
    public func removals(after revision: Int64) throws -> [String: [Int64]] {
        try pool.read { db in
            var out: [String: [Int64]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, namespace FROM document_tombstones WHERE revision > ?", arguments: [revision]) {
                out[row["namespace"], default: []].append(row["key"])
            }
            return out
        }
    }

    private static func bump(_ db: Database) throws -> Int64 {
        try db.execute(sql: "UPDATE store_state SET value = value + 1 WHERE name = 'revision'")
        // The row is created by the migration.
        return try Int64.fetchOne(db, sql: "SELECT value FROM store_state WHERE name = 'revision'")!
    }

    static func blob(_ vector: [Float]) -> Data {
        vector.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }

    static func document(_ row: Row) throws -> StoredDocument {
        let decoder = JSONDecoder()
        let fieldsText: String = row["fields"]
        let metadataText: String = row["metadata"]
        let embedding: Data? = row["embedding"]
        return StoredDocument(
            key: row["key"], namespace: row["namespace"], id: row["id"],
            fields: try decoder.decode([DocumentField].self, from: Data(fieldsText.utf8)),
            metadata: try decoder.decode([String: String].self, from: Data(metadataText.utf8)),
            embedding: embedding.map(floats), createdAt: row["created_at"], updatedAt: row["updated_at"], revision: row["revision"])
    }
}
