import Foundation
import GRDB
import PostgresNIO

/// Runs, steps and tool calls every node reads (migration 2). A run's closing — its status, steps
/// and tool calls — is one PostgreSQL transaction. The outcome on the memories it used lives in
/// this node's memory database: it is written inside that transaction, after the run's rows and
/// just before the commit. A failure of either write before then keeps neither. Only a failure of
/// the PostgreSQL commit itself, after the memories committed, leaves the run `running` with its
/// outcome applied; its node closes it as interrupted when it restarts.
extension PostgresState: RunStore {
    static let runColumns = """
        id, namespace, session, kind, intent, retrieved, used, status, outcome, reward, error, degraded, new_memory, started_at, ended_at,
        tier, user_id
        """

    public func insert(_ run: RunRecord, node: String) async throws {
        let inserted = try await client.query(
            """
            INSERT INTO runs (id, namespace, session, kind, intent, retrieved, used, status, degraded, started_at, tier, user_id, node)
            VALUES (\(run.id), \(run.namespace), \(run.session), \(run.kind.rawValue), \(run.intent), \(RunJournal.json(run.retrievedMemoryIDs)),
                '[]', 'running', \(run.degradedReason), \(run.startedAt), \(run.tier), \(run.user), \(node))
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in inserted.decode(Int.self) { return }
        throw MemoryError(.conflict, "a run with id '\(run.id)' already exists; a run id is used once")
    }

    public func close(_ closing: RunClosing, memory: MemoryWrite?) async throws {
        try await transaction { connection in
            if let used = closing.used {
                try await connection.query(
                    "UPDATE runs SET used = \(RunJournal.json(used)) WHERE id = \(closing.id) AND namespace = \(closing.namespace)", logger: logger)
            }
            try await connection.query(
                """
                UPDATE runs SET status = \(closing.status.rawValue), error = \(closing.error), outcome = \(closing.outcome), reward = \(closing.reward),
                    ended_at = \(closing.endedAt)
                WHERE id = \(closing.id) AND namespace = \(closing.namespace)
                """, logger: logger)
            for (position, step) in closing.steps.enumerated() {
                try await connection.query(
                    """
                    INSERT INTO run_steps (run_id, position, kind, name, status, started_at, duration_ms, detail)
                    VALUES (\(closing.id), \(Int32(position)), \(step.kind), \(step.name), \(step.status.rawValue), \(step.startedAt), \(step.durationMs),
                        \(try RunJournal.detail(step)))
                    """, logger: logger)
            }
            for (position, call) in closing.toolCalls.enumerated() {
                try await connection.query(
                    """
                    INSERT INTO run_tool_calls (run_id, position, name, arguments_sha256, started_at, duration_ms, success, error)
                    VALUES (\(closing.id), \(Int32(position)), \(call.name), \(call.argumentsSHA256), \(call.startedAt), \(call.durationMs), \(call.success),
                        \(call.error))
                    """, logger: logger)
            }
            if let memory { try await memory.pool.write(memory.body) }
        }
    }

    public func fail(id: String, namespace: String, message: String, endedAt: Int64?) async throws {
        if let endedAt {
            try await client.query(
                "UPDATE runs SET status = 'error', error = \(message), ended_at = \(endedAt) WHERE id = \(id) AND namespace = \(namespace)", logger: logger)
        } else {
            try await client.query("UPDATE runs SET error = \(message) WHERE id = \(id) AND namespace = \(namespace)", logger: logger)
        }
    }

    public func setNewMemory(id: String, namespace: String, memoryID: String) async throws {
        try await client.query("UPDATE runs SET new_memory = \(memoryID) WHERE id = \(id) AND namespace = \(namespace)", logger: logger)
    }

    public func setOutcome(id: String, namespace: String, outcome: String, reward: Double) async throws {
        try await client.query("UPDATE runs SET outcome = \(outcome), reward = \(reward) WHERE id = \(id) AND namespace = \(namespace)", logger: logger)
    }

    /// A `runs` row, read by column name.
    static func record(_ row: PostgresRow) throws -> RunRecord {
        let cells = row.makeRandomAccess()
        func text(_ name: String) throws -> String { try cells[name].decode(String.self) }
        func optionalText(_ name: String) throws -> String? { try cells[name].decode(String?.self) }
        return RunRecord(
            id: try text("id"), namespace: try text("namespace"), session: try text("session"), kind: RunRequest.Kind(rawValue: try text("kind")) ?? .run,
            intent: try text("intent"), retrievedMemoryIDs: RunJournal.ids(try text("retrieved")), usedMemoryIDs: RunJournal.ids(try text("used")),
            status: RunRecord.Status(rawValue: try text("status")) ?? .error, outcome: try optionalText("outcome"),
            reward: try cells["reward"].decode(Double?.self), error: try optionalText("error"), degradedReason: try optionalText("degraded"),
            newMemoryID: try optionalText("new_memory"), startedAt: try cells["started_at"].decode(Int64.self),
            endedAt: try cells["ended_at"].decode(Int64?.self), tier: try text("tier"), user: try text("user_id"))
    }

    /// Runs of one namespace: `bindings` holds the namespace as $1, then what `condition` uses.
    private func runRecords(_ condition: String, _ bindings: PostgresBindings) async throws -> [RunRecord] {
        let sql = "SELECT \(Self.runColumns) FROM runs WHERE namespace = $1\(condition)"
        var records: [RunRecord] = []
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
            records.append(try Self.record(row))
        }
        return records
    }

    public func run(id: String, namespace: String) async throws -> RunRecord? {
        var bindings = PostgresBindings()
        bindings.append(namespace)
        bindings.append(id)
        guard var record = try await runRecords(" AND id = $2", bindings).first else { return nil }
        let steps = try await client.query(
            "SELECT kind, name, status, started_at, duration_ms, detail FROM run_steps WHERE run_id = \(id) ORDER BY position", logger: logger)
        for try await (kind, name, status, started, duration, detail) in steps.decode((String, String, String, Int64, Double, String).self) {
            record.steps.append(RunStep(
                kind: kind, name: name, status: RunStep.Status(rawValue: status) ?? .error, startedAt: started, durationMs: duration,
                detail: RunJournal.detail(detail)))
        }
        let calls = try await client.query(
            "SELECT name, arguments_sha256, started_at, duration_ms, success, error FROM run_tool_calls WHERE run_id = \(id) ORDER BY position",
            logger: logger)
        for try await (name, digest, started, duration, success, error) in calls.decode((String, String, Int64, Double, Bool, String?).self) {
            record.toolCalls.append(ToolCallRecord(name: name, argumentsSHA256: digest, startedAt: started, durationMs: duration, success: success, error: error))
        }
        return record
    }

    public func runs(namespace: String, query: RunQuery) async throws -> [RunRecord] {
        var bindings = PostgresBindings()
        bindings.append(namespace)
        var condition = ""
        if let status = query.status {
            bindings.append(status.rawValue)
            condition += " AND status = $\(bindings.count)"
        }
        if let since = query.since {
            bindings.append(since)
            condition += " AND started_at >= $\(bindings.count)"
        }
        if let until = query.until {
            bindings.append(until)
            condition += " AND started_at < $\(bindings.count)"
        }
        bindings.append(Int64(query.limit))
        condition += " ORDER BY started_at DESC, id DESC LIMIT $\(bindings.count)"
        return try await runRecords(condition, bindings)
    }

    /// Notifies every node when another one runs the run: the one running it cancels it.
    public func requestCancel(id: String, namespace: String, reason: String, from node: String) async throws -> Bool {
        let payload = String(decoding: try JSONEncoder().encode(CancelRequest(runID: id, namespace: namespace, reason: reason)), as: UTF8.self)
        let rows = try await client.query(
            """
            SELECT pg_notify(\(PostgresState.runCancelChannel), \(payload)) FROM runs
            WHERE id = \(id) AND namespace = \(namespace) AND status = 'running' AND node <> \(node)
            """, logger: logger)
        var notified = false
        for try await _ in rows { notified = true }
        return notified
    }

    public func closeInterrupted(node: String, message: String, endedAt: Int64) async throws -> Int {
        let rows = try await client.query(
            "UPDATE runs SET status = 'error', error = \(message), ended_at = \(endedAt) WHERE status = 'running' AND node = \(node) RETURNING 1",
            logger: logger)
        var count = 0
        for try await _ in rows.decode(Int.self) { count += 1 }
        return count
    }
}
