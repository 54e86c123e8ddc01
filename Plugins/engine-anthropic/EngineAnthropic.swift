import Foundation
import OrionPluginABI
import OrionPluginSDK

/// `engine-anthropic`: Anthropic's Messages API behind the OpenAI-style chat the core speaks —
/// system prompts, tool definitions, tool calls and results, streaming, and cache read/write token
/// counts mapped into the usage the core prices. Requests go out through the host's HTTP callout.
final class EngineAnthropic: OrionPlugin, EnginePlugin {
    /// - Configuration keys:
    ///   - `baseUrl` (URL, default `https://api.anthropic.com/v1`): `/messages` is appended. Its host
    ///     must be in `engines.egressAllowedHosts`.
    ///   - `apiKey` (string, optional): sent as `x-api-key`. Prefer `apiKeyEnv`.
    ///   - `apiKeyEnv` (string, default `ANTHROPIC_API_KEY`): the environment variable read for the key.
    ///   - `anthropicVersion` (string, default `2023-06-01`): the `anthropic-version` header.
    ///   - `defaultModel` (string, optional): used when a request names no model.
    ///   - `defaultMaxTokens` (integer, default `1024`): `max_tokens` when a request sets none (the
    ///     Messages API requires one; the core normally sets it).
    ///   - `headers` (object of strings, default `{}`): extra headers, e.g. `anthropic-beta`.
    ///   - `timeoutSeconds`, `retries`, `retryBaseMs`, `maxRetryAfterSeconds`: as engine-openai's.
    struct Configuration: Decodable, Sendable {
        var upstream: UpstreamSettings
        var anthropicVersion: String?
        var defaultModel: String?
        var defaultMaxTokens: Int?

        init(from decoder: any Decoder) throws {
            upstream = try UpstreamSettings(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            anthropicVersion = try c.decodeIfPresent(String.self, forKey: .anthropicVersion)
            defaultModel = try c.decodeIfPresent(String.self, forKey: .defaultModel)
            defaultMaxTokens = try c.decodeIfPresent(Int.self, forKey: .defaultMaxTokens)
        }
        enum CodingKeys: String, CodingKey { case anthropicVersion, defaultModel, defaultMaxTokens }
    }

    static let descriptor = PluginDescriptor(
        id: "engine-anthropic", version: "1.0.0", capabilities: ["chat"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{\(UpstreamSettings.schemaProperties),
            "anthropicVersion":{"type":"string","minLength":1},
            "defaultModel":{"type":"string","minLength":1},
            "defaultMaxTokens":{"type":"integer","minimum":1,"maximum":1000000}}}
            """,
        summary: "Chat and streamed chat over Anthropic's Messages API, as OpenAI-style chat")

    let client: UpstreamClient
    let defaultModel: String?
    let defaultMaxTokens: Int

    init(configuration c: Configuration, host: PluginHost) throws {
        client = try UpstreamClient(
            host: host, settings: c.upstream, defaultBaseURL: "https://api.anthropic.com/v1", defaultKeyVariable: "ANTHROPIC_API_KEY",
            credential: { (name: "x-api-key", value: $0) }, fixedHeaders: [(name: "anthropic-version", value: c.anthropicVersion ?? "2023-06-01")])
        defaultModel = c.defaultModel
        defaultMaxTokens = c.defaultMaxTokens ?? 1024
    }

    func chat(request: Data) async throws -> Data {
        var body = try MessagesMapping.request(request, defaultModel: defaultModel, defaultMaxTokens: defaultMaxTokens)
        body["stream"] = false
        let data = try await client.post("/messages", json: body).collect()
        guard let message = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], message["content"] is [Any] else {
            throw PluginError(.unavailable, "the upstream answered 200 with a body that is not a message")
        }
        return try JSONWriter.data(MessagesMapping.completion(message))
    }

    func chatStream(request: Data, emit: @Sendable (Data) -> Bool) async throws -> Data {
        var body = try MessagesMapping.request(request, defaultModel: defaultModel, defaultMaxTokens: defaultMaxTokens)
        body["stream"] = true
        let response = try await client.post("/messages", json: body)
        var parser = ServerSentEventParser()
        var state = MessagesMapping.StreamState()
        for try await chunk in response.body {
            for event in parser.feed(chunk) {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any] else {
                    throw PluginError(.unavailable, "the upstream sent an event that is not JSON")
                }
                switch try state.take(object) {
                case .chunk(let chunk):
                    guard emit(try JSONWriter.data(chunk)) else { return try state.usageJSON() }
                case .done:
                    return try state.usageJSON()
                case .nothing:
                    break
                }
            }
        }
        throw PluginError(.unavailable, "the upstream's stream ended before message_stop: the answer is incomplete")
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(EngineAnthropic.self, host: host)
}
