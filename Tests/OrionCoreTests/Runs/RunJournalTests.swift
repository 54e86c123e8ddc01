import Foundation
import GRDB
import OrionCore
import OrionPluginSDK
import OrionTestSupport
import Testing

/// Runs as journals: steps and tool calls written with the run, lifecycle events in order,
/// cooperative cancellation.
@Suite struct RunJournalTests {
    /// Collects `tenant`'s events until `enough` holds (or two seconds pass).
    static func collect(_ subscription: EventSubscription, until enough: ([RunEvent]) -> Bool) async -> [RunEvent] {
        var seen: [RunEvent] = []
        let deadline = ContinuousClock.now + .seconds(2)
        for await event in subscription.events {
            seen.append(event)
            if enough(seen) || ContinuousClock.now > deadline { break }
        }
        return seen
    }

    @Test func aRunKeepsItsStepsAndToolCallsAndPublishesItsEventsInOrder() async throws {
        let h = try await MemoryHarness.start()
        defer { Task { await h.stop() } }
        try await h.memory.store([MemoryInput(id: "m", session: "s", intent: "rotate the api keys", experience: "use the vault")], namespace: "tenant_a")
        let subscription = h.events.subscribers.subscribe(tenantID: "a", filter: EventFilter())
        let record = try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "rotate the api keys", user: "alice")) { context in
            context.trace.record(ToolCallRecord(name: "vault.read", arguments: Data(#"{"path":"keys"}"#.utf8), startedAt: 1, durationMs: 2.5, success: true))
            _ = try await context.trace.measure("generate", name: "gpt-4o-mini") { ((), ["outputTokens": "7"]) }
            return RunConclusion(outcome: .success)
        }
        #expect(record.status == .finished)
        #expect(record.user == "alice")
        #expect(record.tier == "free")
        #expect(record.steps.map(\.kind) == ["retrieve", "tool_call", "generate"])
        #expect(record.steps[0].detail["hits"] == "1")
        #expect(record.steps[2].detail["outputTokens"] == "7")
        #expect(record.toolCalls.count == 1)
        #expect(record.toolCalls[0].argumentsSHA256 == ToolCallRecord.digest(Data(#"{"path":"keys"}"#.utf8)))
        let events = await Self.collect(subscription) { $0.contains { $0.type == "run_completed" } }
        subscription.cancel()
        #expect(events.map(\.type) == ["run_started", "run_progress", "run_progress", "run_progress", "run_completed"])
        #expect(events.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(events.allSatisfy { $0.runID == record.id && $0.tenantID == "a" && $0.workspaceID == "a" })
        let completed = try #require(events.last).payloadObject
        #expect(completed["outcome"] as? String == "success")
        #expect(completed["tier"] as? String == "free")
        #expect(completed["toolCalls"] as? Int == 1)
    }

    @Test func aFailureMidWriteLeavesNeitherStepsNorToolCalls() async throws {
        let h = try await MemoryHarness.start()
        defer { Task { await h.stop() } }
        // A disk that fails on the second tool call row: the closing transaction must roll back whole.
        let file = try DatabaseQueue(path: h.dir + "/documents.sqlite")
        try await file.write { db in
            try db.execute(sql: "CREATE TRIGGER fail_mid_write BEFORE INSERT ON run_tool_calls WHEN NEW.name = 'second' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
        }
        var thrown: (any Error)?
        do {
            try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "anything", topK: 0, id: "r1")) { context in
                for name in ["first", "second", "third"] {
                    context.trace.record(ToolCallRecord(name: name, arguments: Data(), startedAt: 1, durationMs: 1, success: true))
                }
                return RunConclusion(outcome: .success)
            }
        } catch {
            thrown = error
        }
        #expect("\(try #require(thrown))".contains("disk I/O error"))
        let record = try #require(try await h.runs.record(id: "r1", namespace: "tenant_a"))
        #expect(record.status == .error)
        #expect(record.steps.isEmpty)
        #expect(record.toolCalls.isEmpty)
        let rows = try await file.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM run_steps WHERE run_id = 'r1'") ?? -1,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM run_tool_calls WHERE run_id = 'r1'") ?? -1)
        }
        #expect(rows == (0, 0))
        // Without the fault, the same journal is written whole.
        try await file.write { db in try db.execute(sql: "DROP TRIGGER fail_mid_write") }
        let again = try await h.runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "anything", topK: 0, id: "r2")) { context in
            for name in ["first", "second", "third"] {
                context.trace.record(ToolCallRecord(name: name, arguments: Data(), startedAt: 1, durationMs: 1, success: true))
            }
            return RunConclusion(outcome: .success)
        }
        #expect(again.toolCalls.map(\.name) == ["first", "second", "third"])
        #expect(again.steps.count == 3)
    }

    @Test func aCancelledRunEndsCancelledAndSaysSo() async throws {
        let h = try await MemoryHarness.start()
        defer { Task { await h.stop() } }
        let subscription = h.events.subscribers.subscribe(tenantID: "a", filter: EventFilter(runID: "long", types: ["run_cancelled"]))
        let started = AsyncStream.makeStream(of: Void.self)
        let runs = h.runs
        let run = Task {
            try await runs.run(RunRequest(namespace: "tenant_a", tier: "free", session: "s", intent: "a long task", topK: 0, id: "long")) { context in
                started.continuation.yield()
                // A cooperative step: it looks at the flag between units of work (bounded).
                for _ in 0..<400 where !context.trace.isCancelled { try await Task.sleep(for: .milliseconds(5)) }
                return RunConclusion(outcome: .success)
            }
        }
        for await _ in started.stream { break }
        #expect(try await h.runs.cancel(runID: "long", namespace: "tenant_b") == .notFound)
        #expect(try await h.runs.cancel(runID: "long", namespace: "tenant_a", reason: "stop it") == .requested)
        await #expect(throws: RunCancelled.self) { try await run.value }
        let record = try #require(try await h.runs.record(id: "long", namespace: "tenant_a"))
        #expect(record.status == .cancelled)
        #expect(record.error == "stop it")
        #expect(try await h.runs.cancel(runID: "long", namespace: "tenant_a") == .alreadyEnded(.cancelled))
        #expect(try await h.runs.cancel(runID: "nope", namespace: "tenant_a") == .notFound)
        let events = await Self.collect(subscription) { !$0.isEmpty }
        #expect(events.first?.payloadObject["reason"] as? String == "stop it")
        #expect(try await h.runs.records(namespace: "tenant_a", query: RunQuery(status: .cancelled)).map(\.id) == ["long"])
        #expect(try await h.runs.records(namespace: "tenant_a", query: RunQuery(status: .finished)).isEmpty)
    }

    @Test func aRestartClosesTheRunsThisNodeLeftRunning() async throws {
        let h = try await MemoryHarness.start()
        defer { Task { await h.stop() } }
        // A process that died mid-run left this row behind.
        let file = try DatabaseQueue(path: h.dir + "/documents.sqlite")
        try await file.write { db in
            try db.execute(sql: """
                INSERT INTO runs (id, namespace, session, kind, intent, retrieved, used, status, started_at, tier, user_id, node)
                VALUES ('orphan', 'tenant_a', 's', 'chat', 'x', '[]', '[]', 'running', 1, 'free', 'alice', ''),
                       ('elsewhere', 'tenant_a', 's', 'chat', 'x', '[]', '[]', 'running', 1, 'free', 'alice', 'node-b')
                """)
        }
        #expect(try await h.runs.cancel(runID: "orphan", namespace: "tenant_a") == .notRunningHere)
        #expect(try await h.runs.closeInterrupted() == 1)
        let record = try #require(try await h.runs.record(id: "orphan", namespace: "tenant_a"))
        #expect(record.status == .error)
        #expect(record.error?.hasPrefix("interrupted") == true)
        #expect(try await h.runs.closeInterrupted() == 0)
        // Another node's run is that node's to close.
        #expect(try await h.runs.record(id: "elsewhere", namespace: "tenant_a")?.status == .running)
    }

    @Test func subscribersGetHeartbeatsAndAreClosedWithAReason() async throws {
        let subscribers = EventSubscribers(capacity: 4, heartbeat: .milliseconds(20))
        let subscription = subscribers.subscribe(tenantID: "a", filter: EventFilter())
        var iterator = subscription.events.makeAsyncIterator()
        #expect(await iterator.next()?.isHeartbeat == true)
        subscribers.closeAll(code: "SERVER_SHUTTING_DOWN", reason: "stopping")
        while let event = await iterator.next() { #expect(event.isHeartbeat) }
        #expect(subscription.endCode == "SERVER_SHUTTING_DOWN")
        #expect(subscription.endReason == "stopping")
        #expect(subscribers.counts["a"] == nil)
    }
}
