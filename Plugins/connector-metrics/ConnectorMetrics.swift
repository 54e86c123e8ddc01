import Foundation
import OrionPluginABI
import OrionPluginSDK

/// `connector-metrics`: Prometheus series per tier from run lifecycle events.
///
/// - `orion_plugin_runs_total{plugin="connector-metrics",tier,kind,outcome}`: runs that ended, by
///   outcome — `success`, `partial`, `failure`, `reward` (finished runs), `error` or `cancelled`;
/// - `orion_plugin_run_duration_seconds{plugin="connector-metrics",tier,kind}`: how long they took
///   (a histogram);
/// - `orion_plugin_lifecycle_events_total{plugin="connector-metrics",tier,type}`: every event it
///   takes, by type (budget alerts and refusals included).
final class ConnectorMetrics: OrionPlugin, ConnectorPlugin {
    /// No configuration keys.
    struct Configuration: Decodable, Sendable {}

    static let descriptor = PluginDescriptor(
        id: "connector-metrics", version: "1.0.0", capabilities: ["connectors"],
        configSchema: #"{"type":"object","additionalProperties":false,"properties":{}}"#,
        summary: "Prometheus series per tier: runs by outcome, run duration, lifecycle events by type")

    let host: PluginHost

    init(configuration: Configuration, host: PluginHost) throws {
        self.host = host
    }

    func deliver(_ event: PluginEvent) async throws {
        let payload = (try? JSONSerialization.jsonObject(with: event.payload)) as? [String: Any] ?? [:]
        let tier = payload["tier"] as? String ?? "unknown"
        host.increment(counter: PluginHost.metricName("lifecycle_events_total", labels: ["tier": tier, "type": event.type]))
        let outcome: String
        switch event.type {
        case "run_completed": outcome = payload["outcome"] as? String ?? "success"
        case "run_error": outcome = "error"
        case "run_cancelled": outcome = "cancelled"
        default: return
        }
        let kind = payload["kind"] as? String ?? "run"
        host.increment(counter: PluginHost.metricName("runs_total", labels: ["tier": tier, "kind": kind, "outcome": outcome]))
        if let ms = (payload["durationMs"] as? NSNumber)?.doubleValue {
            host.record(histogram: PluginHost.metricName("run_duration_seconds", labels: ["tier": tier, "kind": kind]), value: ms / 1000)
        }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(ConnectorMetrics.self, host: host)
}
