import GRDBSQLite
import OrionPluginSDK

/// A small wrapper over one SQLite connection: prepared statements, binding, stepping. Errors carry
/// SQLite's own message. Not thread-safe: ``FTSSQLite`` serialises access.
final class SQLiteConnection {
    let handle: OpaquePointer

    init(path: String) throws(PluginError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw PluginError(.unavailable, "cannot open the FTS database at '\(path)': \(message)")
        }
        handle = db
    }

    deinit { sqlite3_close_v2(handle) }

    func error(_ what: String) -> PluginError {
        PluginError(.internal, "\(what): \(String(cString: sqlite3_errmsg(handle)))")
    }

    func execute(_ sql: String) throws(PluginError) {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else { throw error("SQL failed") }
    }

    /// A prepared statement, reset and cleared on every use.
    final class Statement {
        let handle: OpaquePointer
        let connection: SQLiteConnection

        init(_ connection: SQLiteConnection, _ sql: String) throws(PluginError) {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
                let statement
            else { throw connection.error("cannot prepare statement") }
            handle = statement
            self.connection = connection
        }

        deinit { sqlite3_finalize(handle) }

        func reset() {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }

        func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
        func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(handle, index, value) }
        func bind(_ index: Int32, _ value: String) {
            // SQLITE_TRANSIENT: SQLite copies the text before this call returns.
            sqlite3_bind_text(handle, index, value, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }

        /// Steps once; true while a row is available.
        func step() throws(PluginError) -> Bool {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default: throw connection.error("statement failed")
            }
        }

        func run() throws(PluginError) {
            while try step() {}
        }

        func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
        func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
        func text(_ column: Int32) -> String {
            guard let pointer = sqlite3_column_text(handle, column) else { return "" }
            return String(cString: pointer)
        }
    }
}
