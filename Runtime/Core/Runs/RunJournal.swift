import Foundation
import GRDB

/// Which runs a list asks for; every list is within one tenant namespace.
public struct RunQuery: Sendable, Hashable {
    public var status: RunRecord.Status?
    /// Milliseconds since the Unix epoch: runs started at or after it.
    public var since: Int64?
    /// Runs started before it.
    public var until: Int64?
    public var limit: Int

    public init(status: RunRecord.Status? = nil, since: Int64? = nil, until: Int64? = nil, limit: Int = 50) {
        self.status = status
        self.since = since
        self.until = until
        self.limit = limit
    }
}

/// The SQLite side of the run journal: a run's steps and tool calls (tables `run_steps`,
/// `run_tool_calls`), and the JSON lists of memory ids a run keeps.
enum RunJournal {
    static func json(_ ids: [String]) -> String {
        // Encoding an array of strings cannot fail.
        String(decoding: try! JSONEncoder().encode(ids), as: UTF8.self)
    }

    static func ids(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    /// A step's detail as stored: JSON with sorted keys.
    static func detail(_ step: RunStep) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: step.detail, options: [.sortedKeys]), as: UTF8.self)
    }

    static func detail(_ text: String) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String] ?? [:]
    }

    /// Writes what `trace` holds; called inside the transaction that closes the run.
    static func write(_ db: Database, runID: String, steps: [RunStep], toolCalls: [ToolCallRecord]) throws {
        for (position, step) in steps.enumerated() {
            let detail = try detail(step)
            try db.execute(
                sql: "INSERT INTO run_steps (run_id, position, kind, name, status, started_at, duration_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [runID, position, step.kind, step.name, step.status.rawValue, step.startedAt, step.durationMs, detail])
        }
        for (position, call) in toolCalls.enumerated() {
            try db.execute(
                sql: """
                    INSERT INTO run_tool_calls (run_id, position, name, arguments_sha256, started_at, duration_ms, success, error)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [runID, position, call.name, call.argumentsSHA256, call.startedAt, call.durationMs, call.success, call.error])
        }
    }

    static func steps(_ db: Database, runID: String) throws -> [RunStep] {
        try Row.fetchAll(db, sql: "SELECT * FROM run_steps WHERE run_id = ? ORDER BY position", arguments: [runID]).map { row in
            let detail = detail(row["detail"] as String)
            return RunStep(
                kind: row["kind"], name: row["name"], status: RunStep.Status(rawValue: row["status"]) ?? .error, startedAt: row["started_at"],
                durationMs: row["duration_ms"], detail: detail)
        }
    }

    static func toolCalls(_ db: Database, runID: String) throws -> [ToolCallRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM run_tool_calls WHERE run_id = ? ORDER BY position", arguments: [runID]).map { row in
            ToolCallRecord(
                name: row["name"], argumentsSHA256: row["arguments_sha256"], startedAt: row["started_at"], durationMs: row["duration_ms"],
                success: row["success"], error: row["error"])
        }
    }

    /// Runs of `namespace` matching `query`, newest first.
    static func list(_ db: Database, namespace: String, query: RunQuery) throws -> [Row] {
        var sql = "SELECT * FROM runs WHERE namespace = ?"
        var arguments: StatementArguments = [namespace]
        if let status = query.status {
            sql += " AND status = ?"
            _ = arguments.append(contentsOf: [status.rawValue])
        }
        if let since = query.since {
            sql += " AND started_at >= ?"
            _ = arguments.append(contentsOf: [since])
        }
        if let until = query.until {
            sql += " AND started_at < ?"
            _ = arguments.append(contentsOf: [until])
        }
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        _ = arguments.append(contentsOf: [query.limit])
        return try Row.fetchAll(db, sql: sql, arguments: arguments)
    }
}
