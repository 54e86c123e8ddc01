import Foundation
import NIOHTTP1
import OrionCore
import Testing

@Suite("Health history")
struct HealthHistoryTests {
    @Test("snapshots hold plugins, queues, store sizes and breakers; old ones are dropped; /api/health/history serves them to admins")
    func snapshotsAreKeptAndServed() async throws {
        let gateway = try await GatewayHarness.start { config in config.health.retentionHours = 1 }
        defer { Task { await gateway.stop() } }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await gateway.app.health.snapshot(now: now - 2 * 3_600_000)  // past the retention: dropped by the next one
        let taken = try await gateway.app.health.snapshot(now: now - 60_000)
        try await gateway.app.health.snapshot(now: now)
        let plugins = taken["plugins"] as? [[String: Any]] ?? []
        #expect(plugins.contains { $0["id"] as? String == "fts" && $0["state"] as? String == "serving" })
        #expect(((taken["store"] as? [String: Any])?["documentsBytes"] as? Int64 ?? 0) > 0)
        #expect((taken["queues"] as? [String: Any])?["connectors"] != nil)
        #expect((taken["breakers"] as? [String: Any])?["engines"] != nil)

        let admin = try await GatewayHarness.token(roles: ["admin"])
        let history = try await gateway.send(.GET, "/api/health/history", token: admin)
        #expect(history.status == 200)
        let snapshots = history.json["snapshots"] as? [[String: Any]] ?? []
        #expect(snapshots.compactMap { $0["at"] as? Int64 } == [now - 60_000, now])
        let recent = try await gateway.send(.GET, "/api/health/history?hours=0.01", token: admin)
        #expect((recent.json["snapshots"] as? [[String: Any]])?.count == 1)
        #expect(try await gateway.send(.GET, "/api/health/history?hours=5", token: admin).status == 400)
        #expect(try await gateway.send(.GET, "/api/health/history", token: try await GatewayHarness.token()).status == 403)
    }

    @Test("the sampler takes a snapshot when it starts and every interval after")
    func theServiceSamples() async throws {
        let gateway = try await GatewayHarness.start { config in config.health.snapshotIntervalSeconds = 1 }
        defer { Task { await gateway.stop() } }
        let health = gateway.app.health
        let service = Task { try await health.run() }
        defer { service.cancel() }
        var count = 0
        for _ in 0..<300 {  // at most 3 s
            count = try health.history(hours: 1).count
            if count >= 2 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(count >= 2)
    }
}
