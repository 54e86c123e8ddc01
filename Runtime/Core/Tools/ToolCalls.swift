import Foundation
import Logging
import Metrics
import OrionPluginHost
import OrionPluginSDK

/// A tool a tier offers.
public struct ToolEntry: Sendable {
    public var name: String
    public var instance: String
    public var manifest: ToolManifest
}

/// Why a tool call was refused or failed.
public struct ToolError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound, invalidInput, runNotActive, unavailable, timeout, failed, invalidOutput, cancelled
    }
    public var code: Code
    public var message: String
    /// For `invalidInput`: the failing field as a JSON pointer (`/input/query`).
    public var field: String?
    public var description: String { message }
}

/// What a tool call returned.
public struct ToolResult: Sendable {
    public var output: Data
    public var runID: String
    public var durationMs: Double
}

/// Tool calls through the tier's `tools` instances: input checked against the tool's schema, a
/// deadline (`tools.timeoutSeconds`), a circuit breaker per instance, the output checked against
/// its schema, each call recorded as a tool call of its run and counted in
/// `orion_tool_calls_total{tool,outcome}`.
public final class ToolCalls: Sendable {
    /// The tier capability that lists a tier's tool instances.
    public static let capability = "tools"
    let registry: Registry
    let runs: RunRunner
    public let services: HostServiceDirectory
    public let breakers: EngineBreakers
    let timeout: Duration
    let logger: Logger

    public init(registry: Registry, runs: RunRunner, services: HostServiceDirectory, config: RuntimeConfig, logger: Logger) {
        self.registry = registry
        self.runs = runs
        self.services = services
        breakers = EngineBreakers(
            failureThreshold: config.tools.breakerFailures, openSeconds: config.tools.breakerOpenSeconds, metric: "orion_tool_breaker_transitions_total")
        timeout = .milliseconds(Int64(config.tools.timeoutSeconds * 1000))
        self.logger = logger
    }

    /// The tools `tier` offers, by name (the first instance wins when two declare one name).
    public func tools(tier: String) -> [ToolEntry] {
        let snapshot = registry.snapshot
        var seen = Set<String>()
        return (snapshot.tiers[tier]?.capabilities[Self.capability] ?? []).compactMap { id -> ToolEntry? in
            guard let handle = snapshot.instances[id], let manifest = handle.info.manifest.tool, seen.insert(manifest.name).inserted else { return nil }
            return ToolEntry(name: manifest.name, instance: id, manifest: manifest)
        }
    }

    /// Every tool any tier offers, by name (for the API document).
    public func allTools() -> [ToolEntry] {
        var byName: [String: ToolEntry] = [:]
        for tier in registry.snapshot.tiers.keys.sorted() {
            for tool in tools(tier: tier) where byName[tool.name] == nil { byName[tool.name] = tool }
        }
        return byName.values.sorted { $0.name < $1.name }
    }

