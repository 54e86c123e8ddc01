import Foundation
import GRDB
import Logging
import OrionCore
import OrionTestSupport
import Testing

/// `orion store migrate`: one node's SQLite state moved into PostgreSQL, every row kept.
@Suite struct StoreMigrationTests {
    var logger: Logger {
        var logger = Logger(label: "test.migrate")
        logger.logLevel = .critical
        return logger
    }

    @Test(.timeLimit(.minutes(2)))
    func everyRowMovesWithItsIdsAndTheTargetMustBeEmpty() async throws {
        let dir = TestPlugins.temporaryDirectory("orion-migrate")
        try "dataDirectory: data\n".write(toFile: dir + "/orion.yaml", atomically: true, encoding: .utf8)
        var config = RuntimeConfig()
        config.dataDirectory = dir + "/data"
        let local = try await SharedState.open(config: config, logger: logger)
        for (id, tier) in [("acme", "pro"), ("beta", "free"), ("gamma.co", "enterprise")] {
            try await local.tenants.upsert(id: id, name: "Tenant \(id)", tier: tier, costCapUSD: id == "acme" ? 12.5 : nil)
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let records = (0..<3_000).map { i in
            StoreContractTests.record(
                i, tenant: ["acme", "beta", "gamma.co"][i % 3], session: "s\(i % 7)",
                cost: i % 11 == 0 ? .unpriced(reason: "no price for 'm'") : .priced(nanoUSD: Int64(i)), at: now - Int64(i) * 1000)
        }
        try await local.usage?.insert([records])
        let keys = try SQLiteIdempotencyKeys(pool: SQLiteFile.pool(at: config.dataDirectory + "/gateway.sqlite"), ttl: 86_400)
        _ = try await keys.claim(tenant: "acme", key: "alice|k1", fingerprint: "f1")
        try await keys.complete(tenant: "acme", key: "alice|k1", status: 201, contentType: "application/json", body: Data("{\"ok\":true}".utf8))
        _ = try await keys.claim(tenant: "beta", key: "bob|k2", fingerprint: "f2")
        let localAudit = try SQLiteAuditStore(path: config.dataDirectory + "/audit.sqlite")
        try await localAudit.append([
            AuditEntry(id: "a1", at: now - 2_000, tenant: "acme", actor: "alice", action: "POST /api/memory", path: "/api/memory", status: 201, digest: "sha256:00", node: "orion-local"),
            AuditEntry(id: "a2", at: now - 1_000, tenant: "beta", actor: "bob", action: "DELETE /api/memory/{id}", path: "/api/memory/m", status: 204, digest: "sha256:01", node: "orion-local"),
        ])
        let localRuns = SQLiteRunStore(pool: try DocumentStore(path: config.resolvedDocumentStorePath).pool)
        try await localRuns.insert(StoreContractTests.run("r1", "tenant_acme", at: now - 5_000), node: "orion-local")
        try await localRuns.insert(StoreContractTests.run("r2", "tenant_beta", at: now - 4_000), node: "orion-local")
        try await localRuns.close(
            RunClosing(
                id: "r1", namespace: "tenant_acme", status: .finished, error: nil, outcome: "success", reward: 1, used: ["m1"], endedAt: now - 4_500,
                steps: [RunStep(kind: "generate", name: "openai", status: .ok, startedAt: now - 4_900, durationMs: 12.5, detail: ["tokens": "40"])],
                toolCalls: [ToolCallRecord(name: "search", argumentsSHA256: "ab", startedAt: now - 4_800, durationMs: 2, success: false, error: "no")]),
            memory: nil)

        let database = try await PostgresDatabase.create()
        let dryRun = try await OrionCommand.run(["store", "migrate", "--config", dir + "/orion.yaml", "--to", database.url, "--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun.stdout)\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("usage: 3000 rows"))
        let migrated = try await OrionCommand.run(["store", "migrate", "--config", dir + "/orion.yaml", "--to", database.url])
        #expect(migrated.status == 0, "\(migrated.stdout)\(migrated.stderr)")
        #expect(migrated.stdout.contains("tenants: 3 rows") && migrated.stdout.contains("→ 3000 rows in PostgreSQL"))
        #expect(migrated.stdout.contains("idempotency: 2 rows"))
        #expect(migrated.stdout.contains("audit_log: 2 rows"))
        #expect(migrated.stdout.contains("runs: 2 rows") && migrated.stdout.contains("run_steps: 1 rows") && migrated.stdout.contains("run_tool_calls: 1 rows"))

        let url = try #require(try? RuntimeConfig.PostgresURL.parse(database.url).get())
        let shared = try await PostgresState.connect(url: url, logger: logger)
        #expect(try await shared.all() == local.tenants.all(), "ids, names, tiers, caps and timestamps")
        for tenant in ["acme", "beta", "gamma.co"] {
            let before = try await local.usage!.summary(since: 0, tenant: tenant, user: nil, engine: nil)
            #expect(try await shared.summary(since: 0, tenant: tenant, user: nil, engine: nil) == before, "\(tenant)")
            for session in ["s0", "s3"] {
                #expect(try await shared.spend(tenant: tenant, session: session) == local.usage!.spend(tenant: tenant, session: session))
            }
        }
        #expect(try await shared.claim(tenant: "acme", key: "alice|k1", fingerprint: "f1") == .replay(status: 201, contentType: "application/json", body: Data("{\"ok\":true}".utf8)))
        #expect(try await shared.claim(tenant: "beta", key: "bob|k2", fingerprint: "other") == .mismatch)
        for (id, namespace) in [("r1", "tenant_acme"), ("r2", "tenant_beta")] {
            let moved = try await shared.run(id: id, namespace: namespace)
            let kept = try await localRuns.run(id: id, namespace: namespace)
            #expect(moved != nil && moved == kept, "\(id) with its steps and tool calls")
        }
        for tenant in ["acme", "beta"] {
            let moved = try await shared.entries(tenant: tenant, since: 0, limit: 10)
            let kept = try await localAudit.entries(tenant: tenant, since: 0, limit: 10)
            #expect(moved == kept && moved.count == 1)
        }
        // New records continue after the copied ids.
        try await shared.insert([[StoreContractTests.record(1, tenant: "acme")]])
        #expect(try await shared.spend(tenant: "acme", from: 0, to: now + 60_000).calls == 1_001)

        // Run again: refused, and nothing is copied twice.
        let again = try await OrionCommand.run(["store", "migrate", "--config", dir + "/orion.yaml", "--to", database.url])
        #expect(again.status == 1)
        #expect(again.stdout.contains("already holds 3 rows in 'tenants'"))
        #expect(try await shared.spend(tenant: "acme", from: 0, to: now + 60_000).calls == 1_001)
        let noTarget = try await OrionCommand.run(["store", "migrate", "--config", dir + "/orion.yaml"])
        #expect(noTarget.status != 0 && noTarget.stderr.contains("--to"))
        shared.close()
        await database.drop()
    }
}
