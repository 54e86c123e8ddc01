import Foundation
import OrionPluginABI
import OrionPluginSDK

/// `engine-openai`: any OpenAI-compatible API (OpenAI, Groq, Together, vLLM, Ollama, llama.cpp's
/// server) — chat completions, streamed as server-sent events, tool calls passed through both ways,
/// and embeddings. Every request goes out through the host's HTTP callout.
final class EngineOpenAI: OrionPlugin, EnginePlugin {
    /// - Configuration keys:
    ///   - `baseUrl` (URL, default `https://api.openai.com/v1`): the API root; `/chat/completions`
    ///     and `/embeddings` are appended. Its host must be in `engines.egressAllowedHosts`.
    ///   - `apiKey` (string, optional): sent as `Authorization: Bearer …`. Prefer `apiKeyEnv`.
    ///   - `apiKeyEnv` (string, default `OPENAI_API_KEY`): the environment variable read for the
    ///     key when `apiKey` is not set. No key at all sends no `Authorization` (Ollama, llama.cpp).
    ///   - `defaultModel` (string, optional): used when a request names no model.
    ///   - `embeddingModel` (string, default `text-embedding-3-small`): for embeddings that name none.
    ///   - `headers` (object of strings, default `{}`): extra request headers, e.g. `OpenAI-Organization`.
    ///   - `timeoutSeconds` (number, default: the host's `engines.timeoutSeconds`): one HTTP exchange.
    ///   - `retries` (integer 0–10, default `2`): further attempts after a 408, 429 or 5xx, waiting
    ///     the response's `Retry-After` when it has one, else a jittered backoff from `retryBaseMs`
    ///     (default `250`) doubling up to 5 s. A `Retry-After` over `maxRetryAfterSeconds` (default
    ///     `20`) fails the call at once.
    struct Configuration: Decodable, Sendable {
        var upstream: UpstreamSettings
        var defaultModel: String?
        var embeddingModel: String?

        init(from decoder: any Decoder) throws {
            upstream = try UpstreamSettings(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            defaultModel = try c.decodeIfPresent(String.self, forKey: .defaultModel)
            embeddingModel = try c.decodeIfPresent(String.self, forKey: .embeddingModel)
        }
        enum CodingKeys: String, CodingKey { case defaultModel, embeddingModel }
    }

    static let descriptor = PluginDescriptor(
        id: "engine-openai", version: "1.0.0", capabilities: ["chat", "embeddings"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{\(UpstreamSettings.schemaProperties),
            "defaultModel":{"type":"string","minLength":1},
            "embeddingModel":{"type":"string","minLength":1}}}
            """,
        summary: "Chat, streamed chat and embeddings over any OpenAI-compatible API")

    let client: UpstreamClient
    let defaultModel: String?
    let embeddingModel: String

    init(configuration c: Configuration, host: PluginHost) throws {
        client = try UpstreamClient(
            host: host, settings: c.upstream, defaultBaseURL: "https://api.openai.com/v1", defaultKeyVariable: "OPENAI_API_KEY",
            credential: { (name: "Authorization", value: "Bearer \($0)") }, fixedHeaders: [])
        defaultModel = c.defaultModel
        embeddingModel = c.embeddingModel ?? "text-embedding-3-small"
    }

    func chat(request: Data) async throws -> Data {
        var body = try requestObject(request)
        body["stream"] = false
        body["stream_options"] = nil
        let response = try await client.post("/chat/completions", json: body)
        let data = try await response.collect()
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["choices"] is [Any] else {
            throw PluginError(.unavailable, "the upstream answered 200 with a body that is not a chat.completion")
        }
        return data
    }

    func chatStream(request: Data, emit: @Sendable (Data) -> Bool) async throws -> Data {
        var body = try requestObject(request)
        body["stream"] = true
        body["stream_options"] = ["include_usage": true]
        let response = try await client.post("/chat/completions", json: body)
        var parser = ServerSentEventParser()
        var usage = Data()
        for try await chunk in response.body {
            for event in parser.feed(chunk) {
                if event.data == "[DONE]" { return usage }
                guard let object = try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any] else {
                    throw PluginError(.unavailable, "the upstream sent an event that is not JSON")
                }
                if let error = object["error"] {
                    throw PluginError(.unavailable, "the upstream failed mid-stream: \(UpstreamClient.describe(error))")
                }
                if let value = object["usage"], !(value is NSNull) {
                    usage = try JSONWriter.data(value)
                }
                if let choices = object["choices"] as? [Any], !choices.isEmpty {
                    guard emit(Data(event.data.utf8)) else { return usage }
                }
            }
        }
        throw PluginError(.unavailable, "the upstream's stream ended before [DONE]: the answer is incomplete")
    }

    func embed(model: String, texts: [String]) async throws -> Embeddings {
        guard !texts.isEmpty else { return Embeddings(vectors: [], dimensions: 0) }
        let body: [String: Any] = ["model": model.isEmpty ? embeddingModel : model, "input": texts, "encoding_format": "float"]
        // About 40 KB of JSON per vector of 3,072 floats: the limit grows with the batch.
        let data = try await client.post("/embeddings", json: body).collect(upTo: max(16 << 20, texts.count * (64 << 10)))
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let items = object["data"] as? [[String: Any]] else {
            throw PluginError(.unavailable, "the upstream answered 200 with a body that is not an embedding list")
        }
        var rows = [[Float]?](repeating: nil, count: texts.count)
        for (position, item) in items.enumerated() {
            let index = item["index"] as? Int ?? position
            guard rows.indices.contains(index), let values = item["embedding"] as? [NSNumber] else {
                throw PluginError(.unavailable, "the upstream's embedding \(position) has no index in range or no float vector")
            }
            rows[index] = values.map(\.floatValue)
        }
        let vectors = rows.compactMap { $0 }
        guard vectors.count == texts.count, let dimensions = vectors.first?.count, dimensions > 0, vectors.allSatisfy({ $0.count == dimensions }) else {
            throw PluginError(.unavailable, "the upstream returned \(vectors.count) vectors of mixed or zero size for \(texts.count) texts")
        }
        let usage = (object["usage"]).flatMap { try? JSONWriter.data($0) } ?? Data()
        return Embeddings(vectors: vectors.flatMap { $0 }, dimensions: dimensions, usage: usage)
    }

    /// The caller's request as an object, with the default model filled in.
    func requestObject(_ request: Data) throws -> [String: Any] {
        guard var object = (try? JSONSerialization.jsonObject(with: request)) as? [String: Any] else {
            throw PluginError(.invalidArgument, "the chat request is not a JSON object")
        }
        if (object["model"] as? String ?? "").isEmpty {
            guard let defaultModel else {
                throw PluginError(.invalidArgument, "the request names no model and this instance sets no 'defaultModel'")
            }
            object["model"] = defaultModel
        }
        return object
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(EngineOpenAI.self, host: host)
}
