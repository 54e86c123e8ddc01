import ArgumentParser
import Foundation
import Logging
import Metrics
import OrionCore
import OrionGateway
import Prometheus

@main
struct Orion: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orion",
        abstract: "A plugin runtime for AI-agent platforms.",
        subcommands: [
            Serve.self, TokenCommand.self, Plugins.self, ConfigCommand.self, Ingest.self, Search.self, CostCommand.self, ConnectorsCommand.self,
            AuditCommand.self, StoreCommand.self, Bench.self,
        ],
        defaultSubcommand: Serve.self)
}

/// Options every command that reads the deployment shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The runtime configuration file (default: $ORION_CONFIG, else ./orion.yaml if present, else built-in defaults).")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default: $ORION_LOG_LEVEL or info).")
    var logLevel: String?

    /// The environment, read once here and passed down.
    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var configFile: String? {
        if let config { return config }
        if let fromEnv = environment["ORION_CONFIG"], !fromEnv.isEmpty { return fromEnv }
        return FileManager.default.fileExists(atPath: "orion.yaml") ? "orion.yaml" : nil
    }

    func loadConfig() throws -> RuntimeConfig {
        do {
            return try RuntimeConfig.load(file: configFile, environment: environment)
        } catch {
            throw ValidationError("invalid runtime configuration:\n\(error)")
        }
    }

    /// The configuration and a plugin runtime for a one-shot command, logging at `level` and above.
    func makeRuntime(logLevel level: Logger.Level) throws -> (RuntimeConfig, Logger, PluginRuntime) {
        let config = try loadConfig()
        var logger = makeLogger()
        logger.logLevel = level
        return (config, logger, PluginRuntime(config: config, logger: logger))
    }

    /// For a bench: the configuration with its data (documents, workspaces) moved to a fresh
    /// temporary directory, which the caller removes; and a logger that reports errors only.
    func benchDeployment() throws -> (config: RuntimeConfig, logger: Logger, scratch: String) {
        var config = try loadConfig()
        var logger = makeLogger()
        logger.logLevel = .error
        let scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent("orion-bench-\(UUID().uuidString)")
        config.dataDirectory = scratch
        config.workspaceBasePath = (scratch as NSString).appendingPathComponent("workspaces")
        config.documentStorePath = (scratch as NSString).appendingPathComponent("documents.sqlite")
        // A bench never writes into the deployment's own usage records.
        config.telemetry.usageDBPath = (scratch as NSString).appendingPathComponent("usage.db")
        return (config, logger, scratch)
    }

    func makeLogger(label: String = "orion") -> Logger {
        let level = Logger.Level(rawValue: (logLevel ?? environment["ORION_LOG_LEVEL"] ?? "info").lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

/// `orion serve`: loads the deployment and serves until SIGTERM/SIGINT; reloads on SIGHUP and
/// on changes in plugins.d/.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server on the configured deployment.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.loadConfig()
        let logger = options.makeLogger()
        // One Prometheus registry for the plugin runtime's metrics and the gateway's.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let app: OrionApplication
        let gateway: GatewayServer
        do {
            app = try await OrionApplication.build(config: config, logger: logger)
            gateway = try await GatewayServer.build(app: app, registry: registry, logger: logger)
        } catch {
            logger.critical("start-up failed: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        for refusal in app.startupReport.refusals {
            logger.error("plugin instance not loaded: \(refusal)")
        }
        logger.notice(
            "orion serving",
            metadata: [
                "orion.instance": "\(config.instanceID)", "orion.environment": "\(config.environment.rawValue)",
                "orion.plugins.loaded": "\(app.runtime.registry.snapshot.instances.count)",
                "orion.plugins.directory": "\(config.plugins.directory)",
                "orion.listen": "\(config.gateway.host):\(config.gateway.port)",
            ])
        try await app.run(with: [gateway.application()])
        logger.notice("orion stopped")
    }
}
