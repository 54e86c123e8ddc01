import Foundation
import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// What the host offers one plugin instance. The runtime implements it with its logger, metrics,
/// clock and registry; tests and the conformance kit use simpler ones.
public protocol HostServices: AnyObject, Sendable {
    /// A log line from the plugin.
    func log(level: PluginHost.LogLevel, message: String)
    /// A counter increment from the plugin.
    func addCounter(name: String, delta: Int64)
    /// A histogram observation from the plugin.
    func recordHistogram(name: String, value: Double)
    /// Wall-clock nanoseconds since the Unix epoch.
    func nowNanoseconds() -> Int64
    /// Monotonic nanoseconds.
    func monotonicNanoseconds() -> Int64
    /// Leases the current instance `id` of `kind` for one operation.
    func acquire(kind: PluginKind, id: String) throws(PluginError) -> HostLease
    /// Starts an outbound HTTP exchange and drives `handler` to its completion; throws (and never
    /// touches `handler`) when the request is refused before it starts.
    func send(_ request: HostHTTPRequest, to handler: HostHTTPHandler) throws(PluginError)
    /// Starts host service `service` for the tool call behind `scope` and calls `completion`
    /// exactly once; throws (and never calls `completion`) when it cannot start.
    func callService(
        scope: UnsafeRawPointer?, service: String, request: Data, completion: @escaping @Sendable (Result<Data, PluginError>) -> Void
    ) throws(PluginError)
}

extension HostServices {
    public func nowNanoseconds() -> Int64 { SystemClock.nowNanoseconds() }
    public func monotonicNanoseconds() -> Int64 { SystemClock.monotonicNanoseconds() }
    public func addCounter(name: String, delta: Int64) {}
    public func recordHistogram(name: String, value: Double) {}
    public func acquire(kind: PluginKind, id: String) throws(PluginError) -> HostLease {
        throw PluginError(.notFound, "this host offers no registry lookups")
    }
    public func send(_ request: HostHTTPRequest, to handler: HostHTTPHandler) throws(PluginError) {
        throw PluginError(.unsupported, "this host offers no HTTP egress")
    }
    public func callService(
        scope: UnsafeRawPointer?, service: String, request: Data, completion: @escaping @Sendable (Result<Data, PluginError>) -> Void
    ) throws(PluginError) {
        throw PluginError(.unsupported, "this host offers no services")
    }
}

/// A lease on an instance, handed to a plugin through `registry_acquire`.
public final class HostLease: @unchecked Sendable {
    // @unchecked: the pointers are immutable, the instance outlives the lease by construction
    // (the registry destroys an instance only after its last lease), and `released` is atomic.
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafeRawPointer
    public let kind: PluginKind
    private let onRelease: @Sendable () -> Void
    private let released = Atomic<Bool>(false)


    public init(instance: UnsafeMutableRawPointer, table: UnsafeRawPointer, kind: PluginKind, onRelease: @escaping @Sendable () -> Void) {
        self.instance = instance
        self.table = table
        self.kind = kind
        self.onRelease = onRelease
    }

    /// Ends the lease; later calls do nothing.
    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { onRelease() }
    }

    deinit { release() }
}

/// Clocks read from the system.
public enum SystemClock {
    public static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
