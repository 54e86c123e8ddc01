import Foundation
import OrionPluginSDK

/// `memory.search`, the host service behind `tool-memory-search`: the calling tenant's memories
/// for a query, two-phase, best first.
///
/// Request `{"query": "…", "topK": 5}` (topK 1–50, default 5); response
/// `{"memories": [{"id", "intent", "experience", "utility", "score"}], "retriever": "…", "degraded": "…"?}`.
enum MemoryService {
    static let name = "memory.search"

    static func register(on directory: HostServiceDirectory, memory: MemoryBank) {
        directory.register(name) { scope, request in
            let object = (try? JSONSerialization.jsonObject(with: request)) as? [String: Any] ?? [:]
            guard let query = object["query"] as? String, !query.isEmpty else {
                throw PluginError(.invalidArgument, "memory.search needs a non-empty 'query'")
            }
            let topK = (object["topK"] as? NSNumber)?.intValue ?? 5
            guard (1...50).contains(topK) else { throw PluginError(.invalidArgument, "memory.search: 'topK' must be 1 to 50, got \(topK)") }
            let vector = await memory.queryVector(tier: scope.tier, intent: query, namespace: scope.namespace, tenantCapUSD: scope.tenantCapUSD)
            let found: MemoryRetrieval
            do {
                found = try memory.retrieve(namespace: scope.namespace, tier: scope.tier, intent: query, query: vector, topK: topK)
            } catch let error as MemoryError {
                throw PluginError(error.code == .unavailable ? .unavailable : .invalidArgument, error.message)
            }
            var answer: [String: Any] = [
                "memories": found.hits.map { hit -> [String: Any] in
                    ["id": hit.memory.id, "intent": hit.memory.intent, "experience": hit.memory.experience, "utility": hit.utility, "score": hit.score]
                },
                "retriever": found.retriever,
            ]
            if let degraded = found.degradedReason { answer["degraded"] = degraded }
            return try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])
        }
    }
}
