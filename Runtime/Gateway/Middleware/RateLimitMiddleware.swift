import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OrionCore
import OrionPluginSDK
import Synchronization

/// Rate limits through the tenant tier's limiter plugins (docs/rate-limit-policy.md).
///
/// - `rate_limit`: the per-request policy, keyed `tenant|ip|method|route` (the route pattern, so
///   ids in paths do not make new keys);
/// - `quota` (optional): the tier's requests-per-hour quota, keyed by tenant.
///
/// A refusal is 429 `{"code":"RATE_LIMITED","retryAfterMs":…}` with `Retry-After`; every answer
/// carries `RateLimit-Policy` and `RateLimit` (the IETF draft's structured fields). A limiter that
/// fails lets the request through and is logged: an outage of the limiter is not an outage of the API.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let registry: Registry
    /// Receives a `rate_limited` event per refusal.
    let events: EventHub
    let logger: Logger
    /// Tiers already warned about a quota that disagrees with their `requestsPerHour`.
    let warned = FirstTime()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let tenant = context.tenant else { return try await next(request, context) }
        var policies: [String] = []
        var states: [String] = []
        let checks = [
            ("http", "rate_limit", "\(tenant.tenant.id)|\(context.remoteIP)|\(request.method.rawValue)|\(context.route)"),
            ("quota", "quota", tenant.tenant.id),
        ]
        for (name, capability, key) in checks {
            guard let decision = decide(tier: tenant.tier, capability: capability, key: key) else { continue }
            if name == "quota", decision.limit != tenant.tier.requestsPerHour || decision.windowNanoseconds != 3_600_000_000_000 {
                if warned.check(tenant.tier.name) {
                    logger.warning(
                        "the tier's quota limiter does not enforce its requestsPerHour; the limiter's policy applies",
                        metadata: [
                            "orion.tier": "\(tenant.tier.name)", "orion.requestsPerHour": "\(tenant.tier.requestsPerHour)",
                            "orion.limiter.limit": "\(decision.limit)", "orion.limiter.windowSeconds": "\(decision.windowNanoseconds / 1_000_000_000)",
                        ])
                }
            }
            let window = max(1, Int((Double(decision.windowNanoseconds) / 1e9).rounded()))
            let reset = Int((Double(decision.resetNanoseconds) / 1e9).rounded(.up))
            policies.append("\"\(name)\";q=\(decision.limit);w=\(window)")
            states.append("\"\(name)\";r=\(max(0, decision.remaining));t=\(max(0, reset))")
            if !decision.allowed {
                let retryMs = max(1, (decision.retryAfterNanoseconds + 999_999) / 1_000_000)
                events.publish(
                    .rateLimited, tenantID: tenant.tenant.id, tier: tenant.tier.name,
                    payload: [
                        "policy": name, "method": request.method.rawValue, "route": context.route, "user": context.identity?.userID ?? "unknown",
                        "retryAfterMs": retryMs,
                    ])
                var headers: HTTPFields = [.retryAfter: String((retryMs + 999) / 1000)]
                headers[HTTPField.Name("RateLimit-Policy")!] = policies.joined(separator: ", ")
                headers[HTTPField.Name("RateLimit")!] = states.joined(separator: ", ")
                throw GatewayError(
                    .tooManyRequests, code: "RATE_LIMITED",
                    name == "quota" ? "the tenant's hourly request quota is used up" : "too many requests for this route; slow down",
                    headers: headers, extra: ["retryAfterMs": retryMs], violation: "rate")
            }
        }
        guard !policies.isEmpty else { return try await next(request, context) }
        var headers: HTTPFields = [:]
        headers[HTTPField.Name("RateLimit-Policy")!] = policies.joined(separator: ", ")
        headers[HTTPField.Name("RateLimit")!] = states.joined(separator: ", ")
        // Refusals further in carry the remaining budget too.
        do {
            var response = try await next(request, context)
            response.headers.append(contentsOf: headers)
            return response
        } catch var error as GatewayError {
            error.headers.append(contentsOf: headers)
            throw error
        } catch let error as any HTTPResponseError {
            throw GatewayError(
                error.status, code: ObservationMiddleware.code(for: error.status), ObservationMiddleware.message(for: error.status, error),
                headers: headers)
        }
    }

    func decide(tier: Tier, capability: String, key: String) -> RateDecision? {
        guard tier.capabilities[capability]?.isEmpty == false else { return nil }
        do {
            let lease = try registry.lease(tier: tier.name, capability: capability, kind: .rateLimiter)
            defer { lease.release() }
            guard let limiter = lease.rateLimiter else { return nil }
            return try PluginCallMetrics.measure(instance: lease.handle.id, operation: "acquire") { () throws(PluginError) in try limiter.acquire(key: key) }
        } catch {
            logger.error("rate limiter failed; request let through", metadata: ["orion.tier": "\(tier.name)", "orion.capability": "\(capability)", "orion.error": "\(error)"])
            return nil
        }
    }
}

/// Keys seen so far: `check` is true the first time only.
final class FirstTime: Sendable {
    private let seen = Mutex<Set<String>>([])
    func check(_ key: String) -> Bool { seen.withLock { $0.insert(key).inserted } }
}
