import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// The system's health sampled every `health.snapshotIntervalSeconds` and kept for
/// `health.retentionHours` in `<dataDirectory>/health.sqlite`: plugin instances and their leases,
/// instances refused at the last deployment, queue depths (connectors, usage records, live
/// subscribers), store sizes and circuit breaker states. Served at `/api/health/history`.
public final class HealthHistory: Service, Sendable {
    let pool: DatabasePool
    let interval: Duration
    let retentionMilliseconds: Int64
    let sample: @Sendable () async -> [String: Any]
    let logger: Logger

    /// `sample` returns one snapshot's content (JSON values only).
    public init(path: String, config: RuntimeConfig, logger: Logger, sample: @escaping @Sendable () async -> [String: Any]) throws {
        pool = try SQLiteFile.pool(at: path, syncEveryCommit: false)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("health-v1") { db in
            try db.execute(sql: "CREATE TABLE snapshots (at INTEGER NOT NULL, body TEXT NOT NULL); CREATE INDEX snapshots_at ON snapshots(at);")
        }
        try migrator.migrate(pool)
        interval = .milliseconds(Int64(config.health.snapshotIntervalSeconds * 1000))
        retentionMilliseconds = Int64(config.health.retentionHours * 3_600_000)
        self.sample = sample
        self.logger = logger
    }

    /// Takes one snapshot now, stores it and drops those past the retention.
    @discardableResult
    public func snapshot(now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) async throws -> [String: Any] {
        var body = await sample()
        body["at"] = now
        let text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        let cutoff = now - retentionMilliseconds
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO snapshots (at, body) VALUES (?, ?)", arguments: [now, text])
            try db.execute(sql: "DELETE FROM snapshots WHERE at < ?", arguments: [cutoff])
        }
        return body
    }

    /// Snapshots of the last `hours`, oldest first.
    public func history(hours: Double, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws -> [[String: Any]] {
        try historyJSON(hours: hours, now: now).compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// ``history(hours:now:)`` as stored: one JSON object per snapshot.
    public func historyJSON(hours: Double, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws -> [String] {
        let since = now - Int64(hours * 3_600_000)
        return try pool.read { db in try String.fetchAll(db, sql: "SELECT body FROM snapshots WHERE at >= ? ORDER BY at", arguments: [since]) }
    }

    /// Samples until graceful shutdown; ending then is a normal end, not an error of the service.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.snapshot()
                } catch {
                    self.logger.warning("health snapshot not stored", metadata: ["orion.error": "\(error)"])
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}
