import Foundation
import Logging
import Metrics
import OrionPluginHost
import OrionPluginSDK

/// Loads the deployment in `plugins.d/` into the registry, and reloads it while serving.
///
/// A deployment is applied whole or not at all: new instances are created (and prepared) before
/// the new snapshot is published; requests in flight finish on the instances they leased; an
/// invalid configuration changes nothing and says why.
public actor PluginRuntime {
    public nonisolated let registry: Registry
    public nonisolated let config: RuntimeConfig
    let cache: ImageCache
    let locator: PluginLocator
    let logger: Logger
    let clock: any RuntimeClock
    let metrics: any MetricsFactory
    /// Outbound HTTP for every instance (`engines.*`).
    public nonisolated let egress: HTTPEgress
    /// The services tool plugins reach through `service_call` (filled by the application).
    public nonisolated let hostServices = HostServiceDirectory()
    var preparers: [any InstancePreparer] = []
    /// Called after a plugin's destroy ran (tests and metrics count these).
    let onDestroyed: @Sendable (InstanceHandle) -> Void
    /// The last reload's outcome, for `orion plugins list` and health checks.
    public private(set) var lastReport: DeploymentReport?
    /// Deployments run one at a time: an actor is re-entrant at every `await`, and two applies
    /// interleaving could republish an instance the other had already retired and destroyed.
    private var applying = false
    private var waitingToApply: [CheckedContinuation<Void, Never>] = []

    private func beginApplying() async {
        if applying {
            await withCheckedContinuation { waitingToApply.append($0) }
        } else {
            applying = true
        }
    }

    private func endApplying() {
        if waitingToApply.isEmpty {
            applying = false
        } else {
            waitingToApply.removeFirst().resume()
        }
    }

    public init(
        config: RuntimeConfig, registry: Registry = Registry(), logger: Logger, clock: any RuntimeClock = SystemRuntimeClock(),
        locator: PluginLocator? = nil, metrics: any MetricsFactory = MetricsSystem.factory, onDestroyed: @escaping @Sendable (InstanceHandle) -> Void = { _ in }
    ) {
        self.config = config
        self.registry = registry
        self.logger = logger
        self.clock = clock
        self.metrics = metrics
        self.cache = ImageCache(directory: config.plugins.cachePath(dataDirectory: config.dataDirectory))
        self.locator = locator ?? PluginLocator(configured: config.plugins.searchPaths)
        self.onDestroyed = onDestroyed
        self.egress = HTTPEgress(config: config.engines, logger: logger)
        let imageLogger = logger
        HostAPI.setImageLogHandler { _, message in imageLogger.warning("plugin entry: \(message)") }
    }

    /// Adds a preparer run on every new instance before publication.
    public func addPreparer(_ preparer: any InstancePreparer) {
        preparers.append(preparer)
    }

    /// Reads `plugins.d/` and applies it, with the tier overrides of earlier swaps laid over it.
    @discardableResult
    public func reload(reason: String = "requested") async throws(DeploymentError) -> DeploymentReport {
        await beginApplying()
        defer { endApplying() }
        let spec: DeploymentSpec
        do {
            spec = try DeploymentSpec.load(directory: config.plugins.directory)
        } catch {
            logger.error("reload refused: invalid configuration", metadata: ["orion.reload.reason": "\(reason)", "orion.config.errors": "\(error)"])
            throw DeploymentError(reason: .invalidConfiguration(error))
        }
        return try await applyLocked(Self.overlay(spec, tierOverrides), reason: reason)
    }

    /// Tier → capability → instance ids set at run time (``swap(tier:capability:to:)``), laid over
    /// `tiers.yaml` on every reload. They are kept in `<dataDirectory>/tier-overrides.json`, read
    /// at each reload: deleting the file and reloading returns to `tiers.yaml`.
    public var tierOverrides: [String: [String: [String]]] {
        guard let data = FileManager.default.contents(atPath: overridesPath) else { return [:] }
        guard let saved = try? JSONDecoder().decode([String: [String: [String]]].self, from: data) else {
            logger.error("tier-overrides.json is not valid JSON; ignored", metadata: ["orion.path": "\(overridesPath)"])
            return [:]
        }
        return saved
    }

    var overridesPath: String { (config.dataDirectory as NSString).appendingPathComponent("tier-overrides.json") }

    static func overlay(_ spec: DeploymentSpec, _ overrides: [String: [String: [String]]]) -> DeploymentSpec {
        var spec = spec
        for index in spec.tiers.indices {
            for (capability, ids) in overrides[spec.tiers[index].name] ?? [:] {
                spec.tiers[index].capabilities[capability] = ids
            }
        }
        return spec
    }

    /// Points `tier`'s `capability` at `ids` (primary first) and applies it; the deployment checks
    /// apply (each instance must exist and provide the capability). On refusal nothing changes.
    /// Runs in the deployment lock, so concurrent swaps and reloads do not lose each other's work.
    @discardableResult
    public func swap(tier: String, capability: String, to ids: [String]) async throws(DeploymentError) -> DeploymentReport {
        await beginApplying()
        defer { endApplying() }
        func refuse(_ key: String, _ message: String, file: String) -> DeploymentError {
            DeploymentError(reason: .invalidConfiguration(ConfigErrors([ConfigError(file: file, key: key, message: message)])))
        }
        let spec: DeploymentSpec
        do {
            spec = try DeploymentSpec.load(directory: config.plugins.directory)
        } catch {
            throw DeploymentError(reason: .invalidConfiguration(error))
        }
        guard spec.tiers.contains(where: { $0.name == tier }) else {
            throw refuse("tiers.\(tier)", "no tier '\(tier)'; known: \(spec.tiers.map(\.name).sorted().joined(separator: ", "))", file: spec.tierManifestFile)
        }
        let declared = Set(spec.instances.map(\.id))
        if let missing = ids.first(where: { !declared.contains($0) }) {
            throw refuse("tiers.\(tier).\(capability)", "no instance '\(missing)' in plugins.d; declared: \(declared.sorted().joined(separator: ", "))", file: spec.tierManifestFile)
        }
        let previous = FileManager.default.contents(atPath: overridesPath)
        var next = tierOverrides
        next[tier, default: [:]][capability] = ids
        do {
            try JSONEncoder().encode(next).write(to: URL(fileURLWithPath: overridesPath), options: .atomic)
        } catch {
            throw refuse("tier-overrides.json", "cannot save the swap in \(overridesPath): \(error)", file: overridesPath)
        }
        do {
            return try await applyLocked(Self.overlay(spec, next), reason: "swap \(tier).\(capability)")
        } catch {
            // Nothing was published: put the saved overrides back as they were.
            if let previous {
                try? previous.write(to: URL(fileURLWithPath: overridesPath), options: .atomic)
            } else {
                try? FileManager.default.removeItem(atPath: overridesPath)
            }
            throw error
        }
    }

    /// Applies `spec`: loads what changed, keeps what did not, publishes atomically.
    @discardableResult
    public func apply(_ spec: DeploymentSpec, reason: String = "requested") async throws(DeploymentError) -> DeploymentReport {
        await beginApplying()
        defer { endApplying() }
        return try await applyLocked(spec, reason: reason)
    }

    /// ``apply(_:reason:)`` for a caller that holds the deployment lock.
    private func applyLocked(_ spec: DeploymentSpec, reason: String) async throws(DeploymentError) -> DeploymentReport {
        let current = registry.snapshot
        var report = DeploymentReport(generation: current.generation)
        var next: [String: InstanceHandle] = [:]
        var fresh: [InstanceHandle] = []
        var files: [String: String] = [:]

        func abandon() {
            // Nothing was published: destroy what this attempt created.
            for handle in fresh { handle.retire() }
        }

        for instanceSpec in spec.instances {
            if let first = files[instanceSpec.id] {
                let refusal = InstanceRefusal(
                    instanceID: instanceSpec.id, file: instanceSpec.file,
                    error: PluginLoadError(
                        .duplicateInstanceID,
                        "Instance id '\(instanceSpec.id)' is already declared in \(first). Give this instance another 'id', or remove one of the files."))
                logger.error("plugin instance refused", metadata: refusal.metadata)
                if instanceSpec.required {
                    abandon()
                    throw DeploymentError(reason: .requiredInstanceFailed(refusal))
                }
                report.refusals.append(refusal)
                continue
            }
            files[instanceSpec.id] = instanceSpec.file
            do throws(PluginLoadError) {
                let path = try locator.locate(instanceSpec.plugin)
                let sha = try ImageCache.sha256(ofFileAt: path)
                if let pin = instanceSpec.sha256, pin != sha {
                    throw PluginLoadError(
                        .sha256Mismatch,
                        "'\(path)' has sha256 \(sha), but the instance pins \(pin). Deploy the pinned build, or update 'sha256' after verifying the new one.",
                        path: path)
                }
                if let existing = current.instances[instanceSpec.id], existing.sha256 == sha, existing.spec.config == instanceSpec.config {
                    next[instanceSpec.id] = existing
                    report.kept.append(instanceSpec.id)
                    continue
                }
                let handle = try await create(instanceSpec, path: path, sha256: sha)
                fresh.append(handle)
                next[instanceSpec.id] = handle
                report.created.append(instanceSpec.id)
            } catch {
                let refusal = InstanceRefusal(instanceID: instanceSpec.id, file: instanceSpec.file, error: error)
                logger.error("plugin instance refused", metadata: refusal.metadata)
                if instanceSpec.required {
                    abandon()
                    throw DeploymentError(reason: .requiredInstanceFailed(refusal))
                }
                report.refusals.append(refusal)
                if let existing = current.instances[instanceSpec.id] {
                    next[instanceSpec.id] = existing
                    report.keptPrevious.append(instanceSpec.id)
                }
            }
        }

        let (tiers, mismatches, warnings) = resolveTiers(spec, instances: next)
        guard mismatches.isEmpty else {
            abandon()
            throw DeploymentError(reason: .capabilityMismatch(mismatches))
        }
        report.warnings = warnings
        report.removed = current.instances.keys.filter { next[$0] == nil }.sorted()
        let published = registry.publish(instances: next, tiers: tiers)
        report.generation = published.generation
        // Every published instance, kept ones included: a kept retriever may be behind writes made
        // by another process (`orion ingest`), and catching up a current one costs one stats call.
        for preparer in preparers { await preparer.didPublish(published.instances.values.map(\.instance)) }
        lastReport = report
        logger.info(
            "plugins deployed",
            metadata: [
                "orion.reload.reason": "\(reason)", "orion.registry.generation": "\(published.generation)",
                "orion.plugins.created": "\(report.created)", "orion.plugins.kept": "\(report.kept.count)",
                "orion.plugins.removed": "\(report.removed)", "orion.plugins.refused": "\(report.refusals.map(\.instanceID))",
            ])
        for warning in warnings { logger.warning("\(warning)") }
        return report
    }

    private func create(_ spec: InstanceSpec, path: String, sha256: String) async throws(PluginLoadError) -> InstanceHandle {
        let image = try cache.image(for: path, sha256: sha256)
        // The schema was checked when the manifest was parsed, so constructing it cannot fail here.
        let schema = try? JSONSchema(image.info.manifest.configSchema)
        let violations = schema?.violations(of: spec.config) ?? []
        guard violations.isEmpty else {
            throw PluginLoadError(
                .configRejected,
                "The config of instance '\(spec.id)' does not match plugin '\(image.info.id)' schema: \(violations.joined(separator: "; ")). Fix 'config' in \(spec.file).",
                path: path)
        }
        let services = RuntimeHostServices(instanceID: spec.id, pluginID: image.info.id, logger: logger, clock: clock, registry: registry, metrics: metrics,
            egress: egress, directory: hostServices)
        let instance = try PluginInstance(image: image, config: spec.config.jsonData, services: services)
        for preparer in preparers {
            do {
                try await preparer.prepare(instance, spec: spec)
            } catch {
                instance.destroy()
                throw PluginLoadError(.createFailed, "Instance '\(spec.id)' could not be prepared: \(error)", path: path)
            }
        }
        return InstanceHandle(spec: spec, instance: instance, loadedPath: image.path, sha256: sha256, onDestroyed: onDestroyed)
    }

    /// Core capabilities served by instances offering another one: query expansion is a chat.
    static let providedBy = ["query_expansion": "chat"]

    /// Tiers as published, capability mismatches (fatal) and warnings (a referenced instance that
    /// was refused leaves its capability short).
    private func resolveTiers(_ spec: DeploymentSpec, instances: [String: InstanceHandle]) -> ([String: Tier], [ConfigError], [String]) {
        var tiers: [String: Tier] = [:]
        var mismatches: [ConfigError] = []
        var warnings: [String] = []
        for tierSpec in spec.tiers {
            for (capability, ids) in tierSpec.capabilities.sorted(by: { $0.key < $1.key }) {
                for id in ids {
                    guard let handle = instances[id] else {
                        warnings.append("tier '\(tierSpec.name)' maps '\(capability)' to instance '\(id)', which did not load")
                        continue
                    }
                    let offered = handle.info.manifest.capabilities
                    if !offered.contains(Self.providedBy[capability] ?? capability) {
                        mismatches.append(ConfigError(
                            file: spec.tierManifestFile, line: spec.referenceLines["\(tierSpec.name).\(capability)"],
                            key: "tiers.\(tierSpec.name).capabilities.\(capability)",
                            message: "instance '\(id)' (plugin \(handle.info.id)) does not provide '\(capability)'; it provides \(offered.joined(separator: ", ")). Map '\(capability)' to an instance that provides it."))
                    }
                }
            }
            for (model, routes) in tierSpec.models.sorted(by: { $0.key < $1.key }) {
                for route in routes {
                    guard let handle = instances[route.instance] else {
                        warnings.append("tier '\(tierSpec.name)' routes model '\(model)' to instance '\(route.instance)', which did not load")
                        continue
                    }
                    let offered = handle.info.manifest.capabilities
                    if !offered.contains("chat") && !offered.contains("embeddings") {
                        mismatches.append(ConfigError(
                            file: spec.tierManifestFile, line: spec.referenceLines["\(tierSpec.name).models.\(model)"],
                            key: "tiers.\(tierSpec.name).models.\(model)",
                            message: "instance '\(route.instance)' (plugin \(handle.info.id)) is not an engine: it provides \(offered.joined(separator: ", ")). Route models to instances that provide 'chat' or 'embeddings'."))
                    }
                }
            }
            tiers[tierSpec.name] = Tier(
                name: tierSpec.name, requestsPerHour: tierSpec.requestsPerHour, costCapUSD: tierSpec.costCapUSD, capabilities: tierSpec.capabilities,
                models: tierSpec.models)
        }
        return (tiers, mismatches, warnings)
    }

    /// Retires every instance (for shutdown); each is destroyed after its last lease.
    public func shutdown() async {
        await beginApplying()
        defer { endApplying() }
        registry.publish(instances: [:], tiers: [:])
    }
}

extension InstanceRefusal {
    var metadata: Logger.Metadata {
        [
            "orion.plugin.instance": "\(instanceID)", "orion.config.file": "\(file)", "orion.plugin.refusal": "\(error.code)",
            "orion.plugin.message": "\(error.message)", "orion.plugin.cause": "\(error.cause ?? "")",
        ]
    }
}
