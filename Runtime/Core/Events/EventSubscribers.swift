import Foundation
import Metrics
import OrionPluginSDK
import Synchronization

/// Live subscribers to a tenant's events (`GET /v1/events` and its WebSocket variant).
///
/// Each subscriber has its own bounded queue, and gets a ``RunEvent/heartbeat`` every 15 seconds so
/// its writer notices a client that left. A broadcast never waits: a subscriber whose queue is
/// full is ended on the spot with ``EventSubscription/endReason`` set, and everyone else goes on
/// receiving every event in order.
public final class EventSubscribers: Sendable {
    private struct State {
        var byTenant: [String: [UInt64: EventSubscription]] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())
    let capacity: Int
    /// How often each subscriber gets a heartbeat (so a writer learns its client left).
    let heartbeat: Duration
    private let ticker = Mutex<Task<Void, Never>?>(nil)

    public init(capacity: Int, heartbeat: Duration = .seconds(15)) {
        self.capacity = capacity
        self.heartbeat = heartbeat
    }

    deinit { ticker.withLock { $0?.cancel() } }

    /// A new subscription to `tenantID`'s events that match `filter`. Cancel it when the client goes.
    public func subscribe(tenantID: String, filter: EventFilter) -> EventSubscription {
        let (stream, continuation) = AsyncStream<RunEvent>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        return state.withLock { state in
            state.nextID += 1
            let subscription = EventSubscription(id: state.nextID, tenantID: tenantID, filter: filter, events: stream, continuation: continuation)
            state.byTenant[tenantID, default: [:]][state.nextID] = subscription
            continuation.onTermination = { [weak self] _ in self?.remove(subscription) }
            startTicker()
            return subscription
        }
    }

    /// Ends every subscription with `reason` (graceful shutdown: streams end, their requests finish).
    public func closeAll(code: String, reason: String) {
        let all = state.withLock { $0.byTenant.values.flatMap(\.values) }
        for subscription in all { subscription.end(code: code, reason: reason) }
    }

    private func startTicker() {
        ticker.withLock { task in
            guard task == nil else { return }
            let interval = heartbeat
            task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self else { return }
                    let all = self.state.withLock { $0.byTenant.values.flatMap(\.values) }
                    for subscription in all { _ = subscription.offer(.heartbeat, capacity: self.capacity) }
                }
            }
        }
    }

    public func hasSubscribers(tenantID: String) -> Bool { state.withLock { $0.byTenant[tenantID] != nil } }

    /// Subscribers now connected, per tenant.
    public var counts: [String: Int] { state.withLock { $0.byTenant.mapValues(\.count) } }

    func broadcast(_ event: RunEvent) {
        let targets = state.withLock { $0.byTenant[event.tenantID].map { Array($0.values) } ?? [] }
        for subscription in targets where subscription.filter.matches(event) {
            if !subscription.offer(event, capacity: capacity) {
                Counter(label: "orion_event_subscribers_disconnected_total", dimensions: [("reason", "slow")]).increment()
            }
        }
    }

    private func remove(_ subscription: EventSubscription) {
        state.withLock { state in
            state.byTenant[subscription.tenantID]?[subscription.id] = nil
            if state.byTenant[subscription.tenantID]?.isEmpty == true { state.byTenant[subscription.tenantID] = nil }
        }
    }
}

/// One subscriber's queue of events.
public final class EventSubscription: Sendable {
    let id: UInt64
    public let tenantID: String
    public let filter: EventFilter
    /// The events, in order; it ends when the subscriber fell behind (see ``endReason``) or was cancelled.
    public let events: AsyncStream<RunEvent>
    private let continuation: AsyncStream<RunEvent>.Continuation
    private let ending = Mutex<(code: String, reason: String)?>(nil)

    init(id: UInt64, tenantID: String, filter: EventFilter, events: AsyncStream<RunEvent>, continuation: AsyncStream<RunEvent>.Continuation) {
        self.id = id
        self.tenantID = tenantID
        self.filter = filter
        self.events = events
        self.continuation = continuation
    }

    /// Why the stream ended, when the server ended it.
    public var endReason: String? { ending.withLock { $0?.reason } }
    /// `SUBSCRIBER_TOO_SLOW` or `SERVER_SHUTTING_DOWN`, when the server ended the stream.
    public var endCode: String? { ending.withLock { $0?.code } }

    /// False when the queue was full: the subscription is ended then.
    func offer(_ event: RunEvent, capacity: Int) -> Bool {
        if case .dropped = continuation.yield(event) {
            end(code: "SUBSCRIBER_TOO_SLOW", reason: "the client fell behind: \(capacity) events were waiting (events.subscriberQueueCapacity); reconnect and read faster")
            return false
        }
        return true
    }

    func end(code: String, reason: String) {
        ending.withLock { if $0 == nil { $0 = (code, reason) } }
        continuation.finish()
    }

    public func cancel() { continuation.finish() }
}

extension PluginEvent {
    /// Not an event: the subscribers' keep-alive tick (its type is empty).
    public static let heartbeat = PluginEvent(type: "", tenantID: "", workspaceID: "", runID: "", timestampNanoseconds: 0, sequence: 0, payload: Data())

    public var isHeartbeat: Bool { type.isEmpty }
}
