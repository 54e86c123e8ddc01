import Foundation
import GRDB
import Logging
import Synchronization

/// What a run asks for.
public struct RunRequest: Sendable, Hashable {
    public enum Kind: String, Sendable { case run, chat, tool }
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
    /// Who started the run (a user id), for the record and its events.
    public var user: String
    /// The tenant's own monthly cap, when it has one (else its tier's applies) to what the run spends.
    public var tenantCapUSD: Double?

    public init(
        namespace: String, tier: String, session: String, kind: Kind = .run, intent: String, vector: [Float]? = nil, topK: Int = 5,
        id: String? = nil, user: String = "", tenantCapUSD: Double? = nil
    ) {
        self.user = user
        self.tenantCapUSD = tenantCapUSD
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
    /// Where the acting step records its steps and tool calls, and learns it was cancelled.
    public var trace: RunTrace
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

/// The one path every run and chat takes: retrieve memories → act → outcome → feedback.
///
/// The runner records each run (the memories it retrieved and used, its steps and tool calls, its
/// outcome), applies the outcome to the memories used in the same transaction that closes the
/// record, and stores a new experience when the run concludes with one. A chat's implied success
/// can later be replaced by an explicit rating (``feedback(namespace:runID:outcome:)``). Each run
/// publishes `run_started`, `run_progress` per step, then one of `run_completed`, `run_error`,
/// `run_cancelled`.
public final class RunRunner: Sendable {
    public let memory: MemoryBank
    public let events: EventHub?
    /// This process's `instanceId`, kept on each run it starts.
    public let node: String
    let logger: Logger
    private let active = Mutex<[String: (namespace: String, trace: RunTrace)]>([:])
    /// Where runs are recorded: this node's memory database, or the store every node shares.
    public let store: any RunStore

    /// `store` nil: runs are kept in the memory database, beside the memories they use.
    public init(memory: MemoryBank, events: EventHub? = nil, node: String = "", store: (any RunStore)? = nil, logger: Logger) {
        self.store = store ?? SQLiteRunStore(pool: memory.store.pool)
        self.node = node
        self.memory = memory
        self.events = events
        self.logger = logger
        // Another node asked to cancel a run: this one cancels it if it runs it.
        self.store.onCancelRequest { [weak self] request in
            self?.activeTrace(runID: request.runID, namespace: request.namespace)?.cancel(reason: request.reason)
        }
    }

    var pool: DatabasePool { memory.store.pool }

    /// Runs `act` with the memories retrieved for `request`, then applies its outcome.
    /// When `act` throws, the run is recorded as an error and the error is rethrown; when the run
    /// was cancelled meanwhile, it is recorded as cancelled and ``RunCancelled`` is thrown.
    @discardableResult
    public func run(_ request: RunRequest, act: (RunContext) async throws -> RunConclusion) async throws -> RunRecord {
        let id = request.id ?? UUID().uuidString.lowercased()
        guard !id.isEmpty else { throw MemoryError(.invalidArgument, "a run id must not be empty") }
        let tenantID = Namespace.tenantID(of: request.namespace) ?? request.namespace
        let events = self.events
        let trace = RunTrace(runID: id) { step in
            events?.publish(.runProgress, tenantID: tenantID, tier: request.tier, runID: id, payload: ["step": step.jsonObject])
        }
        let started = MemoryBank.now()
        let clock = ContinuousClock.now
        var retrieval: MemoryRetrieval?
        var degraded: String?
        var query: QueryVector?
        var retrieveStep: RunStep?
        if request.topK > 0 {
            let vector = await memory.queryVector(
                tier: request.tier, intent: request.intent, given: request.vector, namespace: request.namespace, tenantCapUSD: request.tenantCapUSD)
            query = vector
            degraded = vector.degradedReason
            do {
                retrieval = try memory.retrieve(
                    namespace: request.namespace, tier: request.tier, intent: request.intent, query: vector, topK: request.topK)
                degraded = retrieval?.degradedReason
            } catch let error as MemoryError where error.code == .unavailable {
                // Memory is an aid: a run goes on without it, and its record says why.
                degraded = vector.degradedReason(with: error.message)
                logger.warning("run without memories", metadata: ["orion.run": "\(id)", "orion.error": "\(error.message)"])
            }
            var detail = ["hits": "\(retrieval?.hits.count ?? 0)"]
            if let degraded { detail["degraded"] = degraded }
            retrieveStep = RunStep(kind: "retrieve", name: "memory", startedAt: started, durationMs: RunTrace.ms(since: clock), detail: detail)
        }
        let hits = retrieval?.hits ?? []
        let retrieved = hits.map(\.memory.id)
        // Registered before the record is written: a cancel that finds the record finds the run.
        let registered = active.withLock { active in
            guard active[id] == nil else { return false }
            active[id] = (request.namespace, trace)
            return true
        }
        guard registered else { throw MemoryError(.conflict, "a run with id '\(id)' already exists; a run id is used once") }
        defer { _ = active.withLock { $0.removeValue(forKey: id) } }
        try await store.insert(
            RunRecord(
                id: id, namespace: request.namespace, session: request.session, kind: request.kind, intent: request.intent,
                retrievedMemoryIDs: retrieved, usedMemoryIDs: [], status: .running, degradedReason: degraded, startedAt: started, tier: request.tier,
                user: request.user),
            node: node)
        events?.publish(
            .runStarted, tenantID: tenantID, tier: request.tier, runID: id,
            payload: ["kind": request.kind.rawValue, "session": request.session, "user": request.user])
        if let retrieveStep { trace.record(retrieveStep) }

        let conclusion: RunConclusion
        do {
            conclusion = try await act(RunContext(runID: id, request: request, memories: hits, trace: trace))
        } catch {
            if let reason = trace.cancelReason {
                try await close(id, request, trace, status: .cancelled, error: reason, started: clock)
                throw RunCancelled(runID: id, reason: reason)
            }
            try await close(id, request, trace, status: .error, error: "\(error)", started: clock)
            throw error
        }
        if let reason = trace.cancelReason {
            // The acting step stopped early (a stream ends at its next chunk): the run is cancelled.
            try await close(id, request, trace, status: .cancelled, error: reason, started: clock)
            throw RunCancelled(runID: id, reason: reason)
        }
        var seen = Set<String>()
        let used = (conclusion.usedMemoryIDs ?? retrieved).filter { seen.insert($0).inserted }
        if let stranger = used.first(where: { !retrieved.contains($0) }) {
            try await close(id, request, trace, status: .error, error: "the run credited memory '\(stranger)', which it was not given", started: clock)
            throw MemoryError(.invalidArgument, "run \(id) credited memory '\(stranger)', which it was not given; a run may only credit memories it retrieved")
        }
        let reward = memory.policy.reward(for: conclusion.outcome)
        let memory = self.memory
        let feedback = MemoryWrite(pool: pool) { db in
            _ = try memory.applyFeedback(
                db, namespace: request.namespace, runID: id, memoryIDs: used, outcome: conclusion.outcome, isDefault: conclusion.isDefault,
                maxNext: 0, skipMissing: true, now: MemoryBank.now())
        }
        try await close(
            id, request, trace, status: .finished, error: nil, started: clock, outcome: (Self.outcomeName(conclusion.outcome), reward), used: used,
            memory: feedback)
        if let experience = conclusion.newExperience {
            // The run has finished and its outcome is applied; a new memory that cannot be stored
            // is reported on the record, not as a failure of the run.
            do {
                let stored = try await memory.store(
                    [MemoryInput(session: request.session, intent: request.intent, experience: experience, embedding: query?.vector ?? request.vector)],
                    namespace: request.namespace, tier: request.tier)
                if let newID = stored.first?.id { try await store.setNewMemory(id: id, namespace: request.namespace, memoryID: newID) }
            } catch {
                logger.error("run finished, but its new experience was not stored", metadata: ["orion.run": "\(id)", "orion.error": "\(error)"])
                try? await store.fail(id: id, namespace: request.namespace, message: "the new experience was not stored: \(error)", endedAt: nil)
            }
        }
        // The record was inserted above; only its own namespace reads it back.
        return try await record(id: id, namespace: request.namespace)!
    }

    /// Closes run `id`: its status, its steps and tool calls, and `also` (the outcome applied to
    /// memories), in one transaction; then its last event. When that transaction fails, none of it
    /// is written: the run is closed as an error without steps, and the failure is thrown.
    private func close(
        _ id: String, _ request: RunRequest, _ trace: RunTrace, status: RunRecord.Status, error: String?, started: ContinuousClock.Instant,
        outcome: (name: String, reward: Double)? = nil, used: [String]? = nil, memory: MemoryWrite? = nil
    ) async throws {
        let (steps, toolCalls) = (trace.steps, trace.toolCalls)
        let tenantID = Namespace.tenantID(of: request.namespace) ?? request.namespace
        var payload: [String: Any] = [
            "kind": request.kind.rawValue, "status": status.rawValue, "durationMs": RunTrace.ms(since: started), "steps": steps.count,
            "toolCalls": toolCalls.count,
        ]
        do {
            try await store.close(
                RunClosing(
                    id: id, namespace: request.namespace, status: status, error: error, outcome: outcome?.name, reward: outcome?.reward, used: used, endedAt: MemoryBank.now(),
                    steps: steps, toolCalls: toolCalls),
                memory: memory)
        } catch let writeError {
            // The outcome may have been refused (an explicit reward out of range) or the disk may
            // have failed mid-write: nothing of the closing transaction was kept.
            let message = status == .finished ? "\(writeError)" : "the run's record could not be written: \(writeError)"
            try? await store.fail(id: id, namespace: request.namespace, message: message, endedAt: MemoryBank.now())
            payload["status"] = RunRecord.Status.error.rawValue
            payload["error"] = message
            events?.publish(.runError, tenantID: tenantID, tier: request.tier, runID: id, payload: payload)
            throw writeError
        }
        if let outcome {
            payload["outcome"] = outcome.name
            payload["reward"] = outcome.reward
        }
        if let error { payload[status == .cancelled ? "reason" : "error"] = error }
        let kind: RunEvent.Kind = switch status {
        case .finished, .running: .runCompleted
        case .error: .runError
        case .cancelled: .runCancelled
        }
        events?.publish(kind, tenantID: tenantID, tier: request.tier, runID: id, payload: payload)
    }

    /// What a cancel request found.
    public enum CancelResult: Sendable, Hashable {
        /// The run was asked to stop; it ends as `cancelled` at its next step or chunk.
        case requested
        case notFound
        /// It had already ended with this status.
        case alreadyEnded(RunRecord.Status)
        /// Recorded as running by this node, but no longer run by it (the process restarted
        /// since), or — with one node — by a process that stopped.
        case notRunningHere
        /// Another node runs it, and was asked to cancel it.
        case requestedOfItsNode
    }

    /// Asks run `runID` of `namespace` to stop (cooperatively: the engine stream it reads stops at
    /// its next chunk).
    public func cancel(runID: String, namespace: String, reason: String = "cancelled by request") async throws -> CancelResult {
        if let trace = activeTrace(runID: runID, namespace: namespace) {
            trace.cancel(reason: reason)
            return .requested
        }
        guard let record = try await record(id: runID, namespace: namespace) else { return .notFound }
        if record.status.hasEnded { return .alreadyEnded(record.status) }
        // A run is registered before its record is written: one that started while the record
        // was read is found now.
        if let trace = activeTrace(runID: runID, namespace: namespace) {
            trace.cancel(reason: reason)
            return .requested
        }
        // Another node runs it: that node is asked (it cancels it when it hears).
        if try await store.requestCancel(id: runID, namespace: namespace, reason: reason, from: node) { return .requestedOfItsNode }
        // It may have ended since its record was read.
        if let latest = try await self.record(id: runID, namespace: namespace), latest.status.hasEnded { return .alreadyEnded(latest.status) }
        return .notRunningHere
    }

    /// Closes runs this node (``node``) left `running` when it stopped while they ran (a crash, a
    /// kill): they end as errors that say so, with no steps. Call once at start-up, before serving.
    /// Other nodes' runs are theirs to close. Returns how many were closed.
    @discardableResult
    public func closeInterrupted() async throws -> Int {
        try await store.closeInterrupted(node: node, message: "interrupted: the process stopped while the run was in progress", endedAt: MemoryBank.now())
    }

    /// The trace of a run in progress in this process (tool calls join it).
    public func activeTrace(runID: String, namespace: String) -> RunTrace? {
        active.withLock { active in active[runID].flatMap { $0.namespace == namespace ? $0.trace : nil } }
    }

    /// An explicit outcome for a finished run (a thumbs-up/down, a reward): replaces the run's
    /// default outcome on the memories it used; a second explicit outcome changes nothing.
    ///
    /// The memories are updated first (this node's memory database), then the run's outcome.
    @discardableResult
    public func feedback(namespace: String, runID: String, outcome: Outcome) async throws -> (RunRecord, [FeedbackResult]) {
        guard let record = try await record(id: runID, namespace: namespace) else {
            throw MemoryError(.notFound, "no run '\(runID)' in this tenant")
        }
        guard record.status == .finished else {
            throw MemoryError(.conflict, "run '\(runID)' is \(record.status.rawValue); only a finished run takes feedback")
        }
        let memory = self.memory
        let results = try await pool.write { db in
            try memory.applyFeedback(
                db, namespace: namespace, runID: runID, memoryIDs: record.usedMemoryIDs, outcome: outcome, isDefault: false, maxNext: 0,
                skipMissing: true, now: MemoryBank.now())
        }
        if results.contains(where: { $0.effect == .replaced }) || record.usedMemoryIDs.isEmpty {
            try await store.setOutcome(id: runID, namespace: namespace, outcome: Self.outcomeName(outcome), reward: memory.policy.reward(for: outcome))
        }
        // Read back in this namespace just above.
        return (try await self.record(id: runID, namespace: namespace)!, results)
    }

    /// One run of `namespace`, with its steps and tool calls.
    public func record(id: String, namespace: String) async throws -> RunRecord? {
        try await store.run(id: id, namespace: namespace)
    }

    /// Runs of `namespace` matching `query`, newest first (without their steps).
    public func records(namespace: String, query: RunQuery) async throws -> [RunRecord] {
        try await store.runs(namespace: namespace, query: query)
    }

    /// The latest runs of `namespace`, newest first.
    public func records(namespace: String, limit: Int = 50) async throws -> [RunRecord] {
        try await records(namespace: namespace, query: RunQuery(limit: limit))
    }

    static func outcomeName(_ outcome: Outcome) -> String {
        switch outcome {
        case .success: "success"
        case .partial: "partial"
        case .failure: "failure"
        case .reward: "reward"
        }
    }
}
