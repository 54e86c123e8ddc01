import ArgumentParser
import Foundation
import Logging
import OrionCore
import ServiceLifecycle

/// `orion bench usage`: how fast usage records reach SQLite, and what recording costs the request
/// path while the writer is committing.
struct BenchUsage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Usage records persisted per second, and record()'s latency on the request path.")

    @Option(help: "Records per measurement.") var records = 500_000
    @Flag(help: "End with one JSON object.") var json = false
    @OptionGroup var options: ConfigOptions

    /// A plausible record; the same for the same `i`.
    static func sample(_ i: Int) -> UsageRecord {
        let even = i % 2 == 0
        let tokens = TokenCounts(input: Int64(100 + i % 900), output: Int64(20 + i % 300), cacheRead: Int64(i % 50))
        return UsageRecord(
            requestID: "req-\(i)", sessionID: "session-\(i % 1_000)", tenant: "tenant-\(i % 50)", user: "user-\(i % 200)",
            engine: even ? "openai" : "anthropic", model: even ? "gpt-4o-mini" : "claude-3-5-haiku", tokens: tokens,
            cost: .priced(nanoUSD: Int64(1_000 + i % 10_000)), latencyMilliseconds: Double(i % 400), tools: i % 3 == 0 ? ["search"] : [])
    }

    func validate() throws {
        guard records >= 1_000 else { throw ValidationError("--records must be at least 1000") }
    }

    func run() async throws {
        #if DEBUG
        print("note: this is a debug build; run `swift build -c release` and .build/release/orion for meaningful figures")
        #endif
        let (_, logger, scratch) = try options.benchDeployment()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let batch = (0..<records).map(Self.sample)
        // Throughput: every record queued, then written in batches until none is left.
        let tracker = try UsageTracker(path: scratch + "/usage.sqlite", logger: logger, queueCapacity: records)
        let started = ContinuousClock.now
        for record in batch { tracker.record(record) }
        try await tracker.flush()
        let seconds = BenchRetrieval.seconds(ContinuousClock.now - started)
        let perSecond = Double(records) / seconds

        // The request path: record() timed one by one while the writer service commits.
        let live = try UsageTracker(path: scratch + "/live.sqlite", logger: logger, queueCapacity: records)
        let group = ServiceGroup(configuration: .init(services: [.init(service: live)], logger: logger))
        let running = Task { try await group.run() }
        var samples: [Int64] = []
        samples.reserveCapacity(records)
        for record in batch {
            let t0 = ContinuousClock.now
            live.record(record)
            let elapsed = ContinuousClock.now - t0
            samples.append(elapsed.components.attoseconds / 1_000_000_000 + elapsed.components.seconds * 1_000_000_000)
        }
        await group.triggerGracefulShutdown()
        try await running.value
        samples.sort()
        func percentile(_ p: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) }
        let p50 = percentile(0.5), p99 = percentile(0.99), worst = Double(samples.last ?? 0)

        print("usage: \(records) records")
        print(String(format: "  persisted          %.0f records/s (queued, then written in batches, one transaction each)", perSecond))
        print(String(format: "  record() p50       %.0f ns, p99 %.0f ns, worst %.0f µs, while the writer commits", p50, p99, worst / 1_000))
        print(String(format: "  dropped            %d", live.droppedCount))
        if json {
            let object: [String: Double] = ["records_per_s": perSecond, "record_p50_ns": p50, "record_p99_ns": p99, "record_max_ns": worst]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
