import Foundation
import OrionCore
import OrionPluginHost

/// The OpenAPI 3.1 document of the gateway (`OpenAPI/openapi.json`, kept by hand beside the
/// routes and checked against them by a test), served at `/openapi.json`.
///
/// It ships in the `orion_OrionGateway.resources` folder that the build puts beside the `orion`
/// executable; keep that folder with the executable (as the plugin `.so` files are).
public enum OpenAPIDocument {
    /// The document's bytes, or nil when the resources folder is missing.
    public static let data: Data? = {
        let name = "orion_OrionGateway.resources"
        var folders = [Bundle.main.bundleURL.appendingPathComponent(name)]
        if let executable = Bundle.main.executableURL {
            folders.append(executable.deletingLastPathComponent().appendingPathComponent(name))
        }
        for folder in folders {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent("openapi.json").path) { return data }
        }
        return nil
    }()

    /// The document as served: ``data`` plus one `POST /v1/tools/<name>/call` per tool of the
    /// deployment, its request and response bodies being the tool's own schemas.
    public static func served(tools: [ToolEntry]) -> Data? {
        guard let data else { return nil }
        guard !tools.isEmpty, var document = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            var paths = document["paths"] as? [String: Any]
        else { return data }
        for tool in tools {
            let input = (try? JSONSerialization.jsonObject(with: tool.manifest.inputSchema.root.jsonData)) ?? [:]
            let output = (try? JSONSerialization.jsonObject(with: tool.manifest.outputSchema.root.jsonData)) ?? [:]
            let error: [String: Any] = ["$ref": "#/components/responses/Error"]
            paths["/v1/tools/\(tool.name)/call"] = [
                "post": [
                    "operationId": "tool_\(tool.name.replacingOccurrences(of: "-", with: "_"))",
                    "summary": "Tool \(tool.name): \(tool.manifest.description)",
                    "description": "Permission: tool:\(tool.name):call. The same operation as POST /v1/tools/{name}/call, with this tool's schemas.",
                    "requestBody": [
                        "required": true,
                        "content": ["application/json": ["schema": [
                            "type": "object", "additionalProperties": false, "required": ["input"],
                            "properties": ["input": input, "runId": ["type": "string", "minLength": 1, "maxLength": 200]],
                        ] as [String: Any]]],
                    ] as [String: Any],
                    "responses": [
                        "200": ["description": "The tool's output.", "content": ["application/json": ["schema": [
                            "type": "object", "required": ["tool", "output", "runId", "durationMs"],
                            "properties": ["tool": ["type": "string"], "output": output, "runId": ["type": "string"], "durationMs": ["type": "number"]],
                        ] as [String: Any]]]] as [String: Any],
                        "400": error, "401": error, "403": error, "404": error, "409": error, "429": error, "502": error, "503": error, "504": error,
                    ] as [String: Any],
                ] as [String: Any]
            ]
        }
        document["paths"] = paths
        return (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? data
    }
}
