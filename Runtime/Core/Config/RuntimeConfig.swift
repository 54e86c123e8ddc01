import Foundation

/// The runtime configuration (`orion.yaml`), with environment overrides.
///
/// Precedence: environment variable > file > default. Relative paths are resolved against the
/// directory of the configuration file (or the working directory when there is no file).
///
/// - Configuration keys (YAML key — environment variable — type, default):
///   - `instanceId` — `ORION_INSTANCE_ID` — string, `orion-local`. Required in production.
///   - `environment` — `ORION_ENVIRONMENT` — `development` | `staging` | `production`, `development`.
///   - `dataDirectory` — `ORION_DATA_DIR` — path, `data`. Required in production.
///   - `multiTenant.enabled` — `MULTI_TENANT_ENABLED` — bool, `true`. Off: one personal tenant per user.
///   - `workspace.basePath` — `WORKSPACE_BASE_PATH` — path, `data/workspaces`. Required in production.
///   - `telemetry.enabled` — `TELEMETRY_ENABLED` — bool, `true`. Off: engine calls are not recorded.
///   - `telemetry.usageDbPath` — `USAGE_DB_PATH` — path, `<dataDirectory>/usage.db`: engine-call
///     records (UsageTracker), written when `telemetry.enabled`. Required in production.
///   - `telemetry.defaultCostCapUsd` — `COST_CAP_USD` — number ≥ 0, `0.50`.
///   - `telemetry.alertThreshold` — `COST_ALERT_THRESHOLD` — number in (0, 1], `0.8`.
///   - `memory.*` — see ``RuntimeConfig/Memory`` (MemoryConfig.swift).
///   - `gateway.*`, `auth.*`, `rbac.roles` — see GatewayConfig.swift.
///   - `engines.*` — see ``RuntimeConfig/Engines`` (EngineConfig.swift).
///   - `events.*`, `tools.*`, `health.*` — see EventsConfig.swift.
///   - `store.*` — where shared state lives (SQLite or PostgreSQL); see StoreConfig.swift.
///   - `rateLimits.requestsPerHour` — `RATE_LIMIT_REQUESTS_PER_HOUR` — integer ≥ 1, `120`.
///   - `rateLimits.maxConcurrentSessions` — `MAX_CONCURRENT_SESSIONS` — integer ≥ 1, `10`.
///   - `plugins.directory` — `ORION_PLUGINS_D` — path, `plugins.d`.
///   - `plugins.searchPaths` — `ORION_PLUGIN_PATH` (colon-separated) — paths, `[]`; the `orion`
///     executable's directory is always searched last.
///   - `plugins.cacheDirectory` — `ORION_PLUGIN_CACHE` — path, `<dataDirectory>/plugin-cache`.
///   - `plugins.watchIntervalSeconds` — `ORION_PLUGINS_WATCH_INTERVAL` — number ≥ 0, `2` (0 = off).
///   - `plugins.defaultTier` — `ORION_DEFAULT_TIER` — tier name, `free`.
///   - `documents.path` — `ORION_DOCUMENTS_PATH` — path, `<dataDirectory>/documents.sqlite`: the
///     document store every retriever is filled from.
public struct RuntimeConfig: Sendable, Equatable {
    public enum Environment: String, Sendable, CaseIterable { case development, staging, production }

    public var instanceID = "orion-local"
    public var environment = Environment.development
    public var dataDirectory = "data"
    public var multiTenantEnabled = true
    public var workspaceBasePath = "data/workspaces"
    public var telemetry = Telemetry()
    public var memory = Memory()
    public var rateLimits = RateLimits()
    public var plugins = Plugins()
    public var gateway = Gateway()
    public var auth = Auth()
    public var rbac = RBAC()
    public var engines = Engines()
    public var events = Events()
    public var tools = Tools()
    public var health = Health()
    public var store = Store()
    /// The document store file; nil means `<dataDirectory>/documents.sqlite`.
    public var documentStorePath: String?
    /// Where the configuration came from, for messages (`defaults` without a file).
    public var source = "defaults"

