import Foundation
import GRDB

/// A write to this node's memory database (the outcome of a run applied to the memories it used)
/// that must commit together with the run's closing record.
public struct MemoryWrite: Sendable {
    /// The memory database (the document store's file).
    public let pool: DatabasePool
    public let body: @Sendable (Database) throws -> Void

    public init(pool: DatabasePool, body: @escaping @Sendable (Database) throws -> Void) {
        self.pool = pool
        self.body = body
    }
}

/// How a run ends.
public struct RunClosing: Sendable {
    public var id: String
    public var namespace: String
    public var status: RunRecord.Status
    public var error: String?
    public var outcome: String?
    public var reward: Double?
    /// The memories the run credited (nil: unchanged).
    public var used: [String]?
    public var endedAt: Int64
    public var steps: [RunStep]
    public var toolCalls: [ToolCallRecord]

    public init(
        id: String, namespace: String, status: RunRecord.Status, error: String?, outcome: String?, reward: Double?, used: [String]?, endedAt: Int64,
        steps: [RunStep], toolCalls: [ToolCallRecord]
    ) {
        self.id = id
        self.namespace = namespace
        self.status = status
        self.error = error
        self.outcome = outcome
        self.reward = reward
        self.used = used
        self.endedAt = endedAt
        self.steps = steps
        self.toolCalls = toolCalls
    }
}

/// Run records with their steps and tool calls: in the memory database on one node
/// (``SQLiteRunStore``), in PostgreSQL across nodes (``PostgresState``). Every read names the
/// tenant namespace it reads; a run of another namespace is not found.
public protocol RunStore: Sendable {
    /// Records a new run as `running`; a second run with the same id is refused (conflict).
    func insert(_ run: RunRecord, node: String) async throws
    /// Writes the run's end, its steps and tool calls, and `memory`, as one unit: none of it is
    /// kept when any of it fails.
    func close(_ closing: RunClosing, memory: MemoryWrite?) async throws
    /// Marks a run as an error without steps (its closing could not be written), or — with
    /// `endedAt` nil — only notes `message` on a run that ended.
    func fail(id: String, namespace: String, message: String, endedAt: Int64?) async throws
    func setNewMemory(id: String, namespace: String, memoryID: String) async throws
    func setOutcome(id: String, namespace: String, outcome: String, reward: Double) async throws
    /// One run of `namespace`, with its steps and tool calls.
    func run(id: String, namespace: String) async throws -> RunRecord?
    /// Runs of `namespace` matching `query`, newest first, without steps.
    func runs(namespace: String, query: RunQuery) async throws -> [RunRecord]
    /// Closes the runs `node` left running as errors saying `message`; returns how many.
    func closeInterrupted(node: String, message: String, endedAt: Int64) async throws -> Int
    /// Asks the node running run `id` of `namespace` — another one than `node` — to cancel it.
    /// False when no other node runs it, or when this store serves one node only.
    func requestCancel(id: String, namespace: String, reason: String, from node: String) async throws -> Bool
    /// Calls `observer` with each cancel another node asks of this one.
    func onCancelRequest(_ observer: @escaping @Sendable (CancelRequest) -> Void)
}

/// A cancel one node asks of the node running the run.
public struct CancelRequest: Sendable, Hashable, Codable {
    public var runID: String
    public var namespace: String
    public var reason: String

    public init(runID: String, namespace: String, reason: String) {
        self.runID = runID
        self.namespace = namespace
        self.reason = reason
    }
}

extension RunStore {
    /// One node: nobody else to ask.
    public func requestCancel(id: String, namespace: String, reason: String, from node: String) async throws -> Bool { false }
    public func onCancelRequest(_ observer: @escaping @Sendable (CancelRequest) -> Void) {}
}

/// Runs in this node's memory database (tables `runs`, `run_steps`, `run_tool_calls` of the
/// document store's file): a run's closing and its outcome on memories share one transaction.
public final class SQLiteRunStore: RunStore {
    let pool: DatabasePool

