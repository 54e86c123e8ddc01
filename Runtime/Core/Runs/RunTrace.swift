import Crypto
import Foundation
import Synchronization

/// One step of a run: retrieve, generate, a tool call, …
public struct RunStep: Sendable, Hashable {
    public enum Status: String, Sendable { case ok, error, cancelled }
    /// What kind of work: `retrieve`, `generate`, `tool_call`, or a name the caller chose.
    public var kind: String
    /// Which one: the retriever, the engine and model, the tool.
    public var name: String
    public var status: Status
    /// Milliseconds since the Unix epoch.
    public var startedAt: Int64
    public var durationMs: Double
    /// Facts about the step as a JSON object (token counts, hit counts, the error).
    public var detail: [String: String]

    /// The step as JSON values: what `run_progress` carries and `GET /v1/runs/{id}` lists.
    public var jsonObject: [String: Any] {
        ["kind": kind, "name": name, "status": status.rawValue, "startedAt": startedAt, "durationMs": durationMs, "detail": detail]
    }

    public init(kind: String, name: String, status: Status = .ok, startedAt: Int64, durationMs: Double, detail: [String: String] = [:]) {
        self.kind = kind
        self.name = name
        self.status = status
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.detail = detail
    }
}

/// One tool call of a run. The arguments are kept only as a digest.
public struct ToolCallRecord: Sendable, Hashable {
    public var name: String
    /// SHA-256 (hex) of the arguments as sent.
    public var argumentsSHA256: String
    public var startedAt: Int64
    public var durationMs: Double
    public var success: Bool
    public var error: String?

    public init(name: String, arguments: Data, startedAt: Int64, durationMs: Double, success: Bool, error: String? = nil) {
        self.init(name: name, argumentsSHA256: Self.digest(arguments), startedAt: startedAt, durationMs: durationMs, success: success, error: error)
    }

    public init(name: String, argumentsSHA256: String, startedAt: Int64, durationMs: Double, success: Bool, error: String? = nil) {
        self.name = name
        self.argumentsSHA256 = argumentsSHA256
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.success = success
        self.error = error
    }

    public static func digest(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// What a run did so far, kept in memory while it runs and written with the run's final record in
/// one transaction. Any task may add to it; ``cancel(reason:)`` asks the run to stop.
public final class RunTrace: Sendable {
    public let runID: String
    private struct State {
        var steps: [RunStep] = []
        var toolCalls: [ToolCallRecord] = []
        var cancelReason: String?
        var onCancel: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())
    let onStep: @Sendable (RunStep) -> Void

    init(runID: String, onStep: @escaping @Sendable (RunStep) -> Void = { _ in }) {
        self.runID = runID
        self.onStep = onStep
    }

    /// Adds a finished step (and publishes `run_progress`).
    public func record(_ step: RunStep) {
        state.withLock { $0.steps.append(step) }
        onStep(step)
    }

    /// Adds a tool call and its `tool_call` step.
    public func record(_ call: ToolCallRecord) {
        state.withLock { $0.toolCalls.append(call) }
        record(RunStep(
            kind: "tool_call", name: call.name, status: call.success ? .ok : .error, startedAt: call.startedAt, durationMs: call.durationMs,
            detail: call.error.map { ["error": $0] } ?? [:]))
    }

    /// Runs `work` as a step of kind `kind`, recording its duration and whether it threw.
    public func measure<T>(_ kind: String, name: String, _ work: () async throws -> (T, [String: String])) async throws -> T {
        let started = Self.nowMs()
        let clock = ContinuousClock.now
        do {
            let (value, detail) = try await work()
            record(RunStep(kind: kind, name: name, startedAt: started, durationMs: Self.ms(since: clock), detail: detail))
            return value
        } catch {
            let status: RunStep.Status = isCancelled ? .cancelled : .error
            record(RunStep(kind: kind, name: name, status: status, startedAt: started, durationMs: Self.ms(since: clock), detail: ["error": "\(error)"]))
            throw error
        }
    }

    public var steps: [RunStep] { state.withLock { $0.steps } }
    public var toolCalls: [ToolCallRecord] { state.withLock { $0.toolCalls } }

    /// True once someone asked the run to stop.
    public var isCancelled: Bool { state.withLock { $0.cancelReason != nil } }
    public var cancelReason: String? { state.withLock { $0.cancelReason } }

    /// Asks the run to stop. Cooperative: work that looks at ``isCancelled`` (a stream at its next
    /// chunk) stops; the ``onCancel(_:)`` actions run.
    public func cancel(reason: String) {
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            guard state.cancelReason == nil else { return [] }
            state.cancelReason = reason
            return state.onCancel
        }
        for action in actions { action() }
    }

    /// Runs `action` when the run is cancelled (at once if it already is).
    public func onCancel(_ action: @escaping @Sendable () -> Void) {
        let already = state.withLock { state -> Bool in
            if state.cancelReason != nil { return true }
            state.onCancel.append(action)
            return false
        }
        if already { action() }
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    static func ms(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}

/// Thrown out of a run that was cancelled.
public struct RunCancelled: Error, Sendable, CustomStringConvertible {
    public var runID: String
    public var reason: String
    public var description: String { "run \(runID) was cancelled: \(reason)" }
}
