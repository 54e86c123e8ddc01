import Foundation
import OrionPluginHost
import OrionPluginSDK

/// Why text could not be embedded.
public struct EmbeddingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// True when the input itself was refused (too many texts, say): the caller's mistake.
    public var isInvalidInput = false
    public var description: String { message }
}

/// Turns text into vectors with the engine a tier maps to the capability `embeddings` (primary
/// first, the next when one is not loaded or fails). A tier that maps none has no embeddings:
/// callers then store and search by text alone.
public struct Embedder: Sendable {
    public static let capability = "embeddings"
    let registry: Registry

    public init(registry: Registry) { self.registry = registry }

    /// True when `tier` maps an embeddings engine.
    public func isAvailable(tier: String) -> Bool {
        (try? registry.instanceIDs(tier: tier, capability: Self.capability)).map { !$0.isEmpty } ?? false
    }

    /// One vector per text, in order; nil when the tier maps no embeddings engine.
    public func embed(tier: String, texts: [String]) async throws(EmbeddingError) -> [[Float]]? {
        let ids: [String]
        do {
            ids = try registry.instanceIDs(tier: tier, capability: Self.capability)
        } catch {
            return nil
        }
        guard !texts.isEmpty else { return [] }
        var failures: [String] = []
        for id in ids {
            guard registry.snapshot.instances[id] != nil else {
                failures.append("'\(id)' is not loaded (refused at load: see the start-up log or GET /api/admin/plugins)")
                continue
            }
            let lease: Lease
            do {
                lease = try registry.lease(kind: .engine, id: id)
            } catch {
                failures.append(error.message)
                continue
            }
            defer { lease.release() }
            guard let engine = lease.engine else {
                failures.append("instance '\(id)' is not an engine")
                continue
            }
            do {
                let result = try await PluginCallMetrics.measure(instance: id, operation: "embed") {
                    try await engine.embed(model: "", texts: texts)
                }
                guard result.count == texts.count, result.dimensions > 0 else {
                    failures.append("engine '\(id)' returned \(result.count) vectors for \(texts.count) texts")
                    continue
                }
                return result.rows
            } catch {
                let plugin = error as? PluginError
                if plugin?.code == .invalidArgument {
                    throw EmbeddingError(message: "embeddings engine '\(id)' refused the input: \(plugin?.message ?? "\(error)")", isInvalidInput: true)
                }
                failures.append("engine '\(id)' failed: \(plugin?.message ?? "\(error)")")
            }
        }
        throw EmbeddingError(message: "no embeddings engine of tier '\(tier)' could embed: \(failures.joined(separator: "; "))")
    }
}
