import Foundation
import Logging
import Metrics
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// Hands events to connector instances: one bounded queue and one delivering task per instance.
///
/// ``enqueue(_:to:)`` never waits: when an instance's queue is full the event is dropped for that
/// instance and counted (`orion_connector_events_dropped_total{connector}`). Each instance gets
/// its events one at a time, in the order they were enqueued, so the events of one run reach it in
/// order. An event the connector fails to deliver (its own retries spent) is written to the
/// dead-letter file for `orion connectors replay`.
public final class ConnectorDispatcher: Sendable {
    let registry: Registry
    public let deadLetters: DeadLetters
    let capacity: Int
    /// The longest one delivery may take (`events.deliveryTimeoutSeconds`).
    let timeout: Duration
    let logger: Logger
    private let queues = Mutex<[String: ConnectorQueue]>([:])

    public init(registry: Registry, deadLetters: DeadLetters, capacity: Int, timeout: Duration = .seconds(300), logger: Logger) {
        self.timeout = timeout
        self.registry = registry
        self.deadLetters = deadLetters
        self.capacity = capacity
        self.logger = logger
    }

    /// Queues `event` for each of `instances`; never waits.
    func enqueue(_ event: RunEvent, to instances: [String]) {
        for id in instances {
            let queue = queues.withLock { all in
                if let existing = all[id] { return existing }
                let created = ConnectorQueue(id: id, capacity: capacity, dispatcher: self)
                all[id] = created
                return created
            }
            queue.offer(event)
        }
    }

    /// Per-instance counts since start, for health snapshots and tests.
    public func stats() -> [String: ConnectorQueue.Stats] {
        queues.withLock { $0 }.mapValues(\.stats)
    }

    /// Waits until every queue is empty and nothing is being delivered (tests, graceful shutdown),
    /// or `timeout` passes. Returns whether everything drained.
    @discardableResult
    public func drain(timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if queues.withLock({ $0 }).values.allSatisfy({ $0.isIdle }) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// Stops every delivering task once its queue is empty.
    public func shutdown() async {
        await drain()
        for queue in queues.withLock({ $0 }).values { queue.close() }
    }

    /// Delivers one event to instance `id`; dead-letters it on failure.
    func deliver(_ event: RunEvent, to id: String) async -> ConnectorQueue.Outcome {
        let lease: Lease
        do {
            lease = try registry.lease(kind: .connector, id: id)
        } catch {
            return deadLetter(event, id: id, error: "the connector instance is not loaded: \(error.message)")
        }
        guard let connector = lease.connector else {
            lease.release()
            return deadLetter(event, id: id, error: "instance '\(id)' provides no connector table")
        }
        do {
            // A connector that never answers costs its queue this long at most; the instance stays
            // leased until it does answer.
            try await Deadline.run(timeout, what: "events.deliveryTimeoutSeconds") {
                defer { lease.release() }
                try await connector.deliver(event)
            }
            return .delivered
        } catch {
            return deadLetter(event, id: id, error: "\(error)")
        }
    }

    private func deadLetter(_ event: RunEvent, id: String, error: String) -> ConnectorQueue.Outcome {
        do {
            try deadLetters.append(event, instance: id, error: error)
            logger.warning(
                "connector failed to deliver an event; it was dead-lettered",
                metadata: ["orion.connector": "\(id)", "orion.event": "\(event.type)", "orion.run": "\(event.runID)", "orion.error": "\(error)"])
            return .deadLettered
        } catch let writeError {
            logger.error(
                "connector failed to deliver an event, and the dead-letter file could not be written: the event is lost",
                metadata: ["orion.connector": "\(id)", "orion.event": "\(event.type)", "orion.run": "\(event.runID)", "orion.error": "\(error)",
                    "orion.dead_letter_error": "\(writeError)"])
            return .lost
        }
    }
}

/// One connector instance's queue and the task that empties it.
public final class ConnectorQueue: Sendable {
    public enum Outcome: String, Sendable { case delivered, deadLettered = "dead_lettered", lost }

    public struct Stats: Sendable, Hashable {
        public var depth = 0
        public var delivered = 0
        public var deadLettered = 0
        public var dropped = 0
        public var lost = 0
    }

    let id: String
    private let continuation: AsyncStream<RunEvent>.Continuation
    private let counts = Mutex(Stats())
    private let busy = Atomic<Bool>(false)
    private let dropped: Counter
    private let depthGauge: Gauge
    private let outcomes: [Outcome: Counter]
    private let duration: Timer

    init(id: String, capacity: Int, dispatcher: ConnectorDispatcher) {
        self.id = id
        let (stream, continuation) = AsyncStream<RunEvent>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        self.continuation = continuation
        dropped = Counter(label: "orion_connector_events_dropped_total", dimensions: [("connector", id)])
        depthGauge = Gauge(label: "orion_connector_queue_depth", dimensions: [("connector", id)])
        outcomes = Dictionary(uniqueKeysWithValues: [Outcome.delivered, .deadLettered, .lost].map {
            ($0, Counter(label: "orion_connector_events_total", dimensions: [("connector", id), ("outcome", $0.rawValue)]))
        })
        duration = Timer(label: "orion_connector_delivery_seconds", dimensions: [("connector", id)])
        Task { [weak dispatcher] in
            for await event in stream {
                guard let dispatcher else { return }
                await self.handle(event, dispatcher: dispatcher)
            }
        }
    }

    private func handle(_ event: RunEvent, dispatcher: ConnectorDispatcher) async {
        let started = ContinuousClock.now
        let outcome = await dispatcher.deliver(event, to: id)
        duration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        outcomes[outcome]?.increment()
        let depth = counts.withLock { stats in
            stats.depth -= 1
            switch outcome {
            case .delivered: stats.delivered += 1
            case .deadLettered: stats.deadLettered += 1
            case .lost: stats.lost += 1
            }
            if stats.depth == 0 { busy.store(false, ordering: .releasing) }
            return stats.depth
        }
        depthGauge.record(depth)
    }

    func offer(_ event: RunEvent) {
        // Counted before the yield so the delivering task never sees a negative depth.
        let depth = counts.withLock { stats in
            stats.depth += 1
            busy.store(true, ordering: .releasing)
            return stats.depth
        }
        if case .dropped = continuation.yield(event) {
            counts.withLock { stats in
                stats.depth -= 1
                stats.dropped += 1
                if stats.depth == 0 { busy.store(false, ordering: .releasing) }
            }
            dropped.increment()
            return
        }
        depthGauge.record(depth)
    }

    public var stats: Stats { counts.withLock { $0 } }
    var isIdle: Bool { !busy.load(ordering: .acquiring) }
    func close() { continuation.finish() }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
