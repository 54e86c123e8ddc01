import Foundation
import GRDB
import Logging

/// What a run asks for.
public struct RunRequest: Sendable, Hashable {
    public enum Kind: String, Sendable { case run, chat }
    /// The tenant namespace, e.g. `tenant_acme`.
    public var namespace: String
    /// The tenant's tier: its retriever serves phase A.
    public var tier: String
    public var session: String
    public var kind: Kind
    /// What the user is trying to do: the memory query, and the intent of a memory stored from this run.
    public var intent: String
    public var vector: [Float]?
    /// Memories handed to the run.
    public var topK: Int
    /// Nil: a new random id. A caller-chosen id makes a retried run refuse instead of running twice.
    public var id: String?

    public init(
        namespace: String, tier: String, session: String, kind: Kind = .run, intent: String, vector: [Float]? = nil, topK: Int = 5,
        id: String? = nil
    ) {
        self.namespace = namespace
        self.tier = tier
        self.session = session
        self.kind = kind
        self.intent = intent
        self.vector = vector
        self.topK = topK
        self.id = id
    }
}

/// What the acting step sees.
public struct RunContext: Sendable {
    public var runID: String
    public var request: RunRequest
    /// The memories retrieved for the run, best first.
    public var memories: [MemoryHit]
}

/// How the acting step ended.
public struct RunConclusion: Sendable, Hashable {
    public var outcome: Outcome
    /// True when `outcome` is implied (a chat's success) and an explicit one may replace it later.
    public var isDefault: Bool
    /// The memories the run actually used; nil means all it was given.
    public var usedMemoryIDs: [String]?
    /// When set, a new memory (this run's intent and this experience) is stored.
    public var newExperience: String?

    public init(outcome: Outcome, isDefault: Bool = false, usedMemoryIDs: [String]? = nil, newExperience: String? = nil) {
        self.outcome = outcome
        self.isDefault = isDefault
        self.usedMemoryIDs = usedMemoryIDs
        self.newExperience = newExperience
    }

    /// A chat that ended without an explicit rating: success, replaceable by a thumbs-up/down.
    public static func chat(newExperience: String? = nil) -> RunConclusion {
        RunConclusion(outcome: .success, isDefault: true, newExperience: newExperience)
    }
}

/// A run as recorded.
public struct RunRecord: Sendable, Hashable {
    public enum Status: String, Sendable {
        case running
        /// The acting step returned an outcome, which was applied.
        case finished
        /// The acting step threw: an error of the system, not an outcome of the memories, so no
        /// utility changes.
        case error
    }
    public var id: String
    public var namespace: String
    public var session: String
    public var kind: RunRequest.Kind
    public var intent: String
    public var retrievedMemoryIDs: [String]
    public var usedMemoryIDs: [String]
    public var status: Status
    /// `success`, `partial`, `failure` or `reward`, once finished.
    public var outcome: String?
    public var reward: Double?
    public var error: String?
    /// Why memory retrieval did not serve the run, when it did not.
    public var degradedReason: String?
    public var newMemoryID: String?
    public var startedAt: Int64
    public var endedAt: Int64?
}

/// The one path every run and chat takes: retrieve memories → act → outcome → feedback.
///
/// The runner records each run (the memories it retrieved and used, its outcome), applies the
/// outcome to the memories used in the same transaction that closes the record, and stores a new
/// experience when the run concludes with one. A chat's implied success can later be replaced by
/// an explicit rating (``feedback(namespace:runID:outcome:)``).
public final class RunRunner: Sendable {
    public let memory: MemoryBank
    let logger: Logger

    public init(memory: MemoryBank, logger: Logger) {
        self.memory = memory
        self.logger = logger
    }

    var pool: DatabasePool { memory.store.pool }

