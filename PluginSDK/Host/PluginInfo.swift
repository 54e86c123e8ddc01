import Foundation
import OrionPluginABI
import OrionPluginSDK

/// A plugin's identity and manifest, copied out of its `orion_plugin_info`.
public struct PluginInfo: Sendable, Hashable {
    public var id: String
    public var version: String
    public var abiMajor: UInt16
    public var abiMinor: UInt16
    /// Empty for C/C++ plugins.
    public var toolchain: String
    public var kinds: PluginKind
    public var manifest: PluginManifest
}

/// The capability manifest a plugin declares.
public struct PluginManifest: Sendable, Hashable {
    /// Capability names the tier manifest may map to this plugin (`rate_limit`, `retrieval`, ...).
    public var capabilities: [String]
    /// One-line description.
    public var summary: String
    /// The configuration schema; `{"type":"object"}` when the plugin declares none.
    public var configSchema: JSONValue
    /// Tool plugins: the tool's name and schemas (`tool` in the manifest).
    public var tool: ToolManifest?
    /// The whole manifest as declared.
    public var raw: JSONValue

    public static func == (a: PluginManifest, b: PluginManifest) -> Bool { a.raw == b.raw }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }

    /// Parses and checks manifest JSON; the error text says what to fix.
    public static func parse(_ text: String, pluginID: String) throws(PluginLoadError) -> PluginManifest {
        let refuse = { (why: String) in
            PluginLoadError(
                .invalidManifest,
                "Plugin '\(pluginID)' declares an invalid capability manifest: \(why). Fix the manifest string returned in orion_plugin_info.manifest and rebuild the plugin.")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Data(text.utf8))
        } catch {
            throw refuse("it is not valid JSON")
        }
        guard let object = value.objectValue else { throw refuse("it must be a JSON object") }
        guard let caps = object["capabilities"]?.arrayValue, !caps.isEmpty else {
            throw refuse("'capabilities' must be a non-empty list of names")
        }
        let names = caps.compactMap(\.stringValue)
        guard names.count == caps.count, names.allSatisfy({ !$0.isEmpty }) else {
            throw refuse("every entry of 'capabilities' must be a non-empty string")
        }
        let schema = object["config_schema"] ?? .object(["type": .string("object")])
        do {
            _ = try JSONSchema(schema)
        } catch {
            throw refuse(error.description)
        }
        var tool: ToolManifest?
        if let declared = object["tool"] {
            guard let fields = declared.objectValue else { throw refuse("'tool' must be an object with name, description, input_schema and output_schema") }
            let name = fields["name"]?.stringValue ?? ""
            guard !name.isEmpty, name.count <= 64, name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }) else {
                throw refuse("'tool.name' must be 1 to 64 of a-z, 0-9, '-' and '_', got '\(name)'")
            }
            guard let input = fields["input_schema"], let output = fields["output_schema"] else {
                throw refuse("'tool' needs input_schema and output_schema (JSON Schemas)")
            }
            do {
                tool = ToolManifest(
                    name: name, description: fields["description"]?.stringValue ?? "", inputSchema: try JSONSchema(input),
                    outputSchema: try JSONSchema(output))
            } catch {
                throw refuse("tool '\(name)': \(error.description.replacingOccurrences(of: "config_schema", with: "its schema"))")
            }
        }
        return PluginManifest(capabilities: names, summary: object["summary"]?.stringValue ?? "", configSchema: schema, tool: tool, raw: value)
    }
}

/// A tool's name and the schemas of its input and output.
public struct ToolManifest: Sendable {
    public var name: String
    public var description: String
    public var inputSchema: JSONSchema
    public var outputSchema: JSONSchema
}
