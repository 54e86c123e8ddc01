import Foundation
import GRDB
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// One change made through the API: who (`actor`), what (`action`: method and route pattern, and
/// the request's `path`), for which tenant, when, with what result, and the SHA-256 of the request
/// body; on which node.
public struct AuditEntry: Sendable, Hashable {
    public var id: String
    /// Milliseconds since the Unix epoch.
    public var at: Int64
    public var tenant: String
    public var actor: String
    public var action: String
    public var path: String
    public var status: Int
    /// `sha256:<hex>` of the request body.
    public var digest: String
    public var node: String

    public init(id: String = UUID().uuidString.lowercased(), at: Int64, tenant: String, actor: String, action: String, path: String, status: Int, digest: String, node: String) {
        self.id = id
        self.at = at
        self.tenant = tenant
        self.actor = actor
        self.action = action
        self.path = path
        self.status = status
        self.digest = digest
        self.node = node
    }
}

/// Where audit entries are kept: a SQLite file on one node, PostgreSQL across nodes (one trail for
/// the deployment). Every read names its tenant.
public protocol AuditStore: Sendable {
    /// Writes `entries` in one transaction.
    func append(_ entries: [AuditEntry]) async throws
    /// A tenant's entries at or after `since` (epoch ms), newest first.
    func entries(tenant: String, since: Int64, limit: Int) async throws -> [AuditEntry]
    /// Deletes the entries older than `before` (epoch ms), every tenant's; returns how many.
    func expire(before: Int64) async throws -> Int
}

/// The audit trail of one node: `<dataDirectory>/audit.sqlite`.
public final class SQLiteAuditStore: AuditStore {
    let pool: DatabasePool

    public init(path: String) throws {
        pool = try SQLiteFile.pool(at: path)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("audit-v1") { db in
            try db.execute(sql: """
                CREATE TABLE audit_log (
                    id TEXT PRIMARY KEY, at INTEGER NOT NULL, tenant TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
                    path TEXT NOT NULL, status INTEGER NOT NULL, digest TEXT NOT NULL, node TEXT NOT NULL
                );
                CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at);
                CREATE INDEX audit_log_at ON audit_log (at);
                """)
        }
        try migrator.migrate(pool)
    }

    public func append(_ entries: [AuditEntry]) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(
                sql: "INSERT INTO audit_log (id, at, tenant, actor, action, path, status, digest, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for e in entries { try statement.execute(arguments: [e.id, e.at, e.tenant, e.actor, e.action, e.path, e.status, e.digest, e.node]) }
        }
    }

    public func expire(before: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM audit_log WHERE at < ?", arguments: [before])
            return db.changesCount
        }
    }

    public func entries(tenant: String, since: Int64, limit: Int) async throws -> [AuditEntry] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM audit_log WHERE tenant = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?", arguments: [tenant, since, limit]
            ).map { row in
                AuditEntry(
                    id: row["id"], at: row["at"], tenant: row["tenant"], actor: row["actor"], action: row["action"], path: row["path"],
                    status: row["status"], digest: row["digest"], node: row["node"])
            }
        }
    }
}

/// Records audit entries without making a request wait: ``record(_:)`` queues (bounded; a full
/// queue drops and counts `orion_audit_dropped_total`), and the service writes the queue every
/// 200 ms and at graceful shutdown, and deletes entries past `retentionDays` once an hour.
public final class AuditTrail: Service, Sendable {
    public let store: any AuditStore
    let capacity: Int
    let retentionDays: Double
    let logger: Logger
    private let queue = Mutex<(entries: [AuditEntry], dropped: Int)>(([], 0))
    private let turn = AsyncTurn()

    public init(store: any AuditStore, capacity: Int = 10_000, retentionDays: Double = 365, logger: Logger) {
        self.store = store
        self.retentionDays = retentionDays
        self.capacity = max(1, capacity)
        self.logger = logger
    }

    public func record(_ entry: AuditEntry) {
        let kept = queue.withLock { queue -> Bool in
            guard queue.entries.count < capacity else {
                queue.dropped += 1
                return false
            }
            queue.entries.append(entry)
            return true
        }
        if !kept { Counter(label: "orion_audit_dropped_total").increment() }
    }

    /// Entries dropped because the queue was full, since start.
    public var droppedCount: Int { queue.withLock { $0.dropped } }

    /// Writes what is queued (one flush at a time); a failed batch goes back to the queue's front.
    @discardableResult
    public func flush() async throws -> Int {
        await turn.acquire()
        defer { turn.release() }
        let taken = queue.withLock { queue -> [AuditEntry] in
            defer { queue.entries = [] }
            return queue.entries
        }
        guard !taken.isEmpty else { return 0 }
        do {
            try await store.append(taken)
        } catch {
            queue.withLock { $0.entries = taken + $0.entries }
            throw error
        }
        return taken.count
    }

    public func run() async throws {
        var failing = false
        var nextExpiry = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await flush()
                if failing { logger.notice("audit entries are written again") }
                failing = false
            } catch {
                // Logged once per outage, not at every retry.
                if !failing { logger.error("audit entries could not be written; retrying every 200 ms", metadata: ["orion.error": "\(error)"]) }
                failing = true
            }
            if ContinuousClock.now >= nextExpiry {
                nextExpiry = ContinuousClock.now + .seconds(3600)
                let cutoff = Int64((Date().timeIntervalSince1970 - retentionDays * 86_400) * 1000)
                if let removed = try? await store.expire(before: cutoff), removed > 0 {
                    logger.info("audit entries past their retention deleted", metadata: ["orion.audit.deleted": "\(removed)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        try await flush()
    }
}
