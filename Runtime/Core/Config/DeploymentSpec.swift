import Foundation
import OrionPluginHost

/// One plugin instance, as declared by one file in `plugins.d/`.
///
/// - Configuration keys (per instance file):
///   - `id` (string, default: the file name without extension): the instance id, unique across
///     `plugins.d/`; tiers and other plugins refer to the instance by it.
///   - `plugin` (string): a plugin name, found as `lib<name>.so` in the plugin search paths. Give
///     `plugin` or `path`, not both.
///   - `path` (string): a `.so` file, absolute or relative to `plugins.d/`.
///   - `required` (bool, default `false`): when true, failing to load this instance stops start-up
///     (and fails a reload) with the refusal's message.
///   - `sha256` (hex string, optional): pins the exact build; a different file is refused.
///   - `config` (mapping, default `{}`): handed to the plugin as JSON, checked against the
///     plugin's config schema first.
///   - `description` (string, optional): for people reading the file.
public struct InstanceSpec: Sendable, Hashable {
    public var id: String
    public var plugin: PluginReference
    public var required: Bool
    public var sha256: String?
    public var config: JSONValue
    /// The file this instance was declared in.
    public var file: String
    public var line: Int?

    public enum PluginReference: Sendable, Hashable, CustomStringConvertible {
        case name(String)
        case path(String)
        public var description: String {
            switch self {
            case .name(let name): name
            case .path(let path): path
            }
        }
    }

    public init(id: String, plugin: PluginReference, required: Bool = false, sha256: String? = nil, config: JSONValue = .object([:]), file: String = "", line: Int? = nil) {
        self.id = id
        self.plugin = plugin
        self.required = required
        self.sha256 = sha256
        self.config = config
        self.file = file
        self.line = line
    }

    static let keys: Set<String> = ["id", "plugin", "path", "required", "sha256", "config", "description"]

    /// Parses one instance file.
    static func parse(_ node: ConfigNode, directory: String) throws(ConfigError) -> InstanceSpec {
        let root = try node.requireMapping()
        try root.rejectUnknownKeys(keys)
        let stem = ((node.file as NSString).lastPathComponent as NSString).deletingPathExtension
        let id = try root.string("id") ?? stem
        guard isValidID(id) else {
            throw ConfigError(file: node.file, line: root["id"]?.line, key: "id", message: "'\(id)' is not a valid instance id; use lowercase letters, digits, '-' and '_'")
        }
        let name = try root.string("plugin")
        let path = try root.string("path")
        let reference: PluginReference
        switch (name, path) {
        case (let name?, nil): reference = .name(name)
        case (nil, let path?): reference = .path(path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path))
        case (.some, .some):
            throw ConfigError(file: node.file, line: root["path"]?.line, key: "path", message: "give either 'plugin' (a name) or 'path' (a file), not both")
        case (nil, nil):
            throw ConfigError(file: node.file, line: root.line, key: "plugin", message: "is missing; name the plugin (e.g. plugin: ratelimit-gcra) or give its path")
        }
        var sha: String?
        if let pin = try root.string("sha256") {
            let lower = pin.lowercased()
            guard lower.count == 64, lower.allSatisfy(\.isHexDigit) else {
                throw ConfigError(file: node.file, line: root["sha256"]?.line, key: "sha256", message: "must be 64 hex digits (the output of sha256sum)")
            }
            sha = lower
        }
        var config = JSONValue.object([:])
        if let child = root["config"] {
            guard child.isMapping else {
                throw ConfigError(file: node.file, line: child.line, key: "config", message: "must be a mapping of the plugin's settings")
            }
            config = try child.json()
        }
        return InstanceSpec(
            id: id, plugin: reference, required: try root.bool("required") ?? false, sha256: sha, config: config,
            file: node.file, line: root.line)
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64
            && id.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }
}

/// One tier of the tier manifest: its limits and, per capability, the instances it uses.
public struct TierSpec: Sendable, Hashable {
    public var name: String
    public var requestsPerHour: Int
    public var costCapUSD: Double
    /// Capability → instance ids, in order of preference (the first is primary, the rest fallbacks).
    public var capabilities: [String: [String]]
    /// Model name → engine routes, primary first: the models this tier's callers may ask for.
    public var models: [String: [ModelRoute]]

    public init(name: String, requestsPerHour: Int, costCapUSD: Double, capabilities: [String: [String]] = [:], models: [String: [ModelRoute]] = [:]) {
        self.name = name
        self.requestsPerHour = requestsPerHour
        self.costCapUSD = costCapUSD
        self.capabilities = capabilities
        self.models = models
    }

    /// Limits of the built-in tiers, used when the manifest does not set them.
    public static let builtInLimits: [String: (requestsPerHour: Int, costCapUSD: Double)] = [
        "free": (60, 0.10), "pro": (600, 2.00), "enterprise": (6000, 50.00),
    ]
}

/// The whole deployment: every instance in `plugins.d/` and the tier manifest.
public struct DeploymentSpec: Sendable, Hashable {
    public var instances: [InstanceSpec]
    public var tiers: [TierSpec]
    /// Where the tier manifest came from.
    public var tierManifestFile: String
    /// Lines of each tier reference, for messages: "tier.capability" → line.
    var referenceLines: [String: Int] = [:]

    public init(instances: [InstanceSpec], tiers: [TierSpec], tierManifestFile: String = "tiers.yaml") {
        self.instances = instances
        self.tiers = tiers
        self.tierManifestFile = tierManifestFile
    }

    /// The name of the tier manifest inside `plugins.d/`; every other `.yaml`/`.yml` file there
    /// declares one instance.
    public static let tierManifestName = "tiers.yaml"

