import NIOPosix

/// Runs blocking work (SQLite reads and writes, which may wait on the database lock) on NIO's
/// thread pool, so it never holds one of the few threads Swift concurrency and the event loops run on.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
