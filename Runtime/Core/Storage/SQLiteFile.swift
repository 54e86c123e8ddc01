import Foundation
import GRDB

/// Opening Orion's SQLite files (documents, tenants, gateway): the directory is made, the file is
/// in WAL mode (a `DatabasePool`), and a writer waits up to 5 s for the lock instead of failing.
public enum SQLiteFile {
    /// `cacheMegabytes`: each connection's page cache (SQLite's default is 2 MB). `syncEveryCommit`
    /// false: in WAL mode, commits are not synced one by one (synchronous = NORMAL) — a power loss
    /// may lose the last commits, a crash of the process loses none.
    public static func pool(at path: String, cacheMegabytes: Int? = nil, syncEveryCommit: Bool = true) throws -> DatabasePool {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = GRDB.Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            if let cacheMegabytes { try db.execute(sql: "PRAGMA cache_size = -\(cacheMegabytes * 1024)") }
            if !syncEveryCommit { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        }
        return try DatabasePool(path: path, configuration: configuration)
    }
}
