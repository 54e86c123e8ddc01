import Foundation
import OrionPluginABI

/// Builds the C info and function tables for a Swift plugin type.
///
/// Call it from the one entry function a plugin exports:
///
/// ```swift
/// @c(orion_plugin_v1_entry)
/// public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
///     PluginExport.entry(MyPlugin.self, host: host)
/// }
/// ```
public enum PluginExport {
    /// Returns the plugin's info for `host`, building it on the first call.
    public static func entry<P: OrionPlugin>(_ type: P.Type, host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
        guard let host else { return nil }
        if let info = ExportState.info { return info }
        let required = MemoryLayout<orion_host_api>.offset(of: \orion_host_api.registry_release)! + MemoryLayout<UnsafeRawPointer>.size
        guard host.pointee.abi_major == ORION_ABI_MAJOR, Int(host.pointee.struct_size) >= required else {
            "\(P.descriptor.id) needs plugin ABI \(ORION_ABI_MAJOR).\(ORION_ABI_MINOR); the host offers \(host.pointee.abi_major).\(host.pointee.abi_minor) with a \(host.pointee.struct_size)-byte host API".withOrionStr {
                host.pointee.log(nil, ORION_LOG_ERROR, $0)
            }
            return nil
        }
        ExportState.host = host
        ExportState.factory = { context, config in
            let configuration: P.Configuration
            do {
                configuration = try JSONDecoder().decode(P.Configuration.self, from: config.isEmpty ? Data("{}".utf8) : config)
            } catch let error as DecodingError {
                throw PluginError(.config, ConfigurationErrorText.describe(error))
            }
            let pluginHost = PluginHost(api: host, context: context)
            let plugin = try P(configuration: configuration, host: pluginHost)
            return InstanceBox(plugin, host: pluginHost)
        }

        let descriptor = P.descriptor
        var kinds: UInt32 = 0
        let info = UnsafeMutablePointer<orion_plugin_info>.allocate(capacity: 1)
        info.initialize(to: orion_plugin_info())
        info.pointee.struct_size = UInt32(MemoryLayout<orion_plugin_info>.size)
        info.pointee.abi_major = UInt16(ORION_ABI_MAJOR)
        info.pointee.abi_minor = UInt16(ORION_ABI_MINOR)
        info.pointee.id = UnsafePointer(strdup(descriptor.id))
        info.pointee.version = UnsafePointer(strdup(descriptor.version))
        info.pointee.toolchain = UnsafePointer(strdup(Toolchain.tag))
        info.pointee.manifest = UnsafePointer(strdup(descriptor.manifestJSON))
        info.pointee.create = Thunks.create
        info.pointee.destroy = Thunks.destroy
        if P.self is any RateLimiterPlugin.Type {
            kinds |= ORION_KIND_RATE_LIMITER
            info.pointee.rate_limiter = permanent(Thunks.rateLimiterTable)
        }
        if P.self is any RetrieverPlugin.Type {
            kinds |= ORION_KIND_RETRIEVER
            info.pointee.retriever = permanent(Thunks.retrieverTable)
        }
        if P.self is any EnginePlugin.Type {
            kinds |= ORION_KIND_ENGINE
            info.pointee.engine = permanent(Thunks.engineTable)
        }
        if P.self is any PricingPlugin.Type {
            kinds |= ORION_KIND_PRICING
            info.pointee.pricing = permanent(Thunks.pricingTable)
        }
        if P.self is any ConnectorPlugin.Type {
            kinds |= ORION_KIND_CONNECTOR
            info.pointee.connector = permanent(Thunks.connectorTable)
        }
        if P.self is any ToolPlugin.Type {
            kinds |= ORION_KIND_TOOL
            info.pointee.tool = permanent(Thunks.toolTable)
        }
        info.pointee.kinds = kinds
        ExportState.info = UnsafePointer(info)
        return ExportState.info
    }

    /// Copies a table to storage that lives as long as the process, as the ABI requires.
    private static func permanent<T>(_ value: T) -> UnsafePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        pointer.initialize(to: value)
        return UnsafePointer(pointer)
    }
}

/// Per-image state, written once by `entry` before the host calls anything else.
enum ExportState {
    // nonisolated(unsafe): the ABI calls the entry once per image, on one thread, before any
    // other function; afterwards these are only read.
    nonisolated(unsafe) static var info: UnsafePointer<orion_plugin_info>?
    nonisolated(unsafe) static var host: UnsafePointer<orion_host_api>?
    nonisolated(unsafe) static var factory: ((OpaquePointer?, Data) throws -> InstanceBox)?
}

/// The object behind a C instance pointer: the plugin and its kind views, resolved once.
///
/// The rate limiter, the one kind called per request with little work behind it, is reached
/// through a typed view (see ``RateLimiterView``); the other kinds through existentials, whose
/// retain/release is small beside their work.
final class InstanceBox {
    let plugin: AnyObject
    /// Owns the view; ``rateLimiterRef`` is the same object, unretained, for the hot path.
    let rateLimiter: RateLimiterView?
    let rateLimiterRef: Unmanaged<RateLimiterView>?
    let retriever: (any RetrieverPlugin)?
    let engine: (any EnginePlugin)?
    let pricing: (any PricingPlugin)?
    let connector: (any ConnectorPlugin)?
    let tool: (any ToolPlugin)?
    /// The host API and this instance's context, for tool calls' service requests.
    let host: PluginHost?

    init(_ plugin: some OrionPlugin, host: PluginHost? = nil) {
        self.host = host
        tool = plugin as? any ToolPlugin
        self.plugin = plugin
        rateLimiter = (type(of: plugin) as? any RateLimiterPlugin.Type)?.makeView(plugin)
        rateLimiterRef = rateLimiter.map { Unmanaged.passUnretained($0) }
        retriever = plugin as? any RetrieverPlugin
        engine = plugin as? any EnginePlugin
        pricing = plugin as? any PricingPlugin
        connector = plugin as? any ConnectorPlugin
    }

    /// Borrows the box behind `instance` without retain/release: the host owns the instance
    /// until destroy(), which the ABI orders after every other call.
    @inline(__always)
    static func with<R>(_ instance: UnsafeMutableRawPointer?, _ body: (InstanceBox) throws -> R) rethrows -> R {
        try Unmanaged<InstanceBox>.fromOpaque(instance.unsafelyUnwrapped)._withUnsafeGuaranteedRef(body)
    }
}

/// Human-readable text for configuration decoding errors: which key, what was expected.
enum ConfigurationErrorText {
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "the configuration" : "'\(text)'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "missing required key '\(key.stringValue)'\(parent); add it to the instance's config"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) must be \(typeName(type)); fix its value in the instance's config"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) must be \(typeName(type)), not null"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)) is invalid: \(context.debugDescription)"
        @unknown default:
            return "the configuration could not be read: \(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type, is UInt32.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default: "a value of type \(type)"
        }
    }
}
