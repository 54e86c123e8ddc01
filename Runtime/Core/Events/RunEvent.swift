import Foundation
import OrionPluginSDK

/// One lifecycle event: about a run (started, progress, completed, error, cancelled) or about a
/// tenant (a budget alert, a refused request, a side effect for the audit log). The same value a
/// connector plugin receives.
///
/// Events of one run carry sequence numbers 1, 2, 3, … in the order they happened; events not about
/// a run are numbered per tenant. The payload is a JSON object and always holds `tier`.
public typealias RunEvent = PluginEvent

extension PluginEvent {
    /// The event types the core emits.
    public enum Kind: String, Sendable, CaseIterable {
        case runStarted = "run_started"
        case runProgress = "run_progress"
        case runCompleted = "run_completed"
        case runError = "run_error"
        case runCancelled = "run_cancelled"
        case budgetAlert = "budget_alert"
        case rateLimited = "rate_limited"
        case sideEffect = "side_effect"

        /// The types that end a run.
        public var endsRun: Bool { self == .runCompleted || self == .runError || self == .runCancelled }
    }

    /// The payload as a dictionary (empty when it is not a JSON object).
    public var payloadObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: payload)) as? [String: Any] ?? [:]
    }

    /// The event as one JSON object: what `/v1/events` sends and what a dead-letter line holds.
    public var jsonObject: [String: Any] {
        [
            "type": type, "tenantId": tenantID, "workspaceId": workspaceID, "runId": runID, "sequence": sequence,
            "timestampNs": timestampNanoseconds, "payload": payloadObject,
        ]
    }

    /// Reads ``jsonObject``'s shape back; nil when a field is missing or mistyped.
    public init?(jsonObject object: [String: Any]) {
        guard let type = object["type"] as? String, let tenant = object["tenantId"] as? String,
            let workspace = object["workspaceId"] as? String, let run = object["runId"] as? String,
            let sequence = (object["sequence"] as? NSNumber)?.uint64Value, let timestamp = (object["timestampNs"] as? NSNumber)?.int64Value,
            let payload = object["payload"] as? [String: Any], let data = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
        else { return nil }
        self.init(type: type, tenantID: tenant, workspaceID: workspace, runID: run, timestampNanoseconds: timestamp, sequence: sequence, payload: data)
    }

    /// ``jsonObject`` as bytes, keys sorted.
    public func encoded(adding extra: [String: Any] = [:]) -> Data {
        let object = jsonObject.merging(extra) { _, new in new }
        // Built from JSON-safe values only.
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}

/// Which events a subscriber wants: all of its tenant's, or those of one run, of some types.
public struct EventFilter: Sendable, Hashable {
    public var runID: String?
    /// Empty: every type.
    public var types: Set<String>

    public init(runID: String? = nil, types: Set<String> = []) {
        self.runID = runID
        self.types = types
    }

    public func matches(_ event: RunEvent) -> Bool {
        (runID == nil || event.runID == runID) && (types.isEmpty || types.contains(event.type))
    }
}
