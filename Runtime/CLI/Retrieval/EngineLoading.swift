import ArgumentParser
import Foundation
import OrionCore
import OrionPluginHost
import OrionPluginSDK

/// The embeddings engine a tier maps in plugins.d, created on its own (no registry, no other
/// instance) for a command that only needs vectors.
struct StandaloneEmbedder {
    let spec: InstanceSpec
    let instance: PluginInstance
    let engine: EngineCaller

    /// The instance `id`, else the one `tier` maps to `embeddings`; nil when the tier maps none.
    static func spec(id: String? = nil, tier: String, config: RuntimeConfig) throws -> InstanceSpec? {
        let deployment = try DeploymentSpec.load(directory: config.plugins.directory)
        guard let wanted = id ?? deployment.tiers.first(where: { $0.name == tier })?.capabilities[Embedder.capability]?.first else {
            return nil
        }
        guard let spec = deployment.instances.first(where: { $0.id == wanted }) else {
            throw ValidationError("no instance '\(wanted)' in \(config.plugins.directory)")
        }
        return spec
    }

    /// Creates `spec`'s instance, with `overrides` applied to its config.
    init(spec: InstanceSpec, config: RuntimeConfig, overrides: [String: JSONValue] = [:]) throws {
        let path = try PluginLocator(configured: config.plugins.searchPaths).locate(spec.plugin)
        let image = try PluginImage(path: path)
        let settings = BenchRetrieval.detached(spec, overrides: overrides).config
        instance = try PluginInstance(image: image, config: try JSONEncoder().encode(settings), services: ConformanceLikeHost())
        guard let engine = instance.engine else { throw ValidationError("instance '\(spec.id)' (\(spec.plugin)) is not an engine") }
        self.spec = spec
        self.engine = engine
    }

    func embed(_ texts: [String], batch: Int = 64, progress: (Int) -> Void = { _ in }) async throws -> [[Float]] {
        try await engine.embedAll(texts, batch: batch, progress: progress)
    }
}

extension EngineCaller {
    /// One vector per text, in calls of `batch` texts; `progress` sees the count done.
    func embedAll(_ texts: [String], batch: Int = 64, progress: (Int) -> Void = { _ in }) async throws -> [[Float]] {
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        for start in stride(from: 0, to: texts.count, by: batch) {
            vectors += try await embed(model: "", texts: Array(texts[start..<min(start + batch, texts.count)])).rows
            progress(vectors.count)
        }
        return vectors
    }
}
