import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL schema, as numbered migrations. Each runs once, in its own transaction, under an
/// advisory lock: nodes that start together migrate one after the other, and a migration that
/// fails leaves nothing behind. Applied versions are listed in `orion_schema`.
enum PostgresSchema {
    /// An arbitrary constant: the advisory lock every node takes to migrate.
    static let lockKey: Int64 = 0x6F72_696F_6E00_0001

    static let migrations: [(version: Int, name: String, sql: [String])] = [
        (
            1, "shared-state",
            [
                """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    tier TEXT NOT NULL,
                    cost_cap_usd DOUBLE PRECISION,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX tenants_created ON tenants (created_at)",
                "CREATE INDEX tenants_tier ON tenants (tier)",
                """
                CREATE TABLE usage (
                    id BIGSERIAL PRIMARY KEY,
                    request_id TEXT NOT NULL, session_id TEXT NOT NULL, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
                    engine TEXT NOT NULL, model TEXT NOT NULL,
                    input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
                    cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL,
                    cost_nano BIGINT, unpriced_reason TEXT,
                    latency_ms DOUBLE PRECISION NOT NULL, tools TEXT NOT NULL, task_type TEXT NOT NULL,
                    success BOOLEAN NOT NULL, estimated BOOLEAN NOT NULL, ts BIGINT NOT NULL
                )
                """,
                "CREATE INDEX usage_tenant_ts ON usage (tenant, ts)",
                "CREATE INDEX usage_tenant_session ON usage (tenant, session_id)",
                "CREATE INDEX usage_ts ON usage (ts)",
                """
                CREATE TABLE idempotency (
                    tenant TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    status INTEGER,
                    content_type TEXT,
                    body BYTEA,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (tenant, key)
                )
                """,
                "CREATE INDEX idempotency_created ON idempotency (created_at)",
                // A tenant's spend per account: `m:<month start>` for its calendar month (UTC),
                // `s:<session>` for a session. Seeded once from the usage records.
                """
                CREATE TABLE budget_accounts (
                    tenant TEXT NOT NULL,
                    account TEXT NOT NULL,
                    spent_nano BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (tenant, account)
                )
                """,
                "CREATE INDEX budget_accounts_updated ON budget_accounts (updated_at)",
                // What calls in flight may still cost; a hold its node never settles expires.
                """
                CREATE TABLE budget_holds (
                    id UUID PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    month_account TEXT NOT NULL,
                    session_account TEXT,
                    amount_nano BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX budget_holds_month ON budget_holds (tenant, month_account, expires_at)",
                "CREATE INDEX budget_holds_session ON budget_holds (tenant, session_account, expires_at)",
                "CREATE INDEX budget_holds_expires ON budget_holds (expires_at)",
            ]
        ),
        (
            2, "runs",
            [
                // A run belongs to a tenant namespace (`tenant_<id>`); every read names it.
                """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    session TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    intent TEXT NOT NULL,
                    retrieved TEXT NOT NULL,
                    used TEXT NOT NULL,
                    status TEXT NOT NULL,
                    outcome TEXT,
                    reward DOUBLE PRECISION,
                    error TEXT,
                    degraded TEXT,
                    new_memory TEXT,
                    started_at BIGINT NOT NULL,
                    ended_at BIGINT,
                    tier TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    node TEXT NOT NULL
                )
                """,
                "CREATE INDEX runs_namespace_started ON runs (namespace, started_at)",
                "CREATE INDEX runs_namespace_status ON runs (namespace, status, started_at)",
                "CREATE INDEX runs_node_status ON runs (node, status)",
                """
                CREATE TABLE run_steps (
                    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    started_at BIGINT NOT NULL,
                    duration_ms DOUBLE PRECISION NOT NULL,
                    detail TEXT NOT NULL,
                    PRIMARY KEY (run_id, position)
                )
                """,
                """
                CREATE TABLE run_tool_calls (
                    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    arguments_sha256 TEXT NOT NULL,
                    started_at BIGINT NOT NULL,
                    duration_ms DOUBLE PRECISION NOT NULL,
                    success BOOLEAN NOT NULL,
                    error TEXT,
                    PRIMARY KEY (run_id, position)
                )
                """,
            ]
        ),
        (
            3, "audit",
            [
                """
                CREATE TABLE audit_log (
                    id TEXT PRIMARY KEY, at BIGINT NOT NULL, tenant TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
                    path TEXT NOT NULL, status INTEGER NOT NULL, digest TEXT NOT NULL, node TEXT NOT NULL
                )
                """,
                "CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at)",
                "CREATE INDEX audit_log_at ON audit_log (at)",
            ]
        ),
    ]

    /// The newest version this build knows.
    static var latest: Int { migrations.map(\.version).max() ?? 0 }
}

extension PostgresState {
    /// Applies the migrations this database lacks, over `connection`; refuses a database migrated
    /// by a newer build.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.lockKey))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS orion_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", logger: logger)
        }
        var applied = Set<Int>()
        for try await version in try await connection.query("SELECT version FROM orion_schema", logger: logger).decode(Int.self) { applied.insert(version) }
        if let newest = applied.max(), newest > PostgresSchema.latest {
            throw StoreError("the database's schema is at version \(newest), newer than this build's \(PostgresSchema.latest): upgrade this node")
        }
        for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.lockKey))", logger: logger)
                // Another node may have applied it while this one waited for the lock.
                let rows = try await connection.query("SELECT 1 FROM orion_schema WHERE version = \(migration.version)", logger: logger)
                var done = false
                for try await _ in rows { done = true }
                guard !done else { return }
                for statement in migration.sql { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query(
                    "INSERT INTO orion_schema (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(Self.now()))", logger: logger)
            }
            logger.info("PostgreSQL schema migrated", metadata: ["orion.store.version": "\(migration.version)", "orion.store.migration": "\(migration.name)"])
        }
    }
}