    public struct Telemetry: Sendable, Equatable {
        public var enabled = true
        /// nil: `<dataDirectory>/usage.db` (see ``RuntimeConfig/resolvedUsageDBPath``).
        public var usageDBPath: String?
        public var defaultCostCapUSD = 0.50
        public var alertThreshold = 0.8
    }

    public struct RateLimits: Sendable, Equatable {
        public var requestsPerHour = 120
        public var maxConcurrentSessions = 10
    }

    public struct Plugins: Sendable, Equatable {
        public var directory = "plugins.d"
        public var searchPaths: [String] = []
        public var cacheDirectory: String?
        public var watchIntervalSeconds = 2.0
        public var defaultTier = "free"

        /// The plugin copy cache, defaulting under the data directory.
        public func cachePath(dataDirectory: String) -> String {
            cacheDirectory ?? (dataDirectory as NSString).appendingPathComponent("plugin-cache")
        }
    }

    public init() {}

    /// The document store file.
    /// The usage records' SQLite file.
    public var resolvedUsageDBPath: String {
        telemetry.usageDBPath ?? (dataDirectory as NSString).appendingPathComponent("usage.db")
    }

    public var resolvedDocumentStorePath: String {
        documentStorePath ?? (dataDirectory as NSString).appendingPathComponent("documents.sqlite")
    }
}

extension RuntimeConfig {
    /// One overridable setting: where it lives in YAML, its environment variable, and how to apply it.
    struct Key: Sendable {
        let path: String
        let env: String
        let requiredInProduction: Bool
        let apply: @Sendable (inout RuntimeConfig, ConfigNode, String) throws(ConfigError) -> Void
    }

    /// Loads `file` (nil = defaults only), then applies `environment` overrides and validates.
    public static func load(file: String?, environment: [String: String]) throws(ConfigErrors) -> RuntimeConfig {
        var config = RuntimeConfig()
        var errors: [ConfigError] = []
        var root = ConfigNode(file: "defaults", path: "", line: nil, value: .mapping([]))
        var baseDirectory = FileManager.default.currentDirectoryPath
        if let file {
            do {
                root = try ConfigNode.load(file).requireMapping()
                config.source = file
                baseDirectory = ((file as NSString).deletingLastPathComponent as String)
                if baseDirectory.isEmpty { baseDirectory = FileManager.default.currentDirectoryPath }
            } catch {
                throw ConfigErrors([error])
            }
        }
        do {
            try root.rejectUnknownKeys(["instanceId", "environment", "dataDirectory", "multiTenant", "workspace", "telemetry", "memory", "rateLimits", "plugins", "documents", "gateway", "auth", "rbac", "engines", "events", "tools", "health", "store"])
            try root.mapping("documents").rejectUnknownKeys(["path"])
            try root.mapping("multiTenant").rejectUnknownKeys(["enabled"])
            try root.mapping("workspace").rejectUnknownKeys(["basePath"])
            try root.mapping("telemetry").rejectUnknownKeys(["enabled", "usageDbPath", "defaultCostCapUsd", "alertThreshold"])
            try root.mapping("memory").rejectUnknownKeys(memoryKeyNames)
            try root.mapping("gateway").rejectUnknownKeys(gatewayKeyNames)
            try root.mapping("auth").rejectUnknownKeys(authKeyNames)
            try root.mapping("rbac").rejectUnknownKeys(["roles"])
            try root.mapping("engines").rejectUnknownKeys(engineKeyNames)
            try root.mapping("events").rejectUnknownKeys(eventKeyNames)
            try root.mapping("tools").rejectUnknownKeys(toolKeyNames)
            try root.mapping("health").rejectUnknownKeys(healthKeyNames)
            try root.mapping("store").rejectUnknownKeys(storeKeyNames)
            try root.mapping("rateLimits").rejectUnknownKeys(["requestsPerHour", "maxConcurrentSessions"])
            try root.mapping("plugins").rejectUnknownKeys(["directory", "searchPaths", "cacheDirectory", "watchIntervalSeconds", "defaultTier"])
        } catch {
            errors.append(error)
        }

        var explicitlySet = Set<String>()
        for key in keys {
            do {
                if let raw = environment[key.env], !raw.isEmpty {
                    // An environment value is parsed as YAML so `true`, `120` and `0.5` get their types.
                    let node = try ConfigNode.parse("v: \(yamlQuoted(raw))", file: "environment variable \(key.env)")
                    let scalar = ConfigNode(file: "environment variable \(key.env)", path: key.path, line: nil, value: node["v"]?.value ?? .null)
                    try key.apply(&config, scalar, key.env)
                    explicitlySet.insert(key.path)
                } else if let node = root.lookup(key.path) {
                    try key.apply(&config, node, key.env)
                    explicitlySet.insert(key.path)
                }
            } catch {
                errors.append(error)
            }
        }
        if config.environment == .production {
            for key in keys where key.requiredInProduction && !explicitlySet.contains(key.path) {
                errors.append(ConfigError(
                    file: config.source, key: key.path,
                    message: "is required in production; set it in the file or with \(key.env)"))
            }
        }
        if errors.isEmpty { errors += config.memoryErrors() + config.gatewayErrors() }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        config.resolvePaths(relativeTo: baseDirectory)
        return config
    }

