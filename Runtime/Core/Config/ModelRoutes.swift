/// One step of a model's route: an engine instance, and the model to ask it for when that is not
/// the name the caller used (a fallback to another provider's model).
public struct ModelRoute: Sendable, Hashable, CustomStringConvertible {
    public var instance: String
    /// nil: the caller's model name is passed on unchanged.
    public var model: String?

    public init(instance: String, model: String? = nil) {
        self.instance = instance
        self.model = model
    }

    /// Parses `instance` or `instance/model`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard InstanceSpec.isValidID(parts[0]) else { return nil }
        instance = parts[0]
        if parts.count == 2 {
            guard !parts[1].isEmpty else { return nil }
            model = parts[1]
        }
    }

    public var description: String { model.map { "\(instance)/\($0)" } ?? instance }
}

extension DeploymentSpec {
    /// Parses a tier's `models` mapping: the model names its callers may ask for, each routed to an
    /// engine instance and its fallbacks, primary first.
    ///
    /// ```yaml
    ///     models:
    ///       gpt-4o-mini: openai                              # passed on as gpt-4o-mini
    ///       claude-3-5-haiku: [anthropic, openai/gpt-4o-mini] # falls back to another model
    /// ```
    ///
    /// - Configuration keys: `tiers.<name>.models.<model>` (an `instance` or `instance/model`, or a
    ///   list of them).
    mutating func parseModels(_ node: ConfigNode?, tier: String) throws(ConfigError) -> [String: [ModelRoute]] {
        guard let node else { return [:] }
        guard node.isMapping else {
            throw ConfigError(file: node.file, line: node.line, key: "tiers.\(tier).models", message: "must be a mapping of model name to engine instance(s)")
        }
        var models: [String: [ModelRoute]] = [:]
        for name in node.keys {
            let entries = try node.strings(name) ?? []
            guard !entries.isEmpty else {
                throw ConfigError(file: node.file, line: node[name]?.line, key: "tiers.\(tier).models.\(name)", message: "names no engine instance; give one or remove the line")
            }
            var routes: [ModelRoute] = []
            for entry in entries {
                guard let route = ModelRoute(entry) else {
                    throw ConfigError(
                        file: node.file, line: node[name]?.line, key: "tiers.\(tier).models.\(name)",
                        message: "'\(entry)' is not an engine route; write an instance id, or instance/model to ask it for another model")
                }
                routes.append(route)
            }
            models[name] = routes
            referenceLines["\(tier).models.\(name)"] = node[name]?.line
        }
        return models
    }
}
