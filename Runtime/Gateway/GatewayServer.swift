import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import OrionCore
import Prometheus
import ServiceLifecycle

/// The HTTP gateway over an ``OrionApplication``: `orion serve` and the tests build it the same way.
///
/// Middleware, outermost first: observation (errors as JSON, security and CORS headers, metrics,
/// request records) → global in-flight limit → authentication → tenant resolution and per-tenant
/// in-flight limit → rate limits → body size → idempotency → side-effect events → the route (which
/// checks RBAC and validates its body).
public struct GatewayServer: Sendable {
    public let app: OrionApplication
    public let telemetry: GatewayTelemetry
    public let store: GatewayStore
    public let tenants: any TenantDirectory
    let verifier: TokenVerifier
    let logger: Logger
    let stream: StreamRoutes
    let events: EventRoutes

    /// Builds the gateway; `registry` receives the HTTP metrics (pass the one the plugin runtime
    /// reports into, so `/metrics` shows both).
    public static func build(app: OrionApplication, registry: PrometheusCollectorRegistry, logger: Logger) async throws -> GatewayServer {
        let config = app.config
        let store = try GatewayStore(
            path: (config.dataDirectory as NSString).appendingPathComponent("gateway.sqlite"), idempotencyTTL: config.gateway.idempotencyTTLSeconds,
            shared: app.state.idempotency)
        let tenants = app.state.tenants
        let devSecret = try TokenVerifier.developmentSecret(config: config)
        if devSecret != nil {
            logger.warning("no token key is configured: using a development secret kept in the data directory; set auth.hs256Secret, auth.publicKeyFile or auth.jwksFile before production")
        }
        let verifier = try await TokenVerifier(config: config, devSecret: devSecret)
        let gate = UpgradeGate(
            verifier: verifier, resolver: TenantResolver(tenants: tenants, registry: app.runtime.registry, config: config), rbac: config.rbac)
        let stream = StreamRoutes(
            engines: app.engines, gate: gate,
            limiter: EventLimiter(limit: config.gateway.streamEventLimit, windowSeconds: config.gateway.streamEventWindowSeconds), logger: logger)
        let events = EventRoutes(hub: app.events, gate: gate, eventsPerSecond: config.events.subscriberEventsPerSecond, rbac: config.rbac, logger: logger)
        return GatewayServer(
            app: app, telemetry: GatewayTelemetry(registry: registry, store: store, logger: logger), store: store, tenants: tenants,
            verifier: verifier, logger: logger, stream: stream, events: events)
    }

    /// The router with every middleware and route.
    public func router() -> Router<GatewayContext> {
        let config = app.config
        let router = Router(context: GatewayContext.self)
        router.add(middleware: ObservationMiddleware(cors: Set(config.gateway.corsAllowedOrigins), telemetry: telemetry, logger: logger))
        router.add(middleware: InFlightMiddleware(limit: config.gateway.maxInFlight, retryAfter: config.gateway.retryAfterSeconds))
        router.add(middleware: AuthMiddleware(verifier: verifier, publicPaths: SystemRoutes.publicPaths))
        router.add(middleware: TenantMiddleware(
            resolver: TenantResolver(tenants: tenants, registry: app.runtime.registry, config: config),
            limitPerTenant: config.gateway.maxInFlightPerTenant, retryAfter: config.gateway.retryAfterSeconds))
        router.add(middleware: RateLimitMiddleware(registry: app.runtime.registry, events: app.events, logger: logger))
        router.add(middleware: BodyLimitMiddleware(maxBytes: config.gateway.maxBodyBytes))
        router.add(middleware: IdempotencyMiddleware(store: store.idempotency))
        router.add(middleware: SideEffectMiddleware(events: app.events, audit: app.audit, node: config.instanceID))
        SystemRoutes(app: app, telemetry: telemetry, store: store, rbac: config.rbac).add(to: router)
        TenantRoutes(tenants: tenants, registry: app.runtime.registry, audit: app.audit, node: config.instanceID, rbac: config.rbac).add(to: router)
        AuditRoutes(audit: app.audit, rbac: config.rbac).add(to: router)
        MemoryRoutes(memory: app.memory, rbac: config.rbac).add(to: router)
        OpenAIRoutes(engines: app.engines, rbac: config.rbac).add(to: router)
        ChatRoutes(runs: app.runs, engines: app.engines, rbac: config.rbac).add(to: router)
        stream.add(to: router)
        events.add(to: router)
        RunRoutes(runs: app.runs, rbac: config.rbac).add(to: router)
        ToolRoutes(tools: app.tools, rbac: config.rbac).add(to: router)
        UsageRoutes(usage: app.usage, engines: app.engines, rbac: config.rbac).add(to: router)
        return router
    }

    /// The Hummingbird application on the configured host and port, serving ``router()`` (or
    /// `router`, which benches extend). `onRunning` gets the bound port (useful with port 0).
    public func application(
        router: Router<GatewayContext>? = nil, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let config = app.config
        let (stream, events) = (self.stream, self.events)
        return Application(
            router: router ?? self.router(),
            server: .http1WebSocketUpgrade { request, channel, _ in
                // A refused upgrade falls through to the HTTP route, which answers 401/403 or 426.
                switch UpgradeGate.path(request) {
                case StreamRoutes.path: await stream.shouldUpgrade(request, channel)
                case EventRoutes.wsPath: await events.shouldUpgrade(request, channel)
                default: .dontUpgrade
                }
            },
            configuration: .init(address: .hostname(config.gateway.host, port: config.gateway.port), serverName: nil),
            services: [telemetry],
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
