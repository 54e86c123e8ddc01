import Foundation
import GRDB
import Logging
import OrionCore
import OrionTestSupport
import ServiceLifecycle
import Testing

/// Usage records: none lost on a clean stop, summaries that match them, drops counted, a ring of
/// recent records.
@Suite struct UsageTrackerTests {
    let dir = TestPlugins.temporaryDirectory("orion-usage")
    var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    static func record(_ i: Int, tenant: String = "acme", user: String = "alice", engine: String = "openai", model: String = "gpt-4o-mini",
                       session: String = "s1", cost: Cost? = nil, timestamp: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> UsageRecord {
        UsageRecord(
            requestID: "r\(i)", sessionID: session, tenant: tenant, user: user, engine: engine, model: model,
            tokens: TokenCounts(input: Int64(i % 100), output: Int64(i % 7), cacheRead: Int64(i % 3)), cost: cost ?? .priced(nanoUSD: Int64(i)),
            latencyMilliseconds: Double(i % 50), success: i % 10 != 0, timestamp: timestamp)
    }

    /// A reader's flush while the writer's batch is still being committed waits for it: what the
    /// reader then reads holds every record queued before its flush.
    @Test func aFlushWaitsForTheBatchTheWriterIsCommitting() async throws {
        let tracker = try UsageTracker(path: dir + "/usage-flush.sqlite", logger: logger, batchSize: 500)
        let n = 20_000
        for i in 0..<n { tracker.record(Self.record(i)) }
        let writer = Task { try await tracker.flush() }  // takes the whole queue
        while tracker.pending > 0 { await Task.yield() }
        try await tracker.flush()  // finds the queue empty: must wait for the writer's commit
        #expect(try await tracker.summary(hours: 1).first?.calls == n)
        #expect(try await writer.value == n)
    }

    @Test func afterNRecordsAndACleanStopExactlyNAreStoredAndSummariesMatch() async throws {
        let tracker = try UsageTracker(path: dir + "/usage.sqlite", logger: logger, batchSize: 997)
        let group = ServiceGroup(configuration: .init(services: [.init(service: tracker)], logger: logger))
        let running = Task { try await group.run() }
        let n = 20_000
        // Eight concurrent callers, as request handlers would be.
        await withTaskGroup(of: Void.self) { callers in
            for caller in 0..<8 {
                callers.addTask { for i in stride(from: caller, to: n, by: 8) { tracker.record(Self.record(i)) } }
            }
        }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(tracker.pending == 0)
        #expect(tracker.droppedCount == 0)

        // A fresh tracker on the same file reads what was stored.
        let reopened = try UsageTracker(path: dir + "/usage.sqlite", logger: logger)
        let rows = try await reopened.summary(hours: 1)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row.calls == n)
        #expect(row.inputTokens == Int64((0..<n).reduce(0) { $0 + $1 % 100 }))
        #expect(row.outputTokens == Int64((0..<n).reduce(0) { $0 + $1 % 7 }))
        #expect(row.cacheReadTokens == Int64((0..<n).reduce(0) { $0 + $1 % 3 }))
        #expect(row.costNanoUSD == Int64(n * (n - 1) / 2))
        #expect(abs(row.successRate - 0.9) < 1e-9)
        #expect(try await reopened.sessionSpend(tenant: "acme", session: "s1").calls == n)
    }

    @Test func summariesFilterByTenantUserEngineAndWindowAndCountUnpricedApart() async throws {
        let tracker = try UsageTracker(path: dir + "/usage.sqlite", logger: logger)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        tracker.record(Self.record(1, cost: .priced(nanoUSD: 100)))
        tracker.record(Self.record(2, user: "bob", cost: .priced(nanoUSD: 200)))
        tracker.record(Self.record(3, engine: "anthropic", model: "claude-3-5-haiku", cost: .unpriced(reason: "no price")))
        tracker.record(Self.record(4, tenant: "other", cost: .priced(nanoUSD: 400)))
        tracker.record(Self.record(5, cost: .priced(nanoUSD: 500), timestamp: now - 3 * 3_600_000))  // three hours ago
        try await tracker.flush()

        let acme = try await tracker.summary(hours: 1, tenant: "acme")
        #expect(acme.map(\.engine) == ["anthropic", "openai"])
        #expect(acme.first { $0.engine == "openai" }?.costNanoUSD == 300)
        #expect(acme.first { $0.engine == "anthropic" }?.unpricedCalls == 1)
        #expect(acme.first { $0.engine == "anthropic" }?.costNanoUSD == 0, "an unpriced call adds nothing, and is counted apart")
        #expect(try await tracker.summary(hours: 1, tenant: "acme", user: "bob").map(\.calls) == [1])
        #expect(try await tracker.summary(hours: 1, engine: "openai").reduce(0) { $0 + $1.calls } == 3, "both tenants' openai calls")
        #expect(try await tracker.summary(hours: 4, tenant: "acme").reduce(0) { $0 + $1.calls } == 4, "the older call is inside 4 hours")

        #expect(try await tracker.sessionSpend(tenant: "acme", session: "s1") == Spend(calls: 4, costNanoUSD: 800, unpricedCalls: 1))
        #expect(try await tracker.tenantSpend(tenant: "other", from: now - 60_000, to: now + 60_000) == Spend(calls: 1, costNanoUSD: 400, unpricedCalls: 0))
        #expect(try await tracker.tenantSpend(tenant: "nobody", from: 0, to: now) == Spend(calls: 0, costNanoUSD: 0, unpricedCalls: 0))
    }

    @Test func aFullQueueDropsAndCountsNeverBlocks() async throws {
        let tracker = try UsageTracker(path: dir + "/usage.sqlite", logger: logger, queueCapacity: 10, ringCapacity: 4)
        for i in 0..<15 { tracker.record(Self.record(i)) }
        #expect(tracker.droppedCount == 5)
        #expect(tracker.pending == 10)
        #expect(tracker.recent.map(\.requestID) == ["r11", "r12", "r13", "r14"], "the ring keeps the latest, oldest first")
        #expect(try await tracker.flush() == 10)
        #expect(try await tracker.summary(hours: 1).first?.calls == 10)
    }

    @Test func aFailedWriteKeepsItsRecordsQueued() async throws {
        let tracker = try UsageTracker(path: dir + "/usage.sqlite", logger: logger, batchSize: 100)
        for i in 0..<250 { tracker.record(Self.record(i)) }
        // The table is away: the write fails, and nothing is lost.
        try await (tracker.store as! SQLiteUsageStore).pool.write { try $0.execute(sql: "ALTER TABLE usage RENAME TO usage_away") }
        await #expect(throws: (any Error).self) { try await tracker.flush() }
        #expect(tracker.pending == 250)
        try await (tracker.store as! SQLiteUsageStore).pool.write { try $0.execute(sql: "ALTER TABLE usage_away RENAME TO usage") }
        #expect(try await tracker.flush() == 250)
        #expect(try await tracker.summary(hours: 1).first?.calls == 250)
    }
}

