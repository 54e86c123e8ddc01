import Foundation
import Metrics
import OrionPluginSDK
import Synchronization

/// Live subscribers to a tenant's events (`GET /v1/events` and its WebSocket variant).
///
/// Each subscriber has its own bounded queue. A broadcast never waits: a subscriber whose queue is
/// full is ended on the spot with ``EventSubscription/endReason`` set, and everyone else goes on
/// receiving every event in order.
public final class EventSubscribers: Sendable {
    private struct State {
        var byTenant: [String: [UInt64: EventSubscription]] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())
    let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// A new subscription to `tenantID`'s events that match `filter`. Cancel it when the client goes.
    public func subscribe(tenantID: String, filter: EventFilter) -> EventSubscription {
        let (stream, continuation) = AsyncStream<RunEvent>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        return state.withLock { state in
            state.nextID += 1
            let subscription = EventSubscription(id: state.nextID, tenantID: tenantID, filter: filter, events: stream, continuation: continuation)
            state.byTenant[tenantID, default: [:]][state.nextID] = subscription
            continuation.onTermination = { [weak self] _ in self?.remove(subscription) }
            return subscription
        }
    }

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
    private let reason = Mutex<String?>(nil)

    init(id: UInt64, tenantID: String, filter: EventFilter, events: AsyncStream<RunEvent>, continuation: AsyncStream<RunEvent>.Continuation) {
        self.id = id
        self.tenantID = tenantID
        self.filter = filter
        self.events = events
        self.continuation = continuation
    }

    /// Why the stream ended, when the server ended it.
    public var endReason: String? { reason.withLock { $0 } }

    /// False when the queue was full: the subscription is ended then.
    func offer(_ event: RunEvent, capacity: Int) -> Bool {
        if case .dropped = continuation.yield(event) {
            reason.withLock { $0 = "the client fell behind: \(capacity) events were waiting (events.subscriberQueueCapacity); reconnect and read faster" }
            continuation.finish()
            return false
        }
        return true
    }

    public func cancel() { continuation.finish() }
}