    /// Reads `plugins.d/`: every instance file and `tiers.yaml`. Collects every problem it finds.
    public static func load(directory: String) throws(ConfigErrors) -> DeploymentSpec {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else {
            throw ConfigErrors([ConfigError(file: directory, message: "cannot be read; create the plugins.d directory or point plugins.directory at it")])
        }
        var errors: [ConfigError] = []
        var instances: [InstanceSpec] = []
        let files = names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }.sorted()
        for name in files where name != tierManifestName {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                instances.append(try InstanceSpec.parse(try ConfigNode.load(path), directory: directory))
            } catch {
                errors.append(error)
            }
        }
        let manifestPath = (directory as NSString).appendingPathComponent(tierManifestName)
        var spec = DeploymentSpec(instances: instances, tiers: [], tierManifestFile: manifestPath)
        if fm.fileExists(atPath: manifestPath) {
            do {
                try spec.parseTiers(try ConfigNode.load(manifestPath))
            } catch {
                errors.append(error)
            }
        } else {
            spec.tiers = TierSpec.builtInLimits.keys.sorted().map { name in
                let limits = TierSpec.builtInLimits[name]!  // iterating the dictionary's own keys
                return TierSpec(name: name, requestsPerHour: limits.requestsPerHour, costCapUSD: limits.costCapUSD)
            }
        }
        errors += spec.referenceErrors()
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return spec
    }

    /// Parses the tier manifest:
    ///
    /// ```yaml
    /// tiers:
    ///   free:
    ///     limits: { requestsPerHour: 60, costCapUsd: 0.10 }
    ///     capabilities:
    ///       rate_limit: ratelimit          # one instance id, or a list: primary first
    /// ```
    ///
    /// - Configuration keys: `tiers.<name>.limits.requestsPerHour` (integer ≥ 1; built-in tiers
    ///   default to free 60, pro 600, enterprise 6000), `tiers.<name>.limits.costCapUsd` (number ≥ 0;
    ///   free 0.10, pro 2.00, enterprise 50.00), `tiers.<name>.capabilities.<capability>` (instance
    ///   id or list of ids). A tier the operator adds must set both limits.
    mutating func parseTiers(_ node: ConfigNode) throws(ConfigError) {
        let root = try node.requireMapping()
        try root.rejectUnknownKeys(["tiers"])
        let tiersNode = try root.mapping("tiers")
        guard !tiersNode.keys.isEmpty else {
            throw ConfigError(file: node.file, line: root.line, key: "tiers", message: "declares no tier; add at least one (free, pro, enterprise, ...)")
        }
        var tiers: [TierSpec] = []
        for name in tiersNode.keys {
            let tier = try tiersNode.mapping(name)
            try tier.rejectUnknownKeys(["limits", "capabilities", "models", "description"])
            let limits = try tier.mapping("limits")
            try limits.rejectUnknownKeys(["requestsPerHour", "costCapUsd"])
            let defaults = TierSpec.builtInLimits[name]
            let rph = try limits["requestsPerHour"].map { (n) throws(ConfigError) in try n.integer(atLeast: 1) } ?? defaults?.requestsPerHour
            let cap = try limits["costCapUsd"].map { (n) throws(ConfigError) in try n.number(in: 0...1_000_000_000, "a cost in USD ≥ 0") } ?? defaults?.costCapUSD
            guard let rph else {
                throw ConfigError(file: node.file, line: tier.line, key: "tiers.\(name).limits.requestsPerHour", message: "is required for a tier Orion does not know; set it")
            }
            guard let cap else {
                throw ConfigError(file: node.file, line: tier.line, key: "tiers.\(name).limits.costCapUsd", message: "is required for a tier Orion does not know; set it")
            }
            let caps = try tier.mapping("capabilities")
            var capabilities: [String: [String]] = [:]
            for capability in caps.keys {
                let ids = try caps.strings(capability) ?? []
                guard !ids.isEmpty else {
                    throw ConfigError(file: node.file, line: caps[capability]?.line, key: "tiers.\(name).capabilities.\(capability)", message: "names no instance; give an instance id or remove the line")
                }
                capabilities[capability] = ids
                referenceLines["\(name).\(capability)"] = caps[capability]?.line
            }
            let models = try parseModels(tier["models"], tier: name)
            tiers.append(TierSpec(name: name, requestsPerHour: rph, costCapUSD: cap, capabilities: capabilities, models: models))
        }
        self.tiers = tiers
    }

    /// Every tier reference must name a declared instance.
    func referenceErrors() -> [ConfigError] {
        let declared = Set(instances.map(\.id))
        var errors: [ConfigError] = []
        for tier in tiers {
            for (capability, ids) in tier.capabilities.sorted(by: { $0.key < $1.key }) {
                for id in ids where !declared.contains(id) {
                    let known = declared.sorted().joined(separator: ", ")
                    errors.append(ConfigError(
                        file: tierManifestFile, line: referenceLines["\(tier.name).\(capability)"], key: "tiers.\(tier.name).capabilities.\(capability)",
                        message: "refers to instance '\(id)', which no file in plugins.d declares. Declared instances: \(known.isEmpty ? "none" : known)."))
                }
            }
            for (model, routes) in tier.models.sorted(by: { $0.key < $1.key }) {
                for route in routes where !declared.contains(route.instance) {
                    errors.append(ConfigError(
                        file: tierManifestFile, line: referenceLines["\(tier.name).models.\(model)"], key: "tiers.\(tier.name).models.\(model)",
                        message: "routes to instance '\(route.instance)', which no file in plugins.d declares. Declared instances: \(declared.sorted().joined(separator: ", "))."))
                }
            }
        }
        return errors
    }
}