    public init(pool: DatabasePool) { self.pool = pool }

    public func insert(_ run: RunRecord, node: String) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO runs (id, namespace, session, kind, intent, retrieved, used, status, degraded, started_at, tier, user_id, node)
                        VALUES (?, ?, ?, ?, ?, ?, '[]', 'running', ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        run.id, run.namespace, run.session, run.kind.rawValue, run.intent, RunJournal.json(run.retrievedMemoryIDs), run.degradedReason,
                        run.startedAt, run.tier, run.user, node,
                    ])
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            throw MemoryError(.conflict, "a run with id '\(run.id)' already exists; a run id is used once")
        }
    }

    public func close(_ closing: RunClosing, memory: MemoryWrite?) async throws {
        try await pool.write { db in
            // The memory database is this file: the outcome joins the closing transaction.
            try memory?.body(db)
            if let used = closing.used {
                try db.execute(
                    sql: "UPDATE runs SET used = ? WHERE id = ? AND namespace = ?", arguments: [RunJournal.json(used), closing.id, closing.namespace])
            }
            try db.execute(
                sql: "UPDATE runs SET status = ?, error = ?, outcome = ?, reward = ?, ended_at = ? WHERE id = ? AND namespace = ?",
                arguments: [closing.status.rawValue, closing.error, closing.outcome, closing.reward, closing.endedAt, closing.id, closing.namespace])
            try RunJournal.write(db, runID: closing.id, steps: closing.steps, toolCalls: closing.toolCalls)
        }
    }

    public func fail(id: String, namespace: String, message: String, endedAt: Int64?) async throws {
        try await pool.write { db in
            if let endedAt {
                try db.execute(
                    sql: "UPDATE runs SET status = 'error', error = ?, ended_at = ? WHERE id = ? AND namespace = ?", arguments: [message, endedAt, id, namespace])
            } else {
                try db.execute(sql: "UPDATE runs SET error = ? WHERE id = ? AND namespace = ?", arguments: [message, id, namespace])
            }
        }
    }

    public func setNewMemory(id: String, namespace: String, memoryID: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE runs SET new_memory = ? WHERE id = ? AND namespace = ?", arguments: [memoryID, id, namespace])
        }
    }

    public func setOutcome(id: String, namespace: String, outcome: String, reward: Double) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE runs SET outcome = ?, reward = ? WHERE id = ? AND namespace = ?", arguments: [outcome, reward, id, namespace])
        }
    }

    public func run(id: String, namespace: String) async throws -> RunRecord? {
        try await pool.read { db in
            guard var record = try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ? AND namespace = ?", arguments: [id, namespace]).map(Self.record)
            else { return nil }
            record.steps = try RunJournal.steps(db, runID: id)
            record.toolCalls = try RunJournal.toolCalls(db, runID: id)
            return record
        }
    }

    public func runs(namespace: String, query: RunQuery) async throws -> [RunRecord] {
        try await pool.read { db in try RunJournal.list(db, namespace: namespace, query: query).map(Self.record) }
    }

    public func closeInterrupted(node: String, message: String, endedAt: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE runs SET status = 'error', error = ?, ended_at = ? WHERE status = 'running' AND node = ?",
                arguments: [message, endedAt, node])
            return db.changesCount
        }
    }

    static func record(_ row: Row) -> RunRecord {
        RunRecord(
            id: row["id"], namespace: row["namespace"], session: row["session"],
            kind: RunRequest.Kind(rawValue: row["kind"]) ?? .run, intent: row["intent"],
            retrievedMemoryIDs: RunJournal.ids(row["retrieved"]), usedMemoryIDs: RunJournal.ids(row["used"]),
            status: RunRecord.Status(rawValue: row["status"]) ?? .error, outcome: row["outcome"], reward: row["reward"],
            error: row["error"], degradedReason: row["degraded"], newMemoryID: row["new_memory"],
            startedAt: row["started_at"], endedAt: row["ended_at"], tier: row["tier"], user: row["user_id"])
    }
}
