import Foundation
import Logging
import ServiceLifecycle
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// Where lifecycle events are published: each event is numbered, then handed to the connectors
/// its tenant's tier enables (`tiers.<tier>.capabilities.connectors`) and to the tenant's live
/// subscribers. Publishing never waits on either.
public final class EventHub: Sendable {
    /// The tier capability that lists a tier's connector instances.
    public static let connectorsCapability = "connectors"

    public let connectors: ConnectorDispatcher
    public let subscribers: EventSubscribers
    let registry: Registry
    private struct Sequences {
        var byRun: [String: UInt64] = [:]
        var byTenant: [String: UInt64] = [:]
    }
    private let sequences = Mutex(Sequences())

    public init(registry: Registry, config: RuntimeConfig, logger: Logger) {
        self.registry = registry
        connectors = ConnectorDispatcher(
            registry: registry, deadLetters: DeadLetters(directory: config.resolvedDeadLetterDirectory), capacity: config.events.connectorQueueCapacity,
            timeout: .milliseconds(Int64(config.events.deliveryTimeoutSeconds * 1000)), logger: logger)
        subscribers = EventSubscribers(capacity: config.events.subscriberQueueCapacity)
    }

    /// Whether anyone takes `tenantID`'s events on `tier` (a connector or a live subscriber): callers
    /// skip building an event's payload when no one does.
    public func isObserved(tenantID: String, tier: String) -> Bool {
        isObserved(tenantID: tenantID, targets: registry.snapshot.tiers[tier]?.capabilities[Self.connectorsCapability] ?? [])
    }

    private func isObserved(tenantID: String, targets: [String]) -> Bool {
        !targets.isEmpty || subscribers.hasSubscribers(tenantID: tenantID)
    }

    /// Publishes one event. `payload` must hold JSON values only; `tier` is added to it.
    @discardableResult
    public func publish(_ kind: RunEvent.Kind, tenantID: String, tier: String, runID: String = "", payload: [String: Any] = [:]) -> RunEvent {
        publish(kind.rawValue, tenantID: tenantID, tier: tier, runID: runID, payload: payload, ends: kind.endsRun)
    }

    /// Publishes an event of any type (`ends`: the last event of its run).
    @discardableResult
    public func publish(_ type: String, tenantID: String, tier: String, runID: String, payload: [String: Any], ends: Bool = false) -> RunEvent {
        let targets = registry.snapshot.tiers[tier]?.capabilities[Self.connectorsCapability] ?? []
        if runID.isEmpty, !isObserved(tenantID: tenantID, targets: targets) {
            // Nobody takes this tenant's events: nothing to number or encode (a run's events are
            // numbered regardless, so a subscriber joining mid-run sees its true sequence).
            return RunEvent(type: type, tenantID: tenantID, workspaceID: tenantID, runID: "", timestampNanoseconds: 0, sequence: 0, payload: Data())
        }
        var object = payload
        object["tier"] = tier
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{\"tier\":\"\(tier)\"}".utf8)
        // Numbering and queueing happen under one lock, so every queue sees a run's events in order.
        return sequences.withLock { sequences in
            let sequence: UInt64
            if runID.isEmpty {
                sequence = sequences.byTenant[tenantID, default: 0] + 1
                sequences.byTenant[tenantID] = sequence
            } else {
                sequence = sequences.byRun[runID, default: 0] + 1
                sequences.byRun[runID] = ends ? nil : sequence
            }
            let event = RunEvent(
                type: type, tenantID: tenantID, workspaceID: tenantID, runID: runID, timestampNanoseconds: SystemClock.nowNanoseconds(),
                sequence: sequence, payload: data)
            connectors.enqueue(event, to: targets)
            subscribers.broadcast(event)
            return event
        }
    }
}

/// Ends the live event streams when graceful shutdown begins, so the HTTP server's own shutdown
/// does not wait on requests that never end by themselves. Run it after the gateway in the
/// service list: services shut down in reverse order.
public struct EventStreamCloser: Service {
    let subscribers: EventSubscribers

    public init(hub: EventHub) { subscribers = hub.subscribers }

    public func run() async throws {
        try? await gracefulShutdown()
        subscribers.closeAll(code: "SERVER_SHUTTING_DOWN", reason: "the server is shutting down; reconnect to another node or later")
    }
}
