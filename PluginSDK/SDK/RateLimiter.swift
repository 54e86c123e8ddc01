import OrionPluginABI

/// A rate limiter: admits or refuses `cost` units for a key.
public protocol RateLimiterPlugin: AnyObject, Sendable {
    /// Admits or refuses `cost` (≥ 1) units for `key`. Called concurrently from any thread.
    func acquire(key: PluginString, cost: Int64) throws(PluginError) -> RateDecision
}

/// The outcome of one ``RateLimiterPlugin/acquire(key:cost:)``.
public struct RateDecision: Sendable, Hashable {
    public var allowed: Bool
    /// The burst capacity, in cost units.
    public var limit: Int64
    /// Units that could still be admitted right now.
    public var remaining: Int64
    /// When refused: the wait before the same request can be admitted. Zero when allowed.
    public var retryAfterNanoseconds: Int64
    /// Time until the key is back to full capacity.
    public var resetNanoseconds: Int64
    /// The policy's window, for the `RateLimit-Policy` header.
    public var windowNanoseconds: Int64

    public init(
        allowed: Bool, limit: Int64, remaining: Int64, retryAfterNanoseconds: Int64 = 0,
        resetNanoseconds: Int64 = 0, windowNanoseconds: Int64 = 0
    ) {
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.retryAfterNanoseconds = retryAfterNanoseconds
        self.resetNanoseconds = resetNanoseconds
        self.windowNanoseconds = windowNanoseconds
    }

    /// Reads a decision written by a plugin.
    public init(_ raw: orion_rate_decision) {
        self.init(
            allowed: raw.allowed != 0, limit: raw.limit, remaining: raw.remaining,
            retryAfterNanoseconds: raw.retry_after_ns, resetNanoseconds: raw.reset_ns,
            windowNanoseconds: raw.window_ns)
    }

    /// The C representation.
    @inlinable
    public var raw: orion_rate_decision {
        orion_rate_decision(
            struct_size: UInt32(MemoryLayout<orion_rate_decision>.size), allowed: allowed ? 1 : 0,
            limit: limit, remaining: remaining, retry_after_ns: retryAfterNanoseconds,
            reset_ns: resetNanoseconds, window_ns: windowNanoseconds)
    }
}
