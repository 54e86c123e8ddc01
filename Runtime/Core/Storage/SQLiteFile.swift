import Foundation
import GRDB

/// Opening Orion's SQLite files (documents, tenants, gateway): the directory is made, the file is
/// in WAL mode (a `DatabasePool`), and a writer waits up to 5 s for the lock instead of failing.
public enum SQLiteFile {
    public static func pool(at path: String) throws -> DatabasePool {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = GRDB.Configuration()
        configuration.busyMode = .timeout(5)
        return try DatabasePool(path: path, configuration: configuration)
    }
}
