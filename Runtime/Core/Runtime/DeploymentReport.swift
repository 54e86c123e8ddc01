import OrionPluginHost

/// What a start-up or reload did.
public struct DeploymentReport: Sendable {
    /// The registry generation now serving.
    public var generation: Int
    /// Instances created by this deployment.
    public var created: [String] = []
    /// Instances carried over unchanged (same build, same config).
    public var kept: [String] = []
    /// Instances whose new version failed to load; the previous one keeps serving.
    public var keptPrevious: [String] = []
    /// Instances that left the deployment; each is destroyed after its last lease.
    public var removed: [String] = []
    /// Instances refused, with the refusal (code, message, cause).
    public var refusals: [InstanceRefusal] = []
    /// Problems that did not stop the deployment (e.g. a tier capability left without an instance).
    public var warnings: [String] = []
}

/// One instance that did not load.
public struct InstanceRefusal: Sendable, CustomStringConvertible {
    public var instanceID: String
    public var file: String
    public var error: PluginLoadError
    public var description: String { "\(file): instance '\(instanceID)': \(error)" }
}

/// Why a start-up or reload changed nothing.
public struct DeploymentError: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable {
        /// The files in plugins.d (or the tier manifest) are invalid.
        case invalidConfiguration(ConfigErrors)
        /// An instance marked `required` was refused.
        case requiredInstanceFailed(InstanceRefusal)
        /// A tier maps a capability to an instance that does not provide it.
        case capabilityMismatch([ConfigError])
    }
    public var reason: Reason

    public var description: String {
        switch reason {
        case .invalidConfiguration(let errors): "the configuration is invalid; nothing changed:\n\(errors)"
        case .requiredInstanceFailed(let refusal): "required instance failed to load; nothing changed: \(refusal)"
        case .capabilityMismatch(let errors): "the tier manifest is invalid; nothing changed:\n\(errors.map(\.description).joined(separator: "\n"))"
        }
    }
}

/// Prepares a new instance before it is published: a retriever is filled from the document
/// store, so a swap never serves an empty index.
public protocol InstancePreparer: Sendable {
    /// Called for every newly created instance, before publication. Throwing refuses the instance.
    func prepare(_ instance: PluginInstance, spec: InstanceSpec) async throws
    /// Called once the new instances are published, to catch up with what happened meanwhile.
    func didPublish(_ instances: [PluginInstance]) async
}

extension InstancePreparer {
    public func didPublish(_ instances: [PluginInstance]) async {}
}
