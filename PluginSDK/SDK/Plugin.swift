/// What every Swift plugin type declares: its identity, its manifest and how to build an instance
/// from its decoded configuration.
///
/// A plugin type also conforms to one or more kind protocols (``RateLimiterPlugin``,
/// ``RetrieverPlugin``, ``EnginePlugin``, ``PricingPlugin``, ``ConnectorPlugin``,
/// ``ToolPlugin``). The SDK offers
/// exactly the kinds it conforms to.
///
/// ```swift
/// import OrionPluginSDK
///
/// final class Fixed: OrionPlugin, RateLimiterPlugin {
///     struct Configuration: Decodable, Sendable { var limit: Int64 }
///     static let descriptor = PluginDescriptor(
///         id: "ratelimit-fixed", version: "1.0.0", capabilities: ["rate_limit"],
///         configSchema: #"{"type":"object","properties":{"limit":{"type":"integer","minimum":1}},"required":["limit"]}"#)
///     let limit: Int64
///     init(configuration: Configuration, host: PluginHost) throws { limit = configuration.limit }
///     func acquire(key: PluginString, cost: Int64, decision: inout RateDecision) throws(PluginError) {
///         decision = RateDecision(allowed: cost <= limit, limit: limit, remaining: limit - cost)
///     }
/// }
///
/// @c(orion_plugin_v1_entry)
/// public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
///     PluginExport.entry(Fixed.self, host: host)
/// }
/// ```
public protocol OrionPlugin: AnyObject, Sendable {
    /// The configuration, decoded from the instance's `config` (JSON) with `JSONDecoder`.
    associatedtype Configuration: Decodable & Sendable

    /// Identity and manifest, read once when the image is loaded.
    static var descriptor: PluginDescriptor { get }

    /// Creates an instance. Throw ``PluginError`` with ``PluginError/Code/config`` to reject the
    /// configuration with a message that says which key to fix.
    init(configuration: Configuration, host: PluginHost) throws
}

/// A plugin's identity and JSON capability manifest.
public struct PluginDescriptor: Sendable {
    /// `[a-z0-9-]+`, e.g. `ratelimit-gcra`.
    public var id: String
    /// A semantic version, e.g. `1.2.0`.
    public var version: String
    /// Capability names the tier manifest can map to this plugin, e.g. `["rate_limit"]`.
    public var capabilities: [String]
    /// A JSON Schema (object, properties, required, additionalProperties, type, enum, minimum,
    /// maximum, minLength, items) the host checks every instance configuration against.
    public var configSchema: String
    /// A one-line description for `orion plugins list`.
    public var summary: String
    /// Tool plugins: the tool's name and schemas.
    public var tool: ToolDescriptor?

    public init(
        id: String, version: String, capabilities: [String], configSchema: String = #"{"type":"object"}"#,
        summary: String = "", tool: ToolDescriptor? = nil
    ) {
        self.tool = tool
        self.id = id
        self.version = version
        self.capabilities = capabilities
        self.configSchema = configSchema
        self.summary = summary
    }

    /// The manifest JSON handed to the host.
    var manifestJSON: String {
        let caps = capabilities.map(JSONText.quote).joined(separator: ",")
        let tool = self.tool.map { #","tool":\#($0.manifestJSON)"# } ?? ""
        return #"{"capabilities":[\#(caps)],"summary":\#(JSONText.quote(summary)),"config_schema":\#(configSchema)\#(tool)}"#
    }
}

/// Minimal JSON text helpers that need no Foundation.
enum JSONText {
    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
