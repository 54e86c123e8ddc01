import Foundation
import GRDB
import Synchronization

/// A tenant: who owns a workspace, a memory namespace and a budget.
public struct Tenant: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var tier: String
    /// Overrides the tier's cost cap when set.
    public var costCapUSD: Double?
    public var createdAt: Int64
    public var updatedAt: Int64

    /// The memory (and document) namespace of this tenant.
    public var namespace: String { Namespace.forTenant(id) }
}

/// Why the tenant store refused something.
public struct TenantError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The tenant store of one node: one SQLite table in `<dataDirectory>/tenants.sqlite`.
public final class TenantStore: TenantDirectory {
    let pool: DatabasePool
    /// Called with a tenant id after every change (the gateway drops its cached resolution).
    private let observers = Mutex<[@Sendable (String?) -> Void]>([])

    public init(path: String) throws {
        pool = try SQLiteFile.pool(at: path)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("tenants-v1") { db in
            try db.execute(sql: """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    tier TEXT NOT NULL,
                    cost_cap_usd REAL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                )
                """)
        }
        try migrator.migrate(pool)
    }

    /// Tenant ids: letters, digits, `-`, `_` and `.`, 1 to 64 characters, not starting with `.`
    /// (an id names a workspace directory).
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && !id.hasPrefix(".")
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    public func tenant(id: String) async throws -> Tenant? {
        try await pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE id = ?", arguments: [id]).map(Self.tenant) }
    }

    public func all() async throws -> [Tenant] {
        try await pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM tenants ORDER BY id").map(Self.tenant) }
    }

    /// Creates or updates a tenant.
    @discardableResult
    public func upsert(id: String, name: String, tier: String, costCapUSD: Double? = nil) async throws -> Tenant {
        try Self.validate(id: id, costCapUSD: costCapUSD)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let tenant = try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO tenants (id, name, tier, cost_cap_usd, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET name = excluded.name, tier = excluded.tier,
                        cost_cap_usd = excluded.cost_cap_usd, updated_at = excluded.updated_at
                    """,
                arguments: [id, name, tier, costCapUSD, now, now])
            // Written just above.
            return try Row.fetchOne(db, sql: "SELECT * FROM tenants WHERE id = ?", arguments: [id]).map(Self.tenant)!
        }
        notify(id)
        return tenant
    }

    /// Creates a tenant unless one with this id exists; returns the stored one either way.
    public func createIfMissing(id: String, name: String, tier: String) async throws -> Tenant {
        if let existing = try await tenant(id: id) { return existing }
        try Self.validate(id: id, costCapUSD: nil)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO tenants (id, name, tier, cost_cap_usd, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?)",
                arguments: [id, name, tier, now, now])
        }
        // Inserted just above, or by a concurrent caller.
        return try await tenant(id: id)!
    }

    /// Throws what is wrong with a tenant's id or cost cap.
    static func validate(id: String, costCapUSD: Double?) throws {
        guard isValidID(id) else {
            throw TenantError(message: "tenant id '\(id)' is invalid: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
        }
        if let costCapUSD, !(costCapUSD >= 0 && costCapUSD.isFinite) {
            throw TenantError(message: "a cost cap must be a number ≥ 0, got \(costCapUSD)")
        }
    }

    public func onChange(_ observer: @escaping @Sendable (String?) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    private func notify(_ id: String) {
        for observer in observers.withLock({ $0 }) { observer(id) }
    }

    static func tenant(_ row: Row) -> Tenant {
        Tenant(
            id: row["id"], name: row["name"], tier: row["tier"], costCapUSD: row["cost_cap_usd"],
            createdAt: row["created_at"], updatedAt: row["updated_at"])
    }
}
