import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO

/// Moves one node's embedded SQLite state into PostgreSQL (`orion store migrate`): every row of
/// every shared table (tenants, usage records, idempotency keys, the audit trail, runs with their
/// steps and tool calls), ids and tenant ids kept, in one transaction, into a database that holds
/// none yet; then checks the copy by row counts, per table and per tenant (docs/operations.md).
public enum StoreMigration {
    /// One table: its rows in SQLite and in PostgreSQL after the copy.
    public struct TableReport: Sendable, Hashable {
        public var table: String
        /// The SQLite file it was read from (nil: the file does not exist, nothing to move).
        public var source: String?
        public var sourceRows: Int
        public var targetRows: Int
    }

    enum ColumnType { case text, integer, real, boolean, blob }

    /// A table both stores share, column by column.
    struct Table {
        var name: String
        var file: String
        var columns: [(name: String, type: ColumnType)]
        /// Set after the copy, so new rows continue after the copied ids.
        var serialColumn: String?
    }

    static func tables(_ config: RuntimeConfig) -> [Table] {
        let data = config.dataDirectory as NSString
        return [
            Table(
                name: "tenants", file: data.appendingPathComponent("tenants.sqlite"),
                columns: [("id", .text), ("name", .text), ("tier", .text), ("cost_cap_usd", .real), ("created_at", .integer), ("updated_at", .integer)]),
            Table(
                name: "usage", file: config.resolvedUsageDBPath,
                columns: [
                    ("id", .integer), ("request_id", .text), ("session_id", .text), ("tenant", .text), ("user_id", .text), ("engine", .text),
                    ("model", .text), ("input_tokens", .integer), ("output_tokens", .integer), ("cache_read_tokens", .integer),
                    ("cache_write_tokens", .integer), ("cost_nano", .integer), ("unpriced_reason", .text), ("latency_ms", .real), ("tools", .text),
                    ("task_type", .text), ("success", .boolean), ("estimated", .boolean), ("ts", .integer),
                ],
                serialColumn: "id"),
            Table(
                name: "idempotency", file: data.appendingPathComponent("gateway.sqlite"),
                columns: [
                    ("tenant", .text), ("key", .text), ("fingerprint", .text), ("status", .integer), ("content_type", .text), ("body", .blob),
                    ("created_at", .integer),
                ]),
            Table(
                name: "audit_log", file: data.appendingPathComponent("audit.sqlite"),
                columns: [
                    ("id", .text), ("at", .integer), ("tenant", .text), ("actor", .text), ("action", .text), ("path", .text), ("status", .integer),
                    ("digest", .text), ("node", .text),
                ]),
            // Runs live beside the memories in the document store's file; steps after their runs.
            Table(
                name: "runs", file: config.resolvedDocumentStorePath,
                columns: [
                    ("id", .text), ("namespace", .text), ("session", .text), ("kind", .text), ("intent", .text), ("retrieved", .text), ("used", .text),
                    ("status", .text), ("outcome", .text), ("reward", .real), ("error", .text), ("degraded", .text), ("new_memory", .text),
                    ("started_at", .integer), ("ended_at", .integer), ("tier", .text), ("user_id", .text), ("node", .text),
                ]),
            Table(
                name: "run_steps", file: config.resolvedDocumentStorePath,
                columns: [
                    ("run_id", .text), ("position", .integer), ("kind", .text), ("name", .text), ("status", .text), ("started_at", .integer),
                    ("duration_ms", .real), ("detail", .text),
                ]),
            Table(
                name: "run_tool_calls", file: config.resolvedDocumentStorePath,
                columns: [
                    ("run_id", .text), ("position", .integer), ("name", .text), ("arguments_sha256", .text), ("started_at", .integer),
                    ("duration_ms", .real), ("success", .boolean), ("error", .text),
                ]),
        ]
    }

