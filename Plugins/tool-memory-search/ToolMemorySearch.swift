import Foundation
import OrionPluginABI
import OrionPluginSDK

/// `tool-memory-search`: lets agents search their tenant's memory — what worked before for a
/// similar intent — through the host's `memory.search` service, so the tenant is always the
/// calling one.
final class ToolMemorySearch: OrionPlugin, ToolPlugin {
    /// - Configuration keys:
    ///   - `maxResults` (integer 1–50, default 10): the most memories one call returns, whatever
    ///     `topK` asks.
    struct Configuration: Decodable, Sendable {
        var maxResults: Int?
    }

    static let descriptor = PluginDescriptor(
        id: "tool-memory-search", version: "1.0.0", capabilities: ["tools"],
        configSchema: #"{"type":"object","additionalProperties":false,"properties":{"maxResults":{"type":"integer","minimum":1,"maximum":50}}}"#,
        summary: "A tool that searches the calling tenant's agent memory",
        tool: ToolDescriptor(
            name: "memory_search",
            description: "Find memories of earlier runs whose intent resembles the query: what was tried, and how useful it proved.",
            inputSchema: """
                {"type":"object","additionalProperties":false,"required":["query"],"properties":{
                "query":{"type":"string","minLength":1,"maxLength":2000,"description":"What the agent is trying to do."},
                "topK":{"type":"integer","minimum":1,"maximum":50,"description":"How many memories (default 5)."}}}
                """,
            outputSchema: """
                {"type":"object","required":["memories"],"properties":{
                "memories":{"type":"array","items":{"type":"object","required":["id","intent","experience","utility","score"],"properties":{
                "id":{"type":"string"},"intent":{"type":"string"},"experience":{"type":"string"},
                "utility":{"type":"number"},"score":{"type":"number"}}}},
                "degraded":{"type":"string"}}}
                """))

    let maxResults: Int

    init(configuration: Configuration, host: PluginHost) throws {
        maxResults = configuration.maxResults ?? 10
    }

    func call(_ call: ToolCall) async throws -> Data {
        let input = call.inputObject
        let query = input["query"] as? String ?? ""
        let topK = min((input["topK"] as? NSNumber)?.intValue ?? 5, maxResults)
        let answer = try await call.service("memory.search", request: try JSONWriter.data(["query": query, "topK": topK]))
        let object = (try? JSONSerialization.jsonObject(with: answer)) as? [String: Any] ?? [:]
        var output: [String: Any] = ["memories": object["memories"] ?? []]
        if let degraded = object["degraded"] { output["degraded"] = degraded }
        return try JSONWriter.data(output)
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(ToolMemorySearch.self, host: host)
}
