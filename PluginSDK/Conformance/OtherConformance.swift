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
