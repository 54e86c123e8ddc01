import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// Admits `limit` units per key per window, in fixed windows of the host's monotonic clock.
final class RateLimitFixed: OrionPlugin, RateLimiterPlugin {
    /// - Configuration keys: `limit` (integer ≥ 1), `windowSeconds` (number > 0, default 60).
    struct Configuration: Decodable, Sendable {
        var limit: Int64
        var windowSeconds: Double?
    }

    static let descriptor = PluginDescriptor(
        id: "ratelimit-fixed", version: "1.0.0", capabilities: ["rate_limit"],
        configSchema: """
            {"type":"object","additionalProperties":false,"required":["limit"],
             "properties":{"limit":{"type":"integer","minimum":1},
                           "windowSeconds":{"type":"number","exclusiveMinimum":0}}}
            """,
        summary: "fixed-window rate limiter")

    let limit: Int64
    let window: Int64
    let host: PluginHost
    let used = Mutex<[String: (window: Int64, used: Int64)]>([:])

    init(configuration: Configuration, host: PluginHost) throws {
        limit = configuration.limit
        window = Int64((configuration.windowSeconds ?? 60) * 1e9)
        self.host = host
    }

    func acquire(key: PluginString, cost: Int64, decision: inout RateDecision) throws(PluginError) {
        guard cost >= 1, cost <= limit else {
            throw PluginError(.invalidArgument, "cost must be between 1 and \(limit), got \(cost)")
        }
        let now = host.monotonicNanoseconds()
        let current = now / window
        let resetIn = (current + 1) * window - now
        let name = key.string
        decision = used.withLock { table in
            var entry = table[name] ?? (current, 0)
            if entry.window != current { entry = (current, 0) }
            guard entry.used + cost <= limit else {
                return RateDecision(allowed: false, limit: limit, remaining: limit - entry.used,
                                    retryAfterNanoseconds: resetIn, resetNanoseconds: resetIn, windowNanoseconds: window)
            }
            entry.used += cost
            table[name] = entry
            return RateDecision(allowed: true, limit: limit, remaining: limit - entry.used,
                                resetNanoseconds: resetIn, windowNanoseconds: window)
        }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(RateLimitFixed.self, host: host)
}
