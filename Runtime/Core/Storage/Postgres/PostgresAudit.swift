import Foundation
import PostgresNIO

/// One audit trail for every node (migration 3).
extension PostgresState: AuditStore {
    public func append(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await transaction { connection in
            // 9 parameters a row, 3,000 rows a statement: under PostgreSQL's 65,535.
            var start = 0
            while start < entries.count {
                let end = min(entries.count, start + 3_000)
                var bindings = PostgresBindings(capacity: (end - start) * 9)
                var values: [String] = []
                for (row, e) in entries[start..<end].enumerated() {
                    values.append("(" + (1...9).map { "$\(row * 9 + $0)" }.joined(separator: ",") + ")")
                    bindings.append(e.id)
                    bindings.append(e.at)
                    bindings.append(e.tenant)
                    bindings.append(e.actor)
                    bindings.append(e.action)
                    bindings.append(e.path)
                    bindings.append(Int32(e.status))
                    bindings.append(e.digest)
                    bindings.append(e.node)
                }
                let sql = "INSERT INTO audit_log (id, at, tenant, actor, action, path, status, digest, node) VALUES \(values.joined(separator: ","))"
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
                start = end
            }
        }
    }

    public func expire(before: Int64) async throws -> Int {
        var removed = 0
        for try await _ in try await client.query("DELETE FROM audit_log WHERE at < \(before) RETURNING 1", logger: logger).decode(Int.self) { removed += 1 }
        return removed
    }

    public func entries(tenant: String, since: Int64, limit: Int) async throws -> [AuditEntry] {
        var entries: [AuditEntry] = []
        let rows = try await client.query(
            """
            SELECT id, at, tenant, actor, action, path, status, digest, node FROM audit_log
            WHERE tenant = \(tenant) AND at >= \(since) ORDER BY at DESC, id DESC LIMIT \(Int64(limit))
            """, logger: logger)
        for try await (id, at, tenant, actor, action, path, status, digest, node) in rows.decode(
            (String, Int64, String, String, String, String, Int32, String, String).self)
        {
            entries.append(AuditEntry(id: id, at: at, tenant: tenant, actor: actor, action: action, path: path, status: Int(status), digest: digest, node: node))
        }
        return entries
    }
}