    /// Copies, then validates. `dryRun`: reads and counts only. Throws when the target already
    /// holds rows of these tables, or when the counts differ after the copy.
    public static func run(config: RuntimeConfig, to target: PostgresState, dryRun: Bool = false) async throws -> [TableReport] {
        let tables = tables(config)
        var sources: [String: DatabaseQueue] = [:]
        var reports: [TableReport] = []
        for table in tables {
            guard FileManager.default.fileExists(atPath: table.file) else {
                reports.append(TableReport(table: table.name, source: nil, sourceRows: 0, targetRows: 0))
                continue
            }
            var configuration = GRDB.Configuration()
            configuration.readonly = true
            let queue = try sources[table.file] ?? DatabaseQueue(path: table.file, configuration: configuration)
            sources[table.file] = queue
            let exists = try await queue.read { db in try db.tableExists(table.name) }
            let count = exists ? try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table.name)") ?? 0 } : 0
            reports.append(TableReport(table: table.name, source: exists ? table.file : nil, sourceRows: count, targetRows: 0))
        }
        for index in reports.indices { reports[index].targetRows = try await target.count(reports[index].table) }
        if let occupied = reports.first(where: { $0.targetRows > 0 }) {
            throw StoreError(
                "the target already holds \(occupied.targetRows) rows in '\(occupied.table)': migrate into a database no node has used yet "
                    + "(a copy that fails leaves the target empty and can simply be run again; after a failed check, drop and recreate the database)")
        }
        guard !dryRun else { return reports }
        try await target.transaction { connection in
            for table in tables {
                guard let queue = sources[table.file], reports.first(where: { $0.table == table.name })?.source != nil else { continue }
                try await copy(table, from: queue, to: connection, logger: target.logger)
            }
        }
        for index in reports.indices { reports[index].targetRows = try await target.count(reports[index].table) }
        if let short = reports.first(where: { $0.targetRows != $0.sourceRows }) {
            throw StoreError(
                "'\(short.table)' has \(short.sourceRows) rows in SQLite but \(short.targetRows) in PostgreSQL after the copy (a node wrote to either "
                    + "while it ran?); the copied rows are committed: drop and recreate the database, stop every node, and migrate again")
        }
        try await validateUsage(config: config, sources: sources, target: target)
        return reports
    }

    /// Reads `table` in pages of 5,000 rows by rowid and inserts each page.
    static func copy(_ table: Table, from queue: DatabaseQueue, to connection: PostgresConnection, logger: Logger) async throws {
        let names = table.columns.map(\.name)
        let rowsPerStatement = max(1, 30_000 / names.count)
        var lastRowID: Int64 = Int64.min
        while true {
            let after = lastRowID
            let page = try queue.read { db in  // a one-shot command: reading on this thread is fine
                try Row.fetchAll(
                    db, sql: "SELECT rowid AS orion_rowid, \(names.joined(separator: ", ")) FROM \(table.name) WHERE rowid > ? ORDER BY rowid LIMIT 5000",
                    arguments: [after])
            }
            guard let last = page.last else { break }
            lastRowID = last["orion_rowid"]
            var start = 0
            while start < page.count {
                let end = min(page.count, start + rowsPerStatement)
                var bindings = PostgresBindings(capacity: (end - start) * names.count)
                var values: [String] = []
                for (offset, row) in page[start..<end].enumerated() {
                    let base = offset * names.count
                    values.append("(" + (1...names.count).map { "$\(base + $0)" }.joined(separator: ",") + ")")
                    for (name, type) in table.columns { bind(row, name, type, into: &bindings) }
                }
                let sql = "INSERT INTO \(table.name) (\(names.joined(separator: ", "))) VALUES \(values.joined(separator: ","))"
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
                start = end
            }
        }
        if let serial = table.serialColumn {
            try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT setval(pg_get_serial_sequence('\(table.name)', '\(serial)'), COALESCE((SELECT MAX(\(serial)) FROM \(table.name)), 0) + 1, false)"),
                logger: logger)
        }
    }

    static func bind(_ row: Row, _ name: String, _ type: ColumnType, into bindings: inout PostgresBindings) {
        switch type {
        case .text: bindings.append(row[name] as String?)
        case .integer: bindings.append(row[name] as Int64?)
        case .real: bindings.append(row[name] as Double?)
        case .boolean: bindings.append((row[name] as Int64?).map { $0 != 0 })
        case .blob: bindings.append((row[name] as Data?).map { ByteBuffer(bytes: $0) })
        }
    }

    /// Per tenant, the same number of usage records and the same cost on both sides.
    static func validateUsage(config: RuntimeConfig, sources: [String: DatabaseQueue], target: PostgresState) async throws {
        guard let queue = sources[config.resolvedUsageDBPath], try await queue.read({ try $0.tableExists("usage") }) else { return }
        let local = try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT tenant, COUNT(*) AS calls, COALESCE(SUM(cost_nano), 0) AS cost FROM usage GROUP BY tenant")
                .map { ($0["tenant"] as String, $0["calls"] as Int64, $0["cost"] as Int64) }
        }
        var shared: [String: (Int64, Int64)] = [:]
        let rows = try await target.client.query(
            "SELECT tenant, COUNT(*)::BIGINT, COALESCE(SUM(cost_nano), 0)::BIGINT FROM usage GROUP BY tenant", logger: target.logger)
        for try await (tenant, calls, cost) in rows.decode((String, Int64, Int64).self) { shared[tenant] = (calls, cost) }
        for (tenant, calls, cost) in local where shared[tenant].map({ $0 != (calls, cost) }) ?? true {
            throw StoreError(
                "tenant '\(tenant)': \(calls) usage records costing \(cost) nano-USD in SQLite, \(shared[tenant].map { "\($0.0) costing \($0.1)" } ?? "none") "
                    + "in PostgreSQL; the copied rows are committed: drop and recreate the database, stop every node, and migrate again")
        }
    }
}

extension PostgresState {
    /// Rows in one of the shared tables.
    func count(_ table: String) async throws -> Int {
        let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT COUNT(*)::BIGINT FROM \(table)"), logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }
}
