import Foundation
import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// A Swift fixture providing every asynchronous kind plus a fusing retriever, so the SDK's
/// engine, connector and pricing bridges, its lease API and its fused-result writer run through a
/// real .so in tests.
///
/// - Engine: `chat` echoes the last message; `chatStream` streams its words; `embed` returns
///   `[length, 1, 0, 0]` per text. A request whose model is `"fail"` fails with unavailable.
/// - Pricing: `m1` is priced (input 1 USD, output 2 USD per 1M tokens); others are not found.
/// - Connector: counts delivered events (`events_delivered_total`); type `fail` throws.
/// - Retriever: fuses the retrievers named in `sources` (leased per search) by summing
///   1/(60 + rank); a source that cannot be leased makes the answer degraded.
final class SwiftMulti: OrionPlugin, EnginePlugin, PricingPlugin, ConnectorPlugin, RetrieverPlugin {
    struct Configuration: Decodable, Sendable {
        var sources: [String]?
    }

    static let descriptor = PluginDescriptor(
        id: "fixture-swift-multi", version: "1.0.0", capabilities: ["chat", "embedding", "pricing", "events", "retrieval"],
        configSchema: #"{"type":"object","additionalProperties":false,"properties":{"sources":{"type":"array","items":{"type":"string"}}}}"#,
        summary: "multi-kind SDK fixture")

    let host: PluginHost
    let sources: [String]
    private let checkpointValue = Atomic<UInt64>(0)

    init(configuration: Configuration, host: PluginHost) throws {
        self.host = host
        self.sources = configuration.sources ?? []
        host.log(.info, "fixture-swift-multi created with \(sources.count) sources")
    }

    struct ChatRequest: Decodable {
        struct Message: Decodable { var role: String; var content: String }
        var model: String
        var messages: [Message]
    }

    func chat(request: Data) async throws -> Data {
        let parsed = try JSONDecoder().decode(ChatRequest.self, from: request)
        if parsed.model == "fail" { throw PluginError(.unavailable, "the upstream is down (fixture)") }
        let text = parsed.messages.last?.content ?? ""
        let body: [String: Any] = [
            "object": "chat.completion", "model": parsed.model,
            "choices": [["index": 0, "message": ["role": "assistant", "content": "echo: \(text)"], "finish_reason": "stop"]],
        ]
        return try JSONSerialization.data(withJSONObject: body)
    }

    func chatStream(request: Data, emit: @Sendable (Data) -> Bool) async throws -> Data {
        let parsed = try JSONDecoder().decode(ChatRequest.self, from: request)
        var sent = 0
        for word in (parsed.messages.last?.content ?? "").split(separator: " ") {
            let chunk = try JSONSerialization.data(withJSONObject: ["object": "chat.completion.chunk", "delta": String(word)])
            sent += 1
            guard emit(chunk) else { break }
        }
        return Data(#"{"completion_tokens":\#(sent)}"#.utf8)
    }

    func embed(model: String, texts: [String]) async throws -> Embeddings {
        if model == "fail" { throw PluginError(.unavailable, "no embedding model (fixture)") }
        return Embeddings(vectors: texts.flatMap { [Float($0.count), 1, 0, 0] }, dimensions: 4)
    }

    func price(model: PluginString) throws(PluginError) -> ModelPrice {
        guard model.string == "m1" else { throw PluginError(.notFound, "model '\(model.string)' is not priced") }
        return ModelPrice(inputPerMillion: 1_000_000_000, outputPerMillion: 2_000_000_000)
    }

    func deliver(_ event: PluginEvent) async throws {
        if event.type == "fail" { throw PluginError(.unavailable, "delivery failed (fixture)") }
        host.increment(counter: "events_delivered_total")
        host.record(histogram: "event_payload_bytes", Double(event.payload.count))
    }

    func add(_ documents: DocumentBatch) throws(PluginError) {
        throw PluginError(.unsupported, "a fusing retriever indexes nothing itself")
    }

    func remove(namespace: PluginString, ids: UnsafeBufferPointer<Int64>) throws(PluginError) {}

    func search(_ query: SearchQuery, into results: inout SearchResults) throws(PluginError) {
        var fused: [Int64: (score: Float, details: [HitSource])] = [:]
        var missing: [String] = []
        let filters = Dictionary(query.filters.map { ($0.key.string, $0.value.string) }, uniquingKeysWith: { a, _ in a })
        let vector = query.vector.map(Array.init)
        for (index, id) in sources.enumerated() {
            do throws(PluginError) {
                let lease = try host.lease(.retriever, id: id)
                guard let retriever = lease.retriever else { throw PluginError(.internal, "lease without a retriever") }
                let answer = try retriever.search(
                    namespace: query.namespace.string, text: query.text.string, vector: vector, topK: query.topK * 2, filters: filters)
                for (rank, hit) in answer.hits.enumerated() {
                    var entry = fused[hit.id] ?? (0, [])
                    entry.score += 1 / Float(60 + rank + 1)
                    entry.details.append(HitSource(sourceIndex: UInt32(index), rank: UInt32(rank + 1), score: hit.score, source: hit.source))
                    fused[hit.id] = entry
                }
            } catch {
                missing.append("\(id): \(error.message)")
            }
        }
        for (id, entry) in fused.sorted(by: { $0.value.score != $1.value.score ? $0.value.score > $1.value.score : $0.key < $1.key }).prefix(query.topK) {
            results.append(id: id, score: entry.score, source: .hybrid, details: entry.details)
        }
        if !missing.isEmpty { results.markDegraded(reason: "sources unavailable: \(missing.joined(separator: "; "))") }
    }

    func clear() throws(PluginError) {}

    func checkpoint(_ checkpoint: UInt64) throws(PluginError) {
        checkpointValue.store(checkpoint, ordering: .relaxed)
    }

    func stats() throws(PluginError) -> RetrieverStats {
        RetrieverStats(documentCount: 0, checkpoint: checkpointValue.load(ordering: .relaxed))
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(SwiftMulti.self, host: host)
}
