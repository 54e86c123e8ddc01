import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// A published plugin instance with its lease count.
///
/// Lifecycle: active → (retired by a swap) → destroyed after its last lease. The lease count and
/// the two flags live in one atomic word, so "retired and unleased" is observed exactly once and
/// the plugin's `destroy` runs exactly once, whichever of retire or release comes last.
public final class InstanceHandle: Sendable {
    public let spec: InstanceSpec
    public let instance: PluginInstance
    /// The copy of the plugin file that was loaded, and its sha256.
    public let loadedPath: String
    public let sha256: String
    /// Unique per handle within the process, in creation order.
    public let serial: UInt64
    /// Called once, after the plugin's destroy ran.
    private let onDestroyed: @Sendable (InstanceHandle) -> Void

    /// bit 0: retired, bit 1: destroyed, bits 2...: lease count.
    private let state = Atomic<Int>(0)
    private static let retiredBit = 1
    private static let destroyedBit = 2
    private static let leaseUnit = 4

    public var id: String { spec.id }
    public var info: PluginInfo { instance.image.info }

    private static let serials = Atomic<UInt64>(0)

    init(spec: InstanceSpec, instance: PluginInstance, loadedPath: String, sha256: String, onDestroyed: @escaping @Sendable (InstanceHandle) -> Void) {
        self.serial = Self.serials.add(1, ordering: .relaxed).newValue
        self.spec = spec
        self.instance = instance
        self.loadedPath = loadedPath
        self.sha256 = sha256
        self.onDestroyed = onDestroyed
    }

    /// Adds a lease. The registry calls this only while the handle is in the current snapshot,
    /// under the registry's lock, so a retired handle never gains a lease.
    func retain() {
        state.add(Self.leaseUnit, ordering: .relaxed)
    }

    /// Ends a lease; destroys the instance if it was the last one on a retired handle.
    func release() {
        let after = state.subtract(Self.leaseUnit, ordering: .acquiringAndReleasing).newValue
        if after == Self.retiredBit { destroyIfUnclaimed() }
    }

    /// Marks the handle retired (it left the snapshot); destroys at once if nobody holds a lease.
    func retire() {
        let after = state.bitwiseOr(Self.retiredBit, ordering: .acquiringAndReleasing).newValue
        if after == Self.retiredBit { destroyIfUnclaimed() }
    }

    private func destroyIfUnclaimed() {
        let (exchanged, _) = state.compareExchange(
            expected: Self.retiredBit, desired: Self.retiredBit | Self.destroyedBit, ordering: .acquiringAndReleasing)
        guard exchanged else { return }
        instance.destroy()
        onDestroyed(self)
    }

    public var leaseCount: Int { state.load(ordering: .relaxed) / Self.leaseUnit }
    public var isRetired: Bool { state.load(ordering: .relaxed) & Self.retiredBit != 0 }
    public var isDestroyed: Bool { state.load(ordering: .acquiring) & Self.destroyedBit != 0 }
}

/// A lease on one instance: while it lives, the instance is not destroyed. Release it when the
/// operation ends (or let it go out of scope).
public final class Lease: Sendable {
    public let handle: InstanceHandle
    private let released = Atomic<Bool>(false)

    init(_ handle: InstanceHandle) { self.handle = handle }

    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { handle.release() }
    }

    deinit { release() }

    public var instance: PluginInstance { handle.instance }
    public var rateLimiter: RateLimiterCaller? { handle.instance.rateLimiter }
    public var retriever: RetrieverCaller? { handle.instance.retriever }
    public var engine: EngineCaller? { handle.instance.engine }
    public var pricing: PricingCaller? { handle.instance.pricing }
    public var connector: ConnectorCaller? { handle.instance.connector }
}
