import Foundation
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// The outcome of one conformance check.
public struct ConformanceCheck: Sendable, Hashable {
    public var name: String
    public var passed: Bool
    /// What went wrong, or what was observed.
    public var detail: String
}

/// The checks run for one kind of one plugin.
public struct ConformanceReport: Sendable, Hashable {
    public var pluginID: String
    public var kind: PluginKind
    public var checks: [ConformanceCheck]
    public var passed: Bool { checks.allSatisfy(\.passed) }
    public var failures: [ConformanceCheck] { checks.filter { !$0.passed } }
}

/// Runs the conformance kit for every kind a plugin provides.
///
/// From a plugin author's own tests:
///
/// ```swift
/// @Test func conforms() async throws {
///     let reports = try await PluginConformance.run(pluginAt: ".build/debug/libmy-plugin.so", config: #"{"limit": 10}"#)
///     for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
/// }
/// ```
public enum PluginConformance {
    /// Loads the plugin at `path`, creates one instance per kind with `config` (JSON) and runs
    /// the kit. Throws when the plugin cannot be loaded or created (the refusal says why).
    public static func run(pluginAt path: String, config: String = "{}") async throws(PluginLoadError) -> [ConformanceReport] {
        let image = try PluginImage(path: path)
        // Check the configuration as the runtime does before it calls create().
        let json: JSONValue
        do {
            json = try JSONValue.parse(Data(config.utf8))
        } catch {
            throw PluginLoadError(.configRejected, "The configuration is not valid JSON: \(config)", path: path)
        }
        let violations = (try? JSONSchema(image.info.manifest.configSchema))?.violations(of: json) ?? []
        guard violations.isEmpty else {
            throw PluginLoadError(
                .configRejected, "The configuration does not match plugin '\(image.info.id)' schema: \(violations.joined(separator: "; "))",
                path: path)
        }
        var reports: [ConformanceReport] = []
        for kind in PluginKind.all where image.info.kinds.contains(kind) {
            let host = ConformanceHost()
            let instance = try PluginInstance(image: image, config: Data(config.utf8), services: host)
            defer { instance.destroy() }
            switch kind {
            case .rateLimiter:
                reports.append(RateLimiterConformance(instance: instance).run())
            case .retriever:
                reports.append(RetrieverConformance(instance: instance).run())
            case .pricing:
                reports.append(PricingConformance(instance: instance).run())
            case .engine:
                reports.append(await EngineConformance(instance: instance).run())
            case .connector:
                reports.append(await ConnectorConformance(instance: instance).run())
            case .tool:
                reports.append(await ToolConformance(instance: instance).run())
            default:
                break
            }
        }
        return reports
    }
}

/// Host services for conformance runs: collects logs and counters, real clocks, no registry.
public final class ConformanceHost: HostServices {
    private let state = Mutex<(logs: [String], counters: [String: Int64])>(([], [:]))

    public init() {}

    public func log(level: PluginHost.LogLevel, message: String) {
        state.withLock { $0.logs.append("[\(level)] \(message)") }
    }

    public func addCounter(name: String, delta: Int64) {
        state.withLock { $0.counters[name, default: 0] += delta }
    }

    public var logs: [String] { state.withLock { $0.logs } }
    public var counters: [String: Int64] { state.withLock { $0.counters } }
}

/// Collects checks for a report.
struct CheckList {
    var checks: [ConformanceCheck] = []

    mutating func check(_ name: String, _ condition: Bool, _ detail: @autoclosure () -> String = "") {
        checks.append(ConformanceCheck(name: name, passed: condition, detail: condition ? "" : detail()))
    }

    mutating func expectNoThrow<T>(_ name: String, _ body: () throws -> T) -> T? {
        do {
            let value = try body()
            checks.append(ConformanceCheck(name: name, passed: true, detail: ""))
            return value
        } catch {
            checks.append(ConformanceCheck(name: name, passed: false, detail: "threw \(error)"))
            return nil
        }
    }
}
