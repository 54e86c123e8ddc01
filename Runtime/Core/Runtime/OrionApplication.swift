import Foundation
import Synchronization
import Logging
import ServiceLifecycle
import UnixSignals

/// The runtime as one runnable unit: plugins loaded from `plugins.d/`, the reload service, and
/// (from the gateway) the HTTP server. `orion serve` and the tests build it the same way.
public struct OrionApplication: Sendable {
    public let config: RuntimeConfig
    public let runtime: PluginRuntime
    /// The document store and the retrievers kept in step with it.
    public let documents: DocumentIndex
    /// Agent memory over the document store, and the runner every run and chat goes through.
    public let memory: MemoryBank
    public let runs: RunRunner
    /// Engine-call records (`telemetry.usageDbPath`); nil when `telemetry.enabled` is off. Its
    /// writer runs as one of ``services`` and flushes at graceful shutdown.
    public let usage: UsageTracker?
    /// Tenants, usage records, budgets and idempotency keys: SQLite files on one node, or the
    /// PostgreSQL database every node shares (`store.*`).
    public let state: SharedState
    /// Changes made through the API, written to ``state``'s audit store; its writer is one of ``services``.
    public let audit: AuditTrail
    /// Chat and embeddings through the tiers' engines, with budgets, breakers and usage records.
    public let engines: ChatEngines
    /// Lifecycle events to connectors and live subscribers.
    public let events: EventHub
    /// Tool calls through the tiers' tool instances.
    public let tools: ToolCalls
    /// Health snapshots (`health.*`); its sampler runs as one of ``services``.
    public let health: HealthHistory
    public let startupReport: DeploymentReport
    public var services: [any Service]
    let logger: Logger

    /// Loads the deployment (`plugins.d`, or `deployment` when given, as benches do). Throws when the configuration is invalid or a `required` instance
    /// fails; other refusals are in ``startupReport``.
    public static func build(
        config: RuntimeConfig, logger: Logger, clock: any RuntimeClock = SystemRuntimeClock(), deployment: DeploymentSpec? = nil
    ) async throws -> OrionApplication {
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        let runtime = PluginRuntime(config: config, logger: logger, clock: clock)
        let documents = DocumentIndex(store: try DocumentStore(path: config.resolvedDocumentStorePath), registry: runtime.registry, logger: logger)
        await runtime.addPreparer(documents)
        let report: DeploymentReport
        if let deployment {
            report = try await runtime.apply(deployment, reason: "start-up")
        } else {
            report = try await runtime.reload(reason: "start-up")
        }
        let interval = config.plugins.watchIntervalSeconds > 0 ? Duration.milliseconds(Int64(config.plugins.watchIntervalSeconds * 1000)) : nil
        let reloader = PluginReloadService(runtime: runtime, interval: interval, logger: logger)
        let state = try await SharedState.open(config: config, logger: logger)
        logger.info("shared state opened", metadata: ["orion.store": "\(state.backend)"])
        let usage = state.usage.map { UsageTracker(store: $0, logger: logger) }
        let audit = AuditTrail(store: state.audit, retentionDays: config.store.auditRetentionDays, logger: logger)
        let events = EventHub(registry: runtime.registry, config: config, logger: logger)
        let engines = ChatEngines(registry: runtime.registry, usage: usage, shared: state.budgets, config: config, logger: logger, events: events)
        let memory = MemoryBank(
            documents: documents, policy: config.memory.policy, learns: config.memory.memrlEnabled,
            allowsFusion: config.memory.hybridSearchEnabled,
            expander: config.memory.queryExpansionEnabled ? EngineQueryExpander(engines: engines, logger: logger) : nil)
        let runs = RunRunner(memory: memory, events: events, node: config.instanceID, store: state.runs, logger: logger)
        let interrupted = try await runs.closeInterrupted()
        if interrupted > 0 { logger.warning("closed runs the last process left running", metadata: ["orion.runs": "\(interrupted)"]) }
        MemoryService.register(on: runtime.hostServices, memory: memory)
        let tools = ToolCalls(registry: runtime.registry, runs: runs, services: runtime.hostServices, config: config, logger: logger)
        let sampler = HealthSampler()
        let health = try HealthHistory(
            path: (config.dataDirectory as NSString).appendingPathComponent("health.sqlite"), config: config, logger: logger
        ) { await sampler.sample() }
        let app = OrionApplication(
            config: config, runtime: runtime, documents: documents, memory: memory, runs: runs, usage: usage, state: state, audit: audit, engines: engines,
            events: events, tools: tools, health: health, startupReport: report,
            // The store's services come first, so they stop last (after the usage writer's last flush).
            services: state.services + [reloader, health, audit] + (usage.map { [$0] } ?? []), logger: logger)
        sampler.app.withLock { $0 = app }
        return app
    }

    /// Runs every service (and `more`, e.g. the HTTP gateway) until SIGTERM or SIGINT, then shuts
    /// down gracefully — the gateway stops accepting, finishes requests in flight and flushes its
    /// records — and retires every plugin instance.
    public func run(with more: [any Service] = []) async throws {
        let group = ServiceGroup(
            configuration: .init(
                // Reverse order at shutdown: live event streams end first, then the gateway finishes its requests.
                services: (services + more + [EventStreamCloser(hub: events)]).map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        // Events already queued reach their connectors before the plugins are retired.
        await events.connectors.shutdown()
        await runtime.shutdown()
    }
}

/// Lets the health service sample the application it is part of (built after it).
final class HealthSampler: Sendable {
    let app = Mutex<OrionApplication?>(nil)
    func sample() async -> [String: Any] {
        guard let app = app.withLock({ $0 }) else { return [:] }
        return await app.healthSample()
    }
}
