import Foundation
import OrionPluginHost
import OrionPluginSDK

/// Conformance checks for pricing tables.
public struct PricingConformance: Sendable {
    public let instance: PluginInstance
    public init(instance: PluginInstance) { self.instance = instance }

    public func run() -> ConformanceReport {
        var list = CheckList()
        guard let pricing = instance.pricing else {
            list.check("provides a pricing table", false, "the plugin declares no pricing table")
            return ConformanceReport(pluginID: instance.image.info.id, kind: .pricing, checks: list.checks)
        }
        do {
            _ = try pricing.price(model: "orion-conformance-no-such-model-\(UUID().uuidString)")
            list.check("an unknown model is not-found", false, "an unknown model was priced")
        } catch {
            list.check("an unknown model is not-found", error.code == .notFound, "got \(error.code)")
        }
        return ConformanceReport(pluginID: instance.image.info.id, kind: .pricing, checks: list.checks)
    }
}

/// Conformance checks for engines: every call completes exactly once, with a result or an error.
public struct EngineConformance: Sendable {
    public let instance: PluginInstance
    public init(instance: PluginInstance) { self.instance = instance }

    public func run() async -> ConformanceReport {
        var list = CheckList()
        guard let engine = instance.engine else {
            list.check("provides an engine table", false, "the plugin declares no engine")
            return ConformanceReport(pluginID: instance.image.info.id, kind: .engine, checks: list.checks)
        }
        do {
            let result = try await engine.embed(model: "", texts: ["first text", "second text"])
            list.check("embed returns one vector per text", result.count == 2, "\(result.count) vectors for 2 texts")
            list.check("embed returns finite values", result.vectors.allSatisfy(\.isFinite), "non-finite values")
        } catch let error as PluginError {
            list.check("embed completes with a result or a clear error", !error.message.isEmpty, "error without message")
        } catch {
            list.check("embed completes with a result or a clear error", false, "\(error)")
        }
        let request = Data(#"{"model":"conformance","messages":[{"role":"user","content":"ping"}],"max_tokens":1}"#.utf8)
        do {
            let body = try await engine.chat(request: request)
            let json = try? JSONValue.parse(body)
            list.check("chat returns a JSON object", json?.objectValue != nil, "body is not a JSON object")
        } catch let error as PluginError {
            list.check("chat completes with a result or a clear error", !error.message.isEmpty, "error without message")
        } catch {
            list.check("chat completes with a result or a clear error", false, "\(error)")
        }
        return ConformanceReport(pluginID: instance.image.info.id, kind: .engine, checks: list.checks)
    }
}

/// Conformance checks for connectors.
public struct ConnectorConformance: Sendable {
    public let instance: PluginInstance
    public init(instance: PluginInstance) { self.instance = instance }

    public func run() async -> ConformanceReport {
        var list = CheckList()
        guard let connector = instance.connector else {
            list.check("provides a connector table", false, "the plugin declares no connector")
            return ConformanceReport(pluginID: instance.image.info.id, kind: .connector, checks: list.checks)
        }
        let event = PluginEvent(
            type: "run_completed", tenantID: "conformance", workspaceID: "conformance", runID: UUID().uuidString,
            timestampNanoseconds: SystemClock.nowNanoseconds(), sequence: 1, payload: Data(#"{"ok":true}"#.utf8))
        do {
            try await connector.deliver(event)
            list.check("delivers an event", true)
        } catch let error as PluginError {
            list.check("delivery completes with a result or a clear error", !error.message.isEmpty, "error without message")
        } catch {
            list.check("delivery completes", false, "\(error)")
        }
        return ConformanceReport(pluginID: instance.image.info.id, kind: .connector, checks: list.checks)
    }
}

/// Conformance checks for tools: the table and manifest, and one call with an input built from the
/// tool's input schema, which must complete with output inside the output schema or with an error
/// that says why.
public struct ToolConformance: Sendable {
    public let instance: PluginInstance
    public init(instance: PluginInstance) { self.instance = instance }

    public func run() async -> ConformanceReport {
        var list = CheckList()
        let report = { ConformanceReport(pluginID: instance.image.info.id, kind: .tool, checks: list.checks) }
        guard let tool = instance.tool else {
            list.check("provides a tool table", false, "the plugin declares no tool")
            return report()
        }
        guard let manifest = instance.image.info.manifest.tool else {
            list.check("declares its tool in the manifest", false, "no 'tool' object (name, description, input_schema, output_schema)")
            return report()
        }
        list.check("declares its tool in the manifest", true, manifest.name)
        list.check("describes its tool", !manifest.description.isEmpty, "the tool's description is empty: agents choose tools by it")
        let input = Self.example(manifest.inputSchema.root)
        let problems = manifest.inputSchema.violations(of: input)
        guard problems.isEmpty else {
            list.check("an input can be built from its input schema", false, problems.joined(separator: "; "))
            return report()
        }
        let caller = ToolCaller.Caller(tenantID: "conformance", workspaceID: "conformance", userID: "conformance", runID: UUID().uuidString)
        do {
            let output = try await tool.call(input: input.jsonData, caller: caller, scope: nil)
            guard let value = try? JSONValue.parse(output) else {
                list.check("answers JSON", false, "the output is not JSON")
                return report()
            }
            let violations = manifest.outputSchema.violations(of: value)
            list.check("answers inside its output schema", violations.isEmpty, violations.joined(separator: "; "))
        } catch let error as PluginError {
            list.check("a call completes with output or an error that says why", !error.message.isEmpty, "error without message")
        } catch {
            list.check("a call completes", false, "\(error)")
        }
        return report()
    }

    /// The smallest value a schema accepts, as far as this kit can tell: the first `enum` value
    /// or the `default`, required properties only, minimum lengths and bounds.
    static func example(_ schema: JSONValue) -> JSONValue {
        guard let rules = schema.objectValue else { return .null }
        if let first = rules["enum"]?.arrayValue?.first { return first }
        if let value = rules["default"] { return value }
        let type = rules["type"]?.stringValue ?? rules["type"]?.arrayValue?.first?.stringValue ?? "object"
        switch type {
        case "object":
            let properties = rules["properties"]?.objectValue ?? [:]
            var object: [String: JSONValue] = [:]
            for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                object[name] = example(properties[name] ?? .object([:]))
            }
            return .object(object)
        case "array":
            let count = Int(rules["minItems"]?.numberValue ?? 0)
            return .array(Array(repeating: example(rules["items"] ?? .object([:])), count: count))
        case "string": return .string(String(repeating: "x", count: max(1, Int(rules["minLength"]?.numberValue ?? 1))))
        case "integer", "number":
            let low = rules["minimum"]?.numberValue ?? rules["exclusiveMinimum"].flatMap(\.numberValue).map { $0 + 1 } ?? 1
            return .number(type == "integer" ? low.rounded(.up) : low)
        case "boolean": return .bool(true)
        default: return .null
        }
    }
}