    /// Runs `act` with the memories retrieved for `request`, then applies its outcome.
    /// When `act` throws, the run is recorded as an error and the error is rethrown.
    @discardableResult
    public func run(_ request: RunRequest, act: (RunContext) async throws -> RunConclusion) async throws -> RunRecord {
        let id = request.id ?? UUID().uuidString.lowercased()
        guard !id.isEmpty else { throw MemoryError(.invalidArgument, "a run id must not be empty") }
        var retrieval: MemoryRetrieval?
        let query = await memory.queryVector(tier: request.tier, intent: request.intent, given: request.vector, namespace: request.namespace)
        var degraded = query.degradedReason
        do {
            retrieval = try memory.retrieve(
                namespace: request.namespace, tier: request.tier, intent: request.intent, query: query, topK: request.topK)
            degraded = retrieval?.degradedReason
        } catch let error as MemoryError where error.code == .unavailable {
            // Memory is an aid: a run goes on without it, and its record says why.
            degraded = query.degradedReason(with: error.message)
            logger.warning("run without memories", metadata: ["orion.run": "\(id)", "orion.error": "\(error.message)"])
        }
        let hits = retrieval?.hits ?? []
        let retrieved = hits.map(\.memory.id)
        let started = MemoryBank.now()
        try insert(id: id, request: request, retrieved: retrieved, degraded: degraded, started: started)

        let conclusion: RunConclusion
        do {
            conclusion = try await act(RunContext(runID: id, request: request, memories: hits))
        } catch {
            try await pool.write { db in
                try db.execute(
                    sql: "UPDATE runs SET status = 'error', error = ?, ended_at = ? WHERE id = ?",
                    arguments: ["\(error)", MemoryBank.now(), id])
            }
            throw error
        }
        var seen = Set<String>()
        let used = (conclusion.usedMemoryIDs ?? retrieved).filter { seen.insert($0).inserted }
        if let stranger = used.first(where: { !retrieved.contains($0) }) {
            try await pool.write { db in
                try db.execute(
                    sql: "UPDATE runs SET status = 'error', error = ?, ended_at = ? WHERE id = ?",
                    arguments: ["the run credited memory '\(stranger)', which it was not given", MemoryBank.now(), id])
            }
            throw MemoryError(.invalidArgument, "run \(id) credited memory '\(stranger)', which it was not given; a run may only credit memories it retrieved")
        }
        let reward = memory.policy.reward(for: conclusion.outcome)
        do {
            try await pool.write { db in
                _ = try memory.applyFeedback(
                    db, namespace: request.namespace, runID: id, memoryIDs: used, outcome: conclusion.outcome, isDefault: conclusion.isDefault,
                    maxNext: 0, skipMissing: true, now: MemoryBank.now())
                try db.execute(
                    sql: "UPDATE runs SET status = 'finished', used = ?, outcome = ?, reward = ?, ended_at = ? WHERE id = ?",
                    arguments: [Self.json(used), Self.outcomeName(conclusion.outcome), reward, MemoryBank.now(), id])
            }
        } catch {
            // The outcome was refused (an explicit reward out of range, say): nothing was applied,
            // and the run is closed as an error rather than left running.
            try? await pool.write { db in
                try db.execute(sql: "UPDATE runs SET status = 'error', error = ?, ended_at = ? WHERE id = ?", arguments: ["\(error)", MemoryBank.now(), id])
            }
            throw error
        }
        if let experience = conclusion.newExperience {
            // The run has finished and its outcome is applied; a new memory that cannot be stored
            // is reported on the record, not as a failure of the run.
            do {
                let stored = try await memory.store(
                    [MemoryInput(session: request.session, intent: request.intent, experience: experience, embedding: query.vector)],
                    namespace: request.namespace, tier: request.tier)
                if let newID = stored.first?.id {
                    try await pool.write { db in try db.execute(sql: "UPDATE runs SET new_memory = ? WHERE id = ?", arguments: [newID, id]) }
                }
            } catch {
                logger.error("run finished, but its new experience was not stored", metadata: ["orion.run": "\(id)", "orion.error": "\(error)"])
                try? await pool.write { db in
                    try db.execute(sql: "UPDATE runs SET error = ? WHERE id = ?", arguments: ["the new experience was not stored: \(error)", id])
                }
            }
        }
        // The record was inserted above; only its own namespace reads it back.
        return try record(id: id, namespace: request.namespace)!
    }