    /// Calls tool `name` of the caller's tier with `input` (JSON). With `runID`, the call joins that
    /// run (which must be in progress in this process); without, it is a run of its own (kind `tool`).
    public func call(_ name: String, input: Data, scope: ToolScope, joining runID: String?) async throws(ToolError) -> ToolResult {
        let count = { (outcome: String) in Counter(label: "orion_tool_calls_total", dimensions: [("tool", name), ("outcome", outcome)]).increment() }
        guard let tool = tools(tier: scope.tier).first(where: { $0.name == name }) else {
            // Callers choose the name: an unknown one must not become a label of its own.
            Counter(label: "orion_tool_calls_total", dimensions: [("tool", "(unknown)"), ("outcome", "not_found")]).increment()
            let known = tools(tier: scope.tier).map(\.name)
            throw ToolError(code: .notFound, message: "no tool '\(name)' in tier '\(scope.tier)'; it offers: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(input)
        } catch {
            count("invalid_input")
            throw ToolError(code: .invalidInput, message: "'input' must be JSON", field: "/input")
        }
        if let first = tool.manifest.inputSchema.located(value, subject: "the input").first {
            count("invalid_input")
            let pointer = "/input" + (first.path.isEmpty ? "" : "/" + first.path.replacingOccurrences(of: ".", with: "/"))
            throw ToolError(code: .invalidInput, message: "tool '\(name)': \(first.message)", field: pointer)
        }
        if let runID {
            guard let trace = runs.activeTrace(runID: runID, namespace: scope.namespace) else {
                count("run_not_active")
                throw ToolError(code: .runNotActive, message: "run '\(runID)' is not in progress here; a tool call joins a run while it runs, or omit runId")
            }
            var joined = scope
            joined.runID = runID
            return try await perform(tool, input: input, scope: joined, trace: trace, count: count)
        }
        let box = ResultBox()
        do {
            _ = try await runs.run(
                RunRequest(
                    namespace: scope.namespace, tier: scope.tier, session: "tools", kind: .tool, intent: "tool \(name)", topK: 0, user: scope.user,
                    tenantCapUSD: scope.tenantCapUSD)
            ) { context in
                var own = scope
                own.runID = context.runID
                box.result = try await perform(tool, input: input, scope: own, trace: context.trace, count: count)
                return RunConclusion(outcome: .success)
            }
        } catch let error as ToolError {
            throw error
        } catch let cancelled as RunCancelled {
            throw ToolError(code: .cancelled, message: cancelled.description)
        } catch {
            throw ToolError(code: .failed, message: "the tool call's run could not be recorded: \(error)")
        }
        guard let result = box.result else { throw ToolError(code: .failed, message: "the tool call ended without a result") }
        return result
    }

    private final class ResultBox: @unchecked Sendable {
        // @unchecked: written once by the run's acting step, read after the run returns.
        var result: ToolResult?
    }

    private func perform(
        _ tool: ToolEntry, input: Data, scope: ToolScope, trace: RunTrace, count: (String) -> Void
    ) async throws(ToolError) -> ToolResult {
        let started = RunTrace.nowMs()
        let clock = ContinuousClock.now
        func finish(_ outcome: String, _ error: ToolError?) {
            count(outcome)
            trace.record(ToolCallRecord(
                name: tool.name, arguments: input, startedAt: started, durationMs: RunTrace.ms(since: clock), success: error == nil, error: error?.message))
        }
        guard breakers.permit(tool.instance) else {
            let error = ToolError(code: .unavailable, message: "tool '\(tool.name)' (instance '\(tool.instance)'): circuit open after repeated failures; retry later")
            finish("breaker_open", error)
            throw error
        }
        let output: Data
        do {
            let lease = try registry.lease(kind: .tool, id: tool.instance)
            guard let caller = lease.instance.tool else {
                lease.release()
                throw PluginError(.unsupported, "instance '\(tool.instance)' provides no tool table")
            }
            let identity = ToolCaller.Caller(tenantID: scope.tenantID, workspaceID: scope.tenantID, userID: scope.user, runID: scope.runID)
            let services = self.services
            output = try await services.withScope(scope) { token in
                let address = UInt(bitPattern: token)
                return try await Deadline.run(timeout, what: "tools.timeoutSeconds") {
                    // The lease ends when the plugin answers, not at the deadline: an instance
                    // swapped out meanwhile is destroyed only after its call returned.
                    defer { lease.release() }
                    return try await caller.call(input: input, caller: identity, scope: UnsafeRawPointer(bitPattern: address))
                }
            }
        } catch let error as PluginError {
            let callersFault = error.code == .invalidArgument
            breakers.record(tool.instance, success: callersFault)
            let failure = error.code == .deadline
                ? ToolError(code: .timeout, message: "tool '\(tool.name)': \(error.message)")
                : ToolError(code: callersFault ? .invalidInput : .failed, message: "tool '\(tool.name)': \(error.message)", field: callersFault ? "/input" : nil)
            finish(error.code == .deadline ? "timeout" : callersFault ? "invalid_input" : "error", failure)
            throw failure
        } catch let error as RegistryError {
            // Recorded, so a breaker letting its one trial through is never left waiting for it.
            breakers.record(tool.instance, success: false)
            let failure = ToolError(code: .unavailable, message: "tool '\(tool.name)': \(error.message)")
            finish("error", failure)
            throw failure
        } catch {
            let failure = ToolError(code: .failed, message: "tool '\(tool.name)': \(error)")
            breakers.record(tool.instance, success: false)
            finish("error", failure)
            throw failure
        }
        guard let value = try? JSONValue.parse(output) else {
            breakers.record(tool.instance, success: false)
            let failure = ToolError(code: .invalidOutput, message: "tool '\(tool.name)' answered with something that is not JSON")
            finish("invalid_output", failure)
            throw failure
        }
        if let first = tool.manifest.outputSchema.located(value, subject: "the output").first {
            breakers.record(tool.instance, success: false)
            let failure = ToolError(code: .invalidOutput, message: "tool '\(tool.name)' answered outside its output schema: \(first.message)")
            finish("invalid_output", failure)
            throw failure
        }
        breakers.record(tool.instance, success: true)
        finish("ok", nil)
        return ToolResult(output: output, runID: scope.runID, durationMs: RunTrace.ms(since: clock))
    }
}