    /// A raw environment value as a YAML scalar: numbers and booleans stay typed, text is quoted.
    private static func yamlQuoted(_ raw: String) -> String {
        let lower = raw.lowercased()
        if ["true", "false"].contains(lower) || Double(raw) != nil { return raw }
        return "'" + raw.replacingOccurrences(of: "'", with: "''") + "'"
    }

    mutating func resolvePaths(relativeTo base: String) {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : (base as NSString).appendingPathComponent(path)
        }
        dataDirectory = resolve(dataDirectory)
        workspaceBasePath = resolve(workspaceBasePath)
        telemetry.usageDBPath = telemetry.usageDBPath.map(resolve)
        plugins.directory = resolve(plugins.directory)
        plugins.searchPaths = plugins.searchPaths.map(resolve)
        plugins.cacheDirectory = plugins.cacheDirectory.map(resolve)
        documentStorePath = documentStorePath.map(resolve)
        events.deadLetterDirectory = events.deadLetterDirectory.map(resolve)
        auth.publicKeyFile = auth.publicKeyFile.map(resolve)
        auth.jwksFile = auth.jwksFile.map(resolve)
    }

    /// Every key: the ones below, the memory keys (MemoryConfig.swift) and the gateway keys (GatewayConfig.swift).
    static var keys: [Key] { coreKeys + memoryKeys + gatewayKeys + engineKeys + eventKeys + storeKeys }

    static let coreKeys: [Key] = [
        Key(path: "instanceId", env: "ORION_INSTANCE_ID", requiredInProduction: true) { c, n, _ throws(ConfigError) in
            c.instanceID = try n.nonEmptyString()
        },
        Key(path: "environment", env: "ORION_ENVIRONMENT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let text = try n.nonEmptyString()
            guard let value = Environment(rawValue: text) else {
                throw n.error("must be one of development, staging, production; got '\(text)'")
            }
            c.environment = value
        },
        Key(path: "dataDirectory", env: "ORION_DATA_DIR", requiredInProduction: true) { c, n, _ throws(ConfigError) in
            c.dataDirectory = try n.nonEmptyString()
        },
        Key(path: "multiTenant.enabled", env: "MULTI_TENANT_ENABLED", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.multiTenantEnabled = try n.boolValue()
        },
        Key(path: "workspace.basePath", env: "WORKSPACE_BASE_PATH", requiredInProduction: true) { c, n, _ throws(ConfigError) in
            c.workspaceBasePath = try n.nonEmptyString()
        },
        Key(path: "telemetry.enabled", env: "TELEMETRY_ENABLED", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.telemetry.enabled = try n.boolValue()
        },
        Key(path: "telemetry.usageDbPath", env: "USAGE_DB_PATH", requiredInProduction: true) { c, n, _ throws(ConfigError) in
            c.telemetry.usageDBPath = try n.nonEmptyString()
        },
        Key(path: "telemetry.defaultCostCapUsd", env: "COST_CAP_USD", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.telemetry.defaultCostCapUSD = try n.number(in: 0...1_000_000, "a cost in USD ≥ 0")
        },
        Key(path: "telemetry.alertThreshold", env: "COST_ALERT_THRESHOLD", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.telemetry.alertThreshold = try n.number(in: 0.000_001...1, "a fraction in (0, 1], e.g. 0.8")
        },
        Key(path: "rateLimits.requestsPerHour", env: "RATE_LIMIT_REQUESTS_PER_HOUR", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.rateLimits.requestsPerHour = try n.integer(atLeast: 1)
        },
        Key(path: "rateLimits.maxConcurrentSessions", env: "MAX_CONCURRENT_SESSIONS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.rateLimits.maxConcurrentSessions = try n.integer(atLeast: 1)
        },
        Key(path: "plugins.directory", env: "ORION_PLUGINS_D", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.plugins.directory = try n.nonEmptyString()
        },
        Key(path: "plugins.searchPaths", env: "ORION_PLUGIN_PATH", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            if let text = n.scalarText {
                c.plugins.searchPaths = text.split(separator: ":").map(String.init)
            } else {
                c.plugins.searchPaths = try n.stringList()
            }
        },
        Key(path: "plugins.cacheDirectory", env: "ORION_PLUGIN_CACHE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.plugins.cacheDirectory = try n.nonEmptyString()
        },
        Key(path: "plugins.watchIntervalSeconds", env: "ORION_PLUGINS_WATCH_INTERVAL", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let seconds = try n.number(in: 0...3600, "seconds between checks of plugins.d (0.1 to 3600), or 0 to turn watching off")
            guard seconds == 0 || seconds >= 0.1 else {
                throw n.error("must be 0 (off) or at least 0.1 seconds, got \(seconds)")
            }
            c.plugins.watchIntervalSeconds = seconds
        },
        Key(path: "plugins.defaultTier", env: "ORION_DEFAULT_TIER", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.plugins.defaultTier = try n.nonEmptyString()
        },
        Key(path: "documents.path", env: "ORION_DOCUMENTS_PATH", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.documentStorePath = try n.nonEmptyString()
        },
    ]
}

