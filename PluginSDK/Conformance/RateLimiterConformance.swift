import Foundation
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// Conformance checks every rate limiter must pass, whatever its algorithm.
public struct RateLimiterConformance: Sendable {
    public let instance: PluginInstance

    public init(instance: PluginInstance) { self.instance = instance }

    public func run() -> ConformanceReport {
        var list = CheckList()
        guard let limiter = instance.rateLimiter else {
            list.check("provides a rate limiter table", false, "the plugin declares no rate limiter")
            return ConformanceReport(pluginID: instance.image.info.id, kind: .rateLimiter, checks: list.checks)
        }
        let key = "conformance|\(UUID().uuidString)"
        if let first = list.expectNoThrow("admits the first request of a new key", { try limiter.acquire(key: key, cost: 1) }) {
            list.check("first request is allowed", first.allowed, "a fresh key was refused")
            list.check("limit is positive", first.limit > 0, "limit = \(first.limit)")
            list.check("remaining within [0, limit)", first.remaining >= 0 && first.remaining < first.limit, "remaining = \(first.remaining), limit = \(first.limit)")
            list.check("no retry-after when allowed", first.retryAfterNanoseconds == 0, "retry-after = \(first.retryAfterNanoseconds)")

            // Exhaust the key: a refusal must come within `limit` more requests and say when to retry.
            let bound = min(first.limit, 100_000)
            var refused: RateDecision?
            var calls: Int64 = 0
            while calls <= bound, refused == nil, let decision = try? limiter.acquire(key: key, cost: 1) {
                calls += 1
                if !decision.allowed { refused = decision }
            }
            if let refused {
                list.check("a refusal carries retry-after > 0", refused.retryAfterNanoseconds > 0, "retry-after = \(refused.retryAfterNanoseconds)")
                list.check("a refusal reports remaining 0", refused.remaining == 0, "remaining = \(refused.remaining)")
            } else {
                list.check("refuses once the limit is used up", false, "no refusal within \(bound + 1) requests")
            }
            let other = try? limiter.acquire(key: key + "|other", cost: 1)
            list.check("keys are independent", other?.allowed == true, "a fresh key was refused after another key was exhausted")
        }
        let invalid = Result { try limiter.acquire(key: key, cost: 0) }
        if case .failure(let error) = invalid, let pluginError = error as? PluginError {
            list.check("cost 0 is invalid-argument", pluginError.code == .invalidArgument, "got \(pluginError.code)")
            list.check("the error has a message", !pluginError.message.isEmpty, "empty message")
        } else {
            list.check("cost 0 is refused with an error", false, "acquire(cost: 0) did not fail")
        }
        // Concurrent callers on shared keys: every call returns, none fails.
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in 0..<2_000 {
                if (try? limiter.acquire(key: "conformance|shared|\(i % 7)|\(key)", cost: 1)) == nil {
                    failures.add(1, ordering: .relaxed)
                }
                _ = worker
            }
        }
        list.check("8,000 concurrent calls from 4 threads all return", failures.load(ordering: .relaxed) == 0, "\(failures.load(ordering: .relaxed)) calls failed")
        return ConformanceReport(pluginID: instance.image.info.id, kind: .rateLimiter, checks: list.checks)
    }
}
