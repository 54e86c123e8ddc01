import Foundation
import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// A live plugin instance: the image it came from, its C instance pointer and its host context.
///
/// ``destroy()`` runs the plugin's `destroy` exactly once, however many times and from however many
/// threads it is called. The image (and with it the code) is kept alive at least as long as this
/// object.
public final class PluginInstance: @unchecked Sendable {
    // @unchecked: immutable pointers plus an atomic flag; the ABI makes the instance itself
    // callable from any thread.
    public let image: PluginImage
    public let pointer: UnsafeMutableRawPointer
    public let context: HostContext
    private let destroyed = Atomic<Bool>(false)

    /// Creates an instance with `config` (JSON bytes).
    public init(image: PluginImage, config: Data, services: any HostServices) throws(PluginLoadError) {
        self.image = image
        let context = HostContext(services: services)
        var out: UnsafeMutableRawPointer?
        var error = ErrorBuffer.make()
        let status = Array(config).withOrionStr { image.entry.create(context.pointer, $0, &out, &error) }
        guard status == ORION_OK, let out else {
            let message = status == ORION_OK ? "create() returned OK but no instance" : ErrorBuffer.message(&error)
            let rejected = status == ORION_ERR_CONFIG
            throw PluginLoadError(
                rejected ? .configRejected : .createFailed,
                rejected ? "Plugin '\(image.info.id)' rejected its configuration: \(message)" : "Plugin '\(image.info.id)' could not create an instance: \(message)",
                cause: PluginError.Code(rawValue: status).description, path: image.path)
        }
        self.pointer = out
        self.context = context
    }

    /// Runs the plugin's destroy once; returns true only for the call that did it.
    @discardableResult
    public func destroy() -> Bool {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        image.entry.destroy(pointer)
        return true
    }

    public var isDestroyed: Bool { destroyed.load(ordering: .acquiring) }

    deinit { destroy() }

    /// The table for `kind`, or nil when the plugin does not provide it.
    public func table(for kind: PluginKind) -> UnsafeRawPointer? { image.table(for: kind) }

    public var rateLimiter: RateLimiterCaller? {
        image.entry.rate_limiter.map { RateLimiterCaller(instance: pointer, table: $0) }
    }
    public var retriever: RetrieverCaller? {
        image.entry.retriever.map { RetrieverCaller(instance: pointer, table: $0) }
    }
    public var engine: EngineCaller? {
        image.entry.engine.map { EngineCaller(instance: pointer, table: $0) }
    }
    public var pricing: PricingCaller? {
        image.entry.pricing.map { PricingCaller(instance: pointer, table: $0) }
    }
    public var connector: ConnectorCaller? {
        image.entry.connector.map { ConnectorCaller(instance: pointer, table: $0) }
    }
    public var tool: ToolCaller? {
        image.entry.tool.map { ToolCaller(instance: pointer, table: $0) }
    }
}