    /// An explicit outcome for a finished run (a thumbs-up/down, a reward): replaces the run's
    /// default outcome on the memories it used; a second explicit outcome changes nothing.
    @discardableResult
    public func feedback(namespace: String, runID: String, outcome: Outcome) throws -> (RunRecord, [FeedbackResult]) {
        guard let record = try record(id: runID, namespace: namespace) else {
            throw MemoryError(.notFound, "no run '\(runID)' in this tenant")
        }
        guard record.status == .finished else {
            throw MemoryError(.conflict, "run '\(runID)' is \(record.status.rawValue); only a finished run takes feedback")
        }
        let results = try pool.write { db in
            let results = try memory.applyFeedback(
                db, namespace: namespace, runID: runID, memoryIDs: record.usedMemoryIDs, outcome: outcome, isDefault: false, maxNext: 0,
                skipMissing: true, now: MemoryBank.now())
            if results.contains(where: { $0.effect == .replaced }) || record.usedMemoryIDs.isEmpty {
                try db.execute(
                    sql: "UPDATE runs SET outcome = ?, reward = ? WHERE id = ?",
                    arguments: [Self.outcomeName(outcome), memory.policy.reward(for: outcome), runID])
            }
            return results
        }
        // Read back in this namespace just above.
        return (try self.record(id: runID, namespace: namespace)!, results)
    }

    /// One run of `namespace`.
    public func record(id: String, namespace: String) throws -> RunRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ? AND namespace = ?", arguments: [id, namespace]).map(Self.record)
        }
    }

    /// The latest runs of `namespace`, newest first.
    public func records(namespace: String, limit: Int = 50) throws -> [RunRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM runs WHERE namespace = ? ORDER BY started_at DESC, rowid DESC LIMIT ?", arguments: [namespace, limit]
            ).map(Self.record)
        }
    }

    private func insert(id: String, request: RunRequest, retrieved: [String], degraded: String?, started: Int64) throws {
        do {
            try pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO runs (id, namespace, session, kind, intent, retrieved, used, status, degraded, started_at)
                        VALUES (?, ?, ?, ?, ?, ?, '[]', 'running', ?, ?)
                        """,
                    arguments: [id, request.namespace, request.session, request.kind.rawValue, request.intent, Self.json(retrieved), degraded, started])
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            throw MemoryError(.conflict, "a run with id '\(id)' already exists; a run id is used once")
        }
    }

    static func outcomeName(_ outcome: Outcome) -> String {
        switch outcome {
        case .success: "success"
        case .partial: "partial"
        case .failure: "failure"
        case .reward: "reward"
        }
    }

    static func json(_ ids: [String]) -> String {
        // Encoding an array of strings cannot fail.
        String(decoding: try! JSONEncoder().encode(ids), as: UTF8.self)
    }

    static func ids(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func record(_ row: Row) -> RunRecord {
        RunRecord(
            id: row["id"], namespace: row["namespace"], session: row["session"],
            kind: RunRequest.Kind(rawValue: row["kind"]) ?? .run, intent: row["intent"],
            retrievedMemoryIDs: ids(row["retrieved"]), usedMemoryIDs: ids(row["used"]),
            status: RunRecord.Status(rawValue: row["status"]) ?? .error, outcome: row["outcome"], reward: row["reward"],
            error: row["error"], degradedReason: row["degraded"], newMemoryID: row["new_memory"],
            startedAt: row["started_at"], endedAt: row["ended_at"])
    }
}
