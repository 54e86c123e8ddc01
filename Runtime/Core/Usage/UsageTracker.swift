import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// One engine call, as recorded.
public struct UsageRecord: Sendable, Hashable {
    public var requestID: String
    public var sessionID: String
    public var tenant: String
    public var user: String
    public var engine: String
    public var model: String
    public var tokens: TokenCounts
    public var cost: Cost
    public var latencyMilliseconds: Double
    public var tools: [String]
    public var taskType: String
    public var success: Bool
    /// True when the provider gave no token counts and they were estimated.
    public var estimated: Bool
    /// Unix epoch milliseconds.
    public var timestamp: Int64

    public init(
        requestID: String, sessionID: String, tenant: String, user: String, engine: String, model: String, tokens: TokenCounts,
        cost: Cost, latencyMilliseconds: Double, tools: [String] = [], taskType: String = "chat", success: Bool = true,
        estimated: Bool = false, timestamp: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) {
        self.requestID = requestID
        self.sessionID = sessionID
        self.tenant = tenant
        self.user = user
        self.engine = engine
        self.model = model
        self.tokens = tokens
        self.cost = cost
        self.latencyMilliseconds = latencyMilliseconds
        self.tools = tools
        self.taskType = taskType
        self.success = success
        self.estimated = estimated
        self.timestamp = timestamp
    }
}

/// Records engine calls without making a request wait for the disk.
///
/// ``record(_:)`` appends to a ring of recent records (for fast reads) and to a bounded queue, under
/// a lock, and returns. One writer drains the queue in batches, each batch one transaction of its
/// ``UsageStore`` (SQLite on one node, PostgreSQL across nodes). As a `Service` it writes until graceful shutdown, then writes
/// what is left. A record that finds the queue full is dropped, counted
/// (`orion_usage_dropped_total`, ``droppedCount``) and logged — never silently.
public final class UsageTracker: Service, Sendable {
    public let store: any UsageStore
    let logger: Logger
    let queueCapacity: Int
    let ringCapacity: Int
    let batchSize: Int
    private struct State {
        /// Queued records in chunks of `chunkSize`: appending never copies more than one chunk,
        /// so a growing queue does not stall a request.
        var chunks: [[UsageRecord]] = []
        var queued = 0
        var ring: [UsageRecord] = []
        var ringStart = 0
        var dropped = 0
        var lastDropLog: Int64 = 0
    }
    private let state = Mutex(State())

    /// A tracker over the SQLite file at `path` (one node).
    public convenience init(path: String, logger: Logger, queueCapacity: Int = 100_000, ringCapacity: Int = 1_000, batchSize: Int = 5_000) throws {
        try self.init(store: SQLiteUsageStore(path: path), logger: logger, queueCapacity: queueCapacity, ringCapacity: ringCapacity, batchSize: batchSize)
    }

    public init(store: any UsageStore, logger: Logger, queueCapacity: Int = 100_000, ringCapacity: Int = 1_000, batchSize: Int = 5_000) {
        self.store = store
        self.logger = logger
        self.queueCapacity = max(1, queueCapacity)
        self.ringCapacity = max(1, ringCapacity)
        self.batchSize = max(1, batchSize)
    }

    // MARK: The request path

    /// Queues `record` for writing; never waits for the disk.
    public func record(_ record: UsageRecord) {
        // (dropped: this record was dropped; log: the drop count to log, at most once a second)
        let (dropped, log): (Bool, Int?) = state.withLock { state in
            if state.ring.count < ringCapacity {
                state.ring.append(record)
            } else {
                state.ring[state.ringStart] = record
                state.ringStart = (state.ringStart + 1) % ringCapacity
            }
            guard state.queued < queueCapacity else {
                state.dropped += 1
                let now = Int64(Date().timeIntervalSince1970)
                guard now != state.lastDropLog else { return (true, nil) }
                state.lastDropLog = now
                return (true, state.dropped)
            }
            if state.chunks.isEmpty || state.chunks[state.chunks.count - 1].count >= Self.chunkSize {
                var chunk: [UsageRecord] = []
                chunk.reserveCapacity(Self.chunkSize)
                state.chunks.append(chunk)
            }
            state.chunks[state.chunks.count - 1].append(record)
            state.queued += 1
            return (false, nil)
        }
        guard dropped else { return }
        Counter(label: "orion_usage_dropped_total").increment()
        if let log {
            logger.error("usage queue full: records are being dropped", metadata: ["orion.usage.dropped": "\(log)", "orion.usage.queue": "\(queueCapacity)"])
        }
    }

    /// Records dropped because the queue was full, since start.
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// The most recent records, oldest first (at most the ring's capacity).
    public var recent: [UsageRecord] {
        state.withLock { state in Array(state.ring[state.ringStart...] + state.ring[..<state.ringStart]) }
    }

    /// Records waiting for the writer.
    public var pending: Int { state.withLock { $0.queued } }

    static let chunkSize = 4_096
    private let flushTurn = AsyncTurn()

    // MARK: The writer

    /// Writes every queued record; returns how many. The queue is taken whole under the lock
    /// (constant time), so ``record(_:)`` never waits on the writer.
    @discardableResult
    public func flush() async throws -> Int {
        // One flush at a time: a caller's flush (before reading summaries) waits for the writer's
        // batch in progress instead of finding the queue empty while that batch is uncommitted.
        await flushTurn.acquire()
        defer { flushTurn.release() }
        return try await flushQueued()
    }

    private func flushQueued() async throws -> Int {
        var written = 0
        while true {
            let taken: [[UsageRecord]] = state.withLock { state in
                var taken: [[UsageRecord]] = []
                swap(&taken, &state.chunks)
                state.queued = 0
                return taken
            }
            guard !taken.isEmpty else { return written }
            // Chunks are written in batches of about `batchSize` records, one transaction each. A
            // batch that fails goes back to the front of the queue with everything after it.
            var start = 0
            while start < taken.count {
                var end = start, size = 0
                while end < taken.count, size < batchSize {
                    size += taken[end].count
                    end += 1
                }
                do {
                    try await write(Array(taken[start..<end]))
                } catch {
                    let unwritten = Array(taken[start...])
                    state.withLock { state in
                        state.chunks = unwritten + state.chunks
                        state.queued += unwritten.reduce(0) { $0 + $1.count }
                    }
                    throw error
                }
                written += size
                start = end
            }
        }
    }

    /// Writes until graceful shutdown, then writes what is left.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if try await flush() == 0 { try? await Task.sleep(for: .milliseconds(100)) }
            } catch {
                logger.error("usage records could not be written; retrying", metadata: ["orion.error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        let last = try await flush()
        logger.info("usage records flushed at shutdown", metadata: ["orion.usage.written": "\(last)"])
    }

    func write(_ chunks: [[UsageRecord]]) async throws {
        try await store.insert(chunks)
    }
}

/// A lock for async code: ``acquire()`` suspends (never blocks a thread) until the holder releases.
final class AsyncTurn: Sendable {
    private let state = Mutex<(held: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                guard state.held else {
                    state.held = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
