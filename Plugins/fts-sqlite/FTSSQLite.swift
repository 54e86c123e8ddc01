import GRDBSQLite
import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// `fts-sqlite`: full-text search with SQLite FTS5 (`porter unicode61` tokenizer, BM25 ranking).
///
/// Fields named `title` go to a `title` column, every other field to `body`; BM25 weighs them by
/// `titleWeight` and 1. User text becomes an OR query of its words with FTS5 syntax escaped (see
/// ``FTSQuery``). Namespace and metadata filters are part of the same SQL statement as the match,
/// so they apply before ranking and a search returns k results whenever k documents match.
final class FTSSQLite: OrionPlugin, RetrieverPlugin {
    /// - Configuration keys:
    ///   - `path` (string, optional): the index file; without it the index lives in memory and is
    ///     rebuilt from the document store at start-up.
    ///   - `titleWeight` (number ≥ 0, default 1): BM25 weight of the `title` column (body: 1).
    ///   - `tokenizer` (string, default `porter unicode61`): the FTS5 tokenizer.
    struct Configuration: Decodable, Sendable {
        var path: String?
        var titleWeight: Double?
        var tokenizer: String?
    }

    static let descriptor = PluginDescriptor(
        id: "fts-sqlite", version: "1.0.0", capabilities: ["retrieval", "retrieval.fts"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{
            "path":{"type":"string","minLength":1},
            "titleWeight":{"type":"number","minimum":0},
            "tokenizer":{"enum":["porter unicode61","unicode61","porter ascii","ascii","trigram"]}}}
            """,
        summary: "SQLite FTS5 full-text search, porter stemming, BM25")

    /// The connection and its statements, used under the lock only.
    final class Store: @unchecked Sendable {
        // @unchecked: every access goes through `FTSSQLite.state`'s mutex.
        let db: SQLiteConnection
        let insert: SQLiteConnection.Statement
        let insertText: SQLiteConnection.Statement
        let insertMeta: SQLiteConnection.Statement
        let lookup: SQLiteConnection.Statement
        let deleteRow: SQLiteConnection.Statement
        let deleteText: SQLiteConnection.Statement
        let deleteMeta: SQLiteConnection.Statement
        var searches: [Int: SQLiteConnection.Statement] = [:]
        let titleWeight: Double

        init(path: String, tokenizer: String, titleWeight: Double) throws(PluginError) {
            db = try SQLiteConnection(path: path)
            self.titleWeight = titleWeight
            try db.execute("""
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = NORMAL;
                CREATE TABLE IF NOT EXISTS rows (row INTEGER PRIMARY KEY, ns TEXT NOT NULL, id INTEGER NOT NULL, UNIQUE (ns, id));
                CREATE VIRTUAL TABLE IF NOT EXISTS text USING fts5(title, body, tokenize = '\(tokenizer)');
                CREATE TABLE IF NOT EXISTS meta (row INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS meta_lookup ON meta(key, value, row);
                CREATE INDEX IF NOT EXISTS meta_row ON meta(row);
                CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """)
            insert = try .init(db, "INSERT INTO rows (ns, id) VALUES (?, ?)")
            insertText = try .init(db, "INSERT INTO text (rowid, title, body) VALUES (?, ?, ?)")
            insertMeta = try .init(db, "INSERT INTO meta (row, key, value) VALUES (?, ?, ?)")
            lookup = try .init(db, "SELECT row FROM rows WHERE ns = ? AND id = ?")
            deleteRow = try .init(db, "DELETE FROM rows WHERE row = ?")
            deleteText = try .init(db, "DELETE FROM text WHERE rowid = ?")
            deleteMeta = try .init(db, "DELETE FROM meta WHERE row = ?")
        }

        /// The search statement for `filters` metadata filters (cached per filter count).
        func search(filters: Int) throws(PluginError) -> SQLiteConnection.Statement {
            if let cached = searches[filters] { return cached }
            var sql = """
                SELECT rows.id, bm25(text, \(titleWeight), 1.0) AS rank FROM text JOIN rows ON rows.row = text.rowid
                WHERE text MATCH ?1 AND rows.ns = ?2
                """
            for i in 0..<filters {
                sql += " AND rows.row IN (SELECT row FROM meta WHERE key = ?\(4 + 2 * i) AND value = ?\(5 + 2 * i))"
            }
            sql += " ORDER BY rank LIMIT ?3"
            let statement = try SQLiteConnection.Statement(db, sql)
            searches[filters] = statement
            return statement
        }

        func remove(ns: String, id: Int64) throws(PluginError) {
            lookup.reset()
            lookup.bind(1, ns)
            lookup.bind(2, id)
            guard try lookup.step() else { return }
            let row = lookup.int64(0)
            lookup.reset()
            for statement in [deleteText, deleteMeta, deleteRow] {
                statement.reset()
                statement.bind(1, row)
                try statement.run()
            }
        }
    }

    let state: Mutex<Store>

    init(configuration: Configuration, host: PluginHost) throws {
        let store = try Store(
            path: configuration.path ?? ":memory:", tokenizer: configuration.tokenizer ?? "porter unicode61",
            titleWeight: configuration.titleWeight ?? 1)
        state = Mutex(store)
        if let path = configuration.path { host.log(.info, "fts-sqlite index at \(path)") }
    }

    func add(_ documents: DocumentBatch) throws(PluginError) {
        var prepared: [(ns: String, id: Int64, title: String, body: String, meta: [(String, String)])] = []
        for document in documents {
            var title: [String] = []
            var body: [String] = []
            for field in document.fields {
                if field.key.string == "title" { title.append(field.value.string) } else { body.append(field.value.string) }
            }
            prepared.append((
                document.namespace.string, document.id, title.joined(separator: " "), body.joined(separator: "\n"),
                document.metadata.map { ($0.key.string, $0.value.string) }))
        }
        try state.withLock { (store) throws(PluginError) in
            try store.db.execute("BEGIN IMMEDIATE")
            do throws(PluginError) {
                for doc in prepared {
                    try store.remove(ns: doc.ns, id: doc.id)
                    store.insert.reset()
                    store.insert.bind(1, doc.ns)
                    store.insert.bind(2, doc.id)
                    try store.insert.run()
                    let row = sqlite3_last_insert_rowid(store.db.handle)
                    store.insertText.reset()
                    store.insertText.bind(1, row)
                    store.insertText.bind(2, doc.title)
                    store.insertText.bind(3, doc.body)
                    try store.insertText.run()
                    for (key, value) in doc.meta {
                        store.insertMeta.reset()
                        store.insertMeta.bind(1, row)
                        store.insertMeta.bind(2, key)
                        store.insertMeta.bind(3, value)
                        try store.insertMeta.run()
                    }
                }
                try store.db.execute("COMMIT")
            } catch {
                try? store.db.execute("ROLLBACK")
                throw error
            }
        }
    }

    func remove(namespace: PluginString, ids: UnsafeBufferPointer<Int64>) throws(PluginError) {
        let ns = namespace.string
        let doomed = Array(ids)
        try state.withLock { (store) throws(PluginError) in
            try store.db.execute("BEGIN IMMEDIATE")
            do throws(PluginError) {
                for id in doomed { try store.remove(ns: ns, id: id) }
                try store.db.execute("COMMIT")
            } catch {
                try? store.db.execute("ROLLBACK")
                throw error
            }
        }
    }

    func search(_ query: SearchQuery, into results: inout SearchResults) throws(PluginError) {
        guard let match = FTSQuery.build(query.text.string), query.topK > 0 else { return }
        let ns = query.namespace.string
        let filters = query.filters.map { ($0.key.string, $0.value.string) }
        let hits: [(Int64, Float)] = try state.withLock { (store) throws(PluginError) in
            let statement = try store.search(filters: filters.count)
            statement.reset()
            statement.bind(1, match)
            statement.bind(2, ns)
            statement.bind(3, Int64(query.topK))
            for (i, filter) in filters.enumerated() {
                statement.bind(Int32(4 + 2 * i), filter.0)
                statement.bind(Int32(5 + 2 * i), filter.1)
            }
            var out: [(Int64, Float)] = []
            while try statement.step() {
                // bm25() is smaller for better matches; report it as a higher-is-better score.
                out.append((statement.int64(0), Float(-statement.double(1))))
            }
            statement.reset()
            return out
        }
        for (id, score) in hits { results.append(id: id, score: score, source: .fts) }
    }

    func clear() throws(PluginError) {
        try state.withLock { (store) throws(PluginError) in
            try store.db.execute("BEGIN IMMEDIATE; DELETE FROM text; DELETE FROM meta; DELETE FROM rows; DELETE FROM state; COMMIT")
        }
    }

    func checkpoint(_ checkpoint: UInt64) throws(PluginError) {
        try state.withLock { (store) throws(PluginError) in
            try store.db.execute("INSERT INTO state (name, value) VALUES ('checkpoint', \(Int64(bitPattern: checkpoint))) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
        }
    }

    func stats() throws(PluginError) -> RetrieverStats {
        try state.withLock { (store) throws(PluginError) in
            let count = try SQLiteConnection.Statement(store.db, "SELECT COUNT(*) FROM rows")
            _ = try count.step()
            let checkpoint = try SQLiteConnection.Statement(store.db, "SELECT value FROM state WHERE name = 'checkpoint'")
            let value = try checkpoint.step() ? checkpoint.int64(0) : 0
            return RetrieverStats(documentCount: UInt64(count.int64(0)), checkpoint: UInt64(bitPattern: value))
        }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(FTSSQLite.self, host: host)
}
