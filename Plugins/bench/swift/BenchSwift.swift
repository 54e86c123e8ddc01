import OrionPluginABI
import OrionPluginSDK

/// `orion-bench-swift`: the Swift side of `orion bench plugin-call`, the same arithmetic as the C
/// plugin and the direct call.
final class BenchSwift: OrionPlugin, RateLimiterPlugin {
    struct Configuration: Decodable, Sendable {}

    static let descriptor = PluginDescriptor(
        id: "orion-bench-swift", version: "1.0.0", capabilities: ["rate_limit"],
        summary: "plugin-call benchmark (Swift)")

    init(configuration: Configuration, host: PluginHost) throws {}

    func acquire(key: PluginString, cost: Int64, decision: inout RateDecision) throws(PluginError) {
        decision = RateDecision(
            allowed: cost <= Int64(key.count) + 100, limit: 100, remaining: 100 - cost, retryAfterNanoseconds: 0,
            resetNanoseconds: cost, windowNanoseconds: 1)
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(BenchSwift.self, host: host)
}