extension ConfigNode {
    /// The node at a dotted path.
    func lookup(_ dotted: String) -> ConfigNode? {
        var node: ConfigNode? = self
        for part in dotted.split(separator: ".") { node = node?[String(part)] }
        return node
    }

    func nonEmptyString() throws(ConfigError) -> String {
        guard let text = scalarText, !text.isEmpty else { throw error("must be a non-empty text value") }
        return text
    }

    func boolValue() throws(ConfigError) -> Bool {
        guard case .scalar(let text, .bool) = value, let result = Bool(text.lowercased()) else {
            throw error("must be true or false, got '\(scalarText ?? "a non-scalar")'")
        }
        return result
    }

    func number(in range: ClosedRange<Double>, _ what: String) throws(ConfigError) -> Double {
        guard case .scalar(let text, let kind) = value, kind == .int || kind == .float,
            let result = Double(text.replacingOccurrences(of: "_", with: ""))
        else {
            throw error("must be \(what), got '\(scalarText ?? "a non-scalar")'")
        }
        guard range.contains(result) else { throw error("must be \(what), got \(text)") }
        return result
    }

    func integer(atLeast minimum: Int) throws(ConfigError) -> Int {
        guard case .scalar(let text, .int) = value, let result = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw error("must be a whole number ≥ \(minimum), got '\(scalarText ?? "a non-scalar")'")
        }
        guard result >= minimum else { throw error("must be ≥ \(minimum), got \(result)") }
        return result
    }

    func stringList() throws(ConfigError) -> [String] {
        guard case .sequence(let items) = value else { throw error("must be a list of text values") }
        var out: [String] = []
        for item in items {
            guard let text = item.scalarText else { throw item.error("must be a text value") }
            out.append(text)
        }
        return out
    }
}
