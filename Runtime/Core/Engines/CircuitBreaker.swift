import Metrics
import Synchronization

/// One engine instance's circuit breaker, as a value: closed (counting consecutive failures),
/// open (refusing until a moment), half-open (one trial call in flight decides).
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case closed(consecutiveFailures: Int)
        case open(until: Int64)
        case halfOpen
    }

    public private(set) var state: State = .closed(consecutiveFailures: 0)
    /// Consecutive failures that open the breaker.
    public let failureThreshold: Int
    /// Nanoseconds an open breaker waits before a trial call.
    public let openNanoseconds: Int64

    public init(failureThreshold: Int, openNanoseconds: Int64) {
        self.failureThreshold = max(1, failureThreshold)
        self.openNanoseconds = openNanoseconds
    }

    /// Whether a call may go through at `now` (monotonic ns). An open breaker whose wait is over
    /// lets exactly one trial call through and becomes half-open; others are refused meanwhile.
    public mutating func permit(now: Int64) -> Bool {
        switch state {
        case .closed: return true
        case .open(let until):
            guard now >= until else { return false }
            state = .halfOpen
            return true
        case .halfOpen: return false
        }
    }

    /// The outcome of a permitted call.
    public mutating func record(success: Bool, now: Int64) {
        switch (state, success) {
        case (_, true):
            state = .closed(consecutiveFailures: 0)
        case (.closed(let failures), false):
            state = failures + 1 >= failureThreshold ? .open(until: now + openNanoseconds) : .closed(consecutiveFailures: failures + 1)
        case (.halfOpen, false), (.open, false):
            state = .open(until: now + openNanoseconds)
        }
    }

    /// `closed`, `open` or `half_open`, for metrics and the admin API.
    public var stateName: String {
        switch state {
        case .closed: "closed"
        case .open: "open"
        case .halfOpen: "half_open"
        }
    }
}

/// The breakers of every engine instance, by instance id. A breaker is created on first use;
/// transitions are counted (`orion_engine_breaker_transitions_total{instance,state}`).
public final class EngineBreakers: Sendable {
    private let breakers = Mutex<[String: CircuitBreaker]>([:])
    let failureThreshold: Int
    let openNanoseconds: Int64
    let clock: @Sendable () -> Int64
    /// The counter of state changes (tools keep their own).
    let metric: String

    public init(
        failureThreshold: Int, openSeconds: Double, metric: String = "orion_engine_breaker_transitions_total",
        clock: @escaping @Sendable () -> Int64 = SystemRuntimeClock().monotonicNanoseconds
    ) {
        self.metric = metric
        self.failureThreshold = failureThreshold
        self.openNanoseconds = Int64(openSeconds * 1_000_000_000)
        self.clock = clock
    }

    public func permit(_ instance: String) -> Bool {
        let now = clock()
        return transition(instance) { $0.permit(now: now) }
    }

    public func record(_ instance: String, success: Bool) {
        let now = clock()
        transition(instance) { $0.record(success: success, now: now) }
    }

    /// The breaker state name of `instance` (`closed` when it has none yet).
    public func state(of instance: String) -> String {
        breakers.withLock { $0[instance]?.stateName ?? "closed" }
    }

    /// Every breaker's state, by instance.
    public var states: [String: String] { breakers.withLock { $0.mapValues(\.stateName) } }

    @discardableResult
    private func transition<R>(_ instance: String, _ change: (inout CircuitBreaker) -> R) -> R {
        let (result, before, after) = breakers.withLock { all in
            var breaker = all[instance] ?? CircuitBreaker(failureThreshold: failureThreshold, openNanoseconds: openNanoseconds)
            let before = breaker.stateName
            let result = change(&breaker)
            all[instance] = breaker
            return (result, before, breaker.stateName)
        }
        if before != after {
            Counter(label: metric, dimensions: [("instance", instance), ("state", after)]).increment()
        }
        return result
    }
}
