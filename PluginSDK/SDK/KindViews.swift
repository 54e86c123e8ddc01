import OrionPluginABI

/// Hot-path dispatch from a C thunk to a plugin of a concrete type, without retain/release.
///
/// A C function pointer cannot be generic, so the thunks reach the plugin through a class: the
/// thunk borrows the ``InstanceBox`` and its view without retain/release (`Unmanaged` and
/// `_withUnsafeGuaranteedRef`), makes one virtual call, and the typed subclass calls the plugin it
/// holds in a `let` of its concrete type, which is a borrow. Reading a protocol existential out of
/// the box instead costs a retain/release pair per call (measured: 24 ns against 8 ns a call).
class RateLimiterView {
    /// Overridden by ``TypedRateLimiterView``; the base is never instantiated.
    func acquire(
        key: orion_str, cost: Int64, out: UnsafeMutablePointer<orion_rate_decision>?, err: UnsafeMutablePointer<orion_error>?
    ) -> orion_status {
        preconditionFailure("RateLimiterView is abstract")
    }
}

final class TypedRateLimiterView<T: RateLimiterPlugin>: RateLimiterView {
    let target: T

    init(_ target: T) { self.target = target }

    override func acquire(
        key: orion_str, cost: Int64, out: UnsafeMutablePointer<orion_rate_decision>?, err: UnsafeMutablePointer<orion_error>?
    ) -> orion_status {
        do throws(PluginError) {
            // Same layout (RateDecision's only stored property is the C struct): the plugin
            // writes straight into the host's buffer.
            let decision = UnsafeMutableRawPointer(out.unsafelyUnwrapped).assumingMemoryBound(to: RateDecision.self)
            decision.pointee.raw.struct_size = UInt32(MemoryLayout<orion_rate_decision>.size)
            try target.acquire(key: PluginString(key), cost: cost, decision: &decision.pointee)
            return ORION_OK
        } catch {
            return error.write(to: err)
        }
    }
}

extension RateLimiterPlugin {
    static func makeView(_ object: AnyObject) -> RateLimiterView {
        TypedRateLimiterView(unsafeDowncast(object, to: Self.self))
    }
}
