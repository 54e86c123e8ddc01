import Foundation
import Logging
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// Who a call is for: the budget accounts it is charged to and the usage record it leaves.
public struct EngineAccount: Sendable, Hashable {
    public var tier: String
    public var tenant: String
    public var user: String
    public var session: String
    public var requestID: String
    /// True when the caller named no session: the session is this call alone (its cap bounds the
    /// call; only the tenant's cap spans calls).
    public var isSingleCallSession: Bool
    /// The tenant's own monthly cap, which replaces its tier's when set.
    public var tenantCapUSD: Double?

    public init(
        tier: String, tenant: String, user: String, session: String, requestID: String, isSingleCallSession: Bool = false, tenantCapUSD: Double? = nil
    ) {
        self.tenantCapUSD = tenantCapUSD
        self.tier = tier
        self.tenant = tenant
        self.user = user
        self.session = session
        self.requestID = requestID
        self.isSingleCallSession = isSingleCallSession
    }
}

/// One answered engine call.
public struct EngineAnswer: Sendable {
    /// The `chat.completion` (its `usage` filled in, estimated when the provider sent none); for a
    /// streamed call, the final usage object.
    public var body: Data
    public var engine: String
    public var model: String
    public var usage: ChatUsage
    public var cost: Cost
    /// Routes tried before the one that answered.
    public var fallbacks: Int
}

/// Chat through the engines a tier routes a model to: the caller's caps reserved before the call
/// and settled after it, each engine instance behind its circuit breaker and a deadline, the next
/// route tried when one fails, one usage record per engine call.
public final class ChatEngines: Sendable {
    public static let chatCapability = "chat"
    let registry: Registry
    let prices: PriceBook
    let usage: UsageTracker?
    public let budgets: BudgetLedger
    public let breakers: EngineBreakers
    let config: RuntimeConfig
    let logger: Logger

    /// `events` receives each `budget_alert`.
    /// `shared`: budget accounts every node shares (nil: kept in this process).
    public init(registry: Registry, usage: UsageTracker?, shared: (any SharedBudgets)? = nil, config: RuntimeConfig, logger: Logger, events: EventHub? = nil) {
        self.registry = registry
        self.prices = PriceBook(registry: registry, logger: logger)
        self.usage = usage
        self.budgets = BudgetLedger(usage: usage, shared: shared, alertThreshold: config.telemetry.alertThreshold, logger: logger) { alert in
            var payload: [String: Any] = [
                "scope": alert.scope.rawValue, "spentUsd": Double(alert.spentNanoUSD) / 1e9, "capUsd": Double(alert.capNanoUSD) / 1e9,
                "threshold": config.telemetry.alertThreshold,
            ]
            if let session = alert.session { payload["session"] = session }
            events?.publish(.budgetAlert, tenantID: alert.tenant, tier: alert.tier, payload: payload)
        }
        self.breakers = EngineBreakers(failureThreshold: config.engines.breakerFailures, openSeconds: config.engines.breakerOpenSeconds)
        self.config = config
        self.logger = logger
    }

    /// The per-session cap (`telemetry.defaultCostCapUsd`).
    public var sessionCapUSD: Double { config.telemetry.defaultCostCapUSD }

    /// The model names `tier` routes, sorted.
    public func models(tier: String) -> [String] {
        registry.snapshot.tiers[tier]?.models.keys.sorted() ?? []
    }

    /// The routes for `model` in `tier`; an empty model takes the tier's `chat` capability (each
    /// instance's default model).
    public func routes(tier: String, model: String) throws(EngineError) -> [ModelRoute] {
        guard let found = registry.snapshot.tiers[tier] else { throw EngineError(.unavailable, "tier '\(tier)' is not deployed") }
        if model.isEmpty {
            guard let ids = found.capabilities[Self.chatCapability], !ids.isEmpty else {
                throw EngineError(.invalidRequest, "name a model: tier '\(tier)' maps no default 'chat' engine. Models: \(models(tier: tier).joined(separator: ", "))")
            }
            return ids.map { ModelRoute(instance: $0) }
        }
        guard let routes = found.models[model] else {
            let known = models(tier: tier)
            throw EngineError(.unknownModel, "model '\(model)' is not offered to tier '\(tier)'; its models are: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
        return routes
    }

    /// One chat completion.
    public func complete(_ request: ChatPayload, for caller: EngineAccount) async throws(EngineError) -> EngineAnswer {
        try await call(request, for: caller, routes: try routes(tier: caller.tier, model: request.model), stream: nil)
    }

    /// One chat completion over given routes (a capability's instances, say) instead of the model's.
    public func complete(
        _ request: ChatPayload, for caller: EngineAccount, routes: [ModelRoute], taskType: String
    ) async throws(EngineError) -> EngineAnswer {
        try await call(request, for: caller, routes: routes, stream: nil, taskType: taskType)
    }

    /// A streamed chat: `onChunk` gets each `chat.completion.chunk` (JSON) and returns false to
    /// stop. A route that fails before its first chunk falls back; after it, the stream fails.
    public func stream(_ request: ChatPayload, for caller: EngineAccount, onChunk: @escaping @Sendable (Data) -> Bool) async throws(EngineError) -> EngineAnswer {
        try await call(request, for: caller, routes: try routes(tier: caller.tier, model: request.model), stream: onChunk)
    }

    private func call(
        _ original: ChatPayload, for caller: EngineAccount, routes: [ModelRoute], stream onChunk: (@Sendable (Data) -> Bool)?, taskType: String = "chat"
    ) async throws(EngineError) -> EngineAnswer {
        let requested = original.model
        var request = original
        let maxOutput = request.boundOutput(default: config.engines.defaultMaxTokens)
        let reservation = try await reserve(request, maxOutput: maxOutput, routes: routes, requested: requested, caller: caller)
        var failures: [String] = []
        var rateLimited = true
        // What failed attempts may still cost: a call cut at the deadline keeps running (and
        // billing) upstream, so it is charged its maximum; a stream that failed after output is
        // charged the estimate of what it sent.
        var charged: Int64 = 0
        for (index, route) in routes.enumerated() {
            let model = route.model ?? requested
            guard breakers.permit(route.instance) else {
                failures.append("'\(route.instance)': circuit open after repeated failures")
                rateLimited = false
                continue
            }
            request.setModel(model)
            let started = ContinuousClock.now
            let outcome = await attempt(route.instance, request: request, stream: onChunk)
            let latency = Self.milliseconds(ContinuousClock.now - started)
            switch outcome {
            case .answered(let body, let object, let completionBytes, let tools):
                breakers.record(route.instance, success: true)
                return await finish(
                    body: body, object: object, streamed: onChunk != nil, request: request, completionBytes: completionBytes, tools: tools,
                    route: route, model: model, caller: caller, reservation: reservation, latency: latency, fallbacks: index, taskType: taskType,
                    alreadyCharged: charged)
            case .failed(let error, let emitted, let sentBytes):
                let isCallersFault = error.code == .invalidArgument
                breakers.record(route.instance, success: isCallersFault)
                var cost = Cost.priced(nanoUSD: 0)
                if error.code == .deadline {
                    cost = prices.lookUp(tier: caller.tier, model: model, tokens: TokenCounts(input: request.promptTokenBound, output: Int64(maxOutput)))
                } else if emitted {
                    cost = prices.lookUp(tier: caller.tier, model: model, tokens: ChatUsage.estimate(prompt: request, completionBytes: sentBytes).tokens)
                }
                charged += cost.nanoUSD ?? 0
                record(
                    caller: caller, engine: route.instance, model: model, latency: latency, success: false,
                    usage: (cost.nanoUSD ?? 0) > 0 ? ChatUsage.estimate(prompt: request, completionBytes: sentBytes) : nil, cost: cost,
                    taskType: taskType)
                if error.code != .resourceExhausted { rateLimited = false }
                logger.warning(
                    "engine call failed", metadata: ["orion.engine": "\(route.instance)", "orion.model": "\(model)", "orion.error": "\(error)"])
                if isCallersFault || emitted {
                    await budgets.settle(reservation, actualNanoUSD: charged)
                    throw EngineError(isCallersFault ? .invalidRequest : .unavailable, "engine '\(route.instance)': \(error.message)")
                }
                failures.append("'\(route.instance)': \(error.message)")
            }
        }
        await budgets.settle(reservation, actualNanoUSD: charged)
        let summary = "no engine could answer model '\(requested.isEmpty ? "(default)" : requested)': \(failures.joined(separator: "; "))"
        throw EngineError(rateLimited && !failures.isEmpty ? .rateLimited : .unavailable, summary)
    }

    /// The caller's monthly cap: its tenant's own, or else its tier's.
    func monthlyCapUSD(_ caller: EngineAccount) -> Double {
        caller.tenantCapUSD ?? registry.snapshot.tiers[caller.tier]?.costCapUSD ?? 0
    }

    /// The models a call on `route` may be billed for: the route's own, else the caller's. With
    /// neither (the engine's default model, as for `/v1/chat` without a model), which one is known
    /// only from the answer: every model the tier offers through that instance, else every model
    /// it offers — so the hold covers the dearest of them.
    func billableModels(_ route: ModelRoute, requested: String, tier: String) -> [String] {
        if let named = route.model ?? (requested.isEmpty ? nil : requested) { return [named] }
        let offered = registry.snapshot.tiers[tier]?.models ?? [:]
        let viaInstance = offered.flatMap { name, routes in routes.filter { $0.instance == route.instance }.map { $0.model ?? name } }
        return viaInstance.isEmpty ? offered.flatMap { name, routes in routes.map { $0.model ?? name } } : viaInstance
    }

    /// Holds the most the call could cost on the dearest of its routes.
    private func reserve(_ request: ChatPayload, maxOutput: Int, routes: [ModelRoute], requested: String, caller: EngineAccount) async throws(EngineError) -> BudgetLedger.Reservation {
        let bound = TokenCounts(input: request.promptTokenBound, output: Int64(maxOutput))
        let most = routes.flatMap { billableModels($0, requested: requested, tier: caller.tier) }
            .compactMap { prices.lookUp(tier: caller.tier, model: $0, tokens: bound).nanoUSD }.max() ?? 0
        let tierCap = monthlyCapUSD(caller)
        do {
            return try await budgets.reserve(.init(
                tenant: caller.tenant, session: caller.session, amountNanoUSD: most,
                sessionCapNanoUSD: Self.nano(config.telemetry.defaultCostCapUSD), tenantCapNanoUSD: Self.nano(tierCap),
                sessionIsSingleCall: caller.isSingleCallSession, tier: caller.tier))
        } catch let exceeded as BudgetExceeded {
            throw EngineError(.budgetExceeded, exceeded.description, budget: exceeded)
        } catch {
            throw EngineError(.unavailable, "the spend so far could not be read: \(error)")
        }
    }

    private enum Attempt {
        /// `object` is `body` parsed (nil when it is not a JSON object).
        case answered(body: Data, object: [String: Any]?, completionBytes: Int, tools: [String])
        /// `completionBytes`: what a stream had sent before it failed.
        case failed(PluginError, emitted: Bool, completionBytes: Int)
    }

    /// One call to one engine instance under the deadline.
    private func attempt(_ instance: String, request: ChatPayload, stream onChunk: (@Sendable (Data) -> Bool)?) async -> Attempt {
        let lease: Lease
        do {
            lease = try registry.lease(kind: .engine, id: instance)
        } catch {
            return .failed(PluginError(.unavailable, "not loaded (\(error.message))"), emitted: false, completionBytes: 0)
        }
        // The lease is released when the plugin completes — not at the deadline, which only stops
        // waiting: a swap must not destroy an instance whose call is still running.
        guard let engine = lease.engine else {
            lease.release()
            return .failed(PluginError(.unavailable, "not an engine"), emitted: false, completionBytes: 0)
        }
        let data = request.data()
        let timeout = Duration.milliseconds(Int64(config.engines.timeoutSeconds * 1000))
        guard let onChunk else {
            do {
                let body = try await Deadline.run(timeout) {
                    defer { lease.release() }
                    return try await PluginCallMetrics.measure(instance: instance, operation: "chat") { try await engine.chat(request: data) }
                }
                let answer = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
                let messages = (answer?["choices"] as? [[String: Any]])?.compactMap { $0["message"] as? [String: Any] } ?? []
                let bytes = messages.reduce(0) { $0 + ChatPayload.textBytes($1["content"] ?? "") + ChatPayload.textBytes($1["tool_calls"] ?? []) }
                return .answered(
                    body: body, object: answer, completionBytes: bytes, tools: Self.toolNames(messages.flatMap { $0["tool_calls"] as? [Any] ?? [] }))
            } catch {
                return .failed(Self.pluginError(error), emitted: false, completionBytes: 0)
            }
        }
        let tally = StreamTally(forward: onChunk)
        do {
            let usage = try await Deadline.run(timeout, onTimeout: { tally.close() }) {
                defer { lease.release() }
                return try await PluginCallMetrics.measure(instance: instance, operation: "chat_stream") {
                    try await engine.chatStream(request: data) { tally.take($0) }
                }
            }
            let (bytes, tools, _) = tally.summary
            return .answered(body: usage, object: (try? JSONSerialization.jsonObject(with: usage)) as? [String: Any], completionBytes: bytes, tools: tools)
        } catch {
            let summary = tally.summary
            return .failed(Self.pluginError(error), emitted: summary.emitted, completionBytes: summary.bytes)
        }
    }

    private func finish(
        body: Data, object: [String: Any]?, streamed: Bool, request: ChatPayload, completionBytes: Int, tools: [String], route: ModelRoute,
        model: String, caller: EngineAccount, reservation: BudgetLedger.Reservation, latency: Double, fallbacks: Int, taskType: String,
        alreadyCharged: Int64
    ) async -> EngineAnswer {
        var answer = object ?? [:]
        let providerUsage = streamed ? answer : answer["usage"]
        let provided = ChatUsage.read(providerUsage)
        let usage = provided ?? ChatUsage.estimate(prompt: request, completionBytes: completionBytes)
        let priced = (answer["model"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? model
        let cost = prices.cost(tier: caller.tier, model: priced, tokens: usage.tokens)
        await budgets.settle(reservation, actualNanoUSD: (cost.nanoUSD ?? 0) + alreadyCharged)
        record(caller: caller, engine: route.instance, model: priced, latency: latency, success: true, usage: usage, cost: cost, tools: tools, taskType: taskType)
        let out: Data
        if streamed {
            out = (try? JSONWriter.data(usage.json)) ?? Data()
        } else if provided != nil {
            // The provider's counts stand: the answer goes back as the provider wrote it.
            out = body
        } else {
            answer["usage"] = usage.json
            out = (try? JSONWriter.data(answer)) ?? body
        }
        return EngineAnswer(body: out, engine: route.instance, model: priced, usage: usage, cost: cost, fallbacks: fallbacks)
    }

    private func record(
        caller: EngineAccount, engine: String, model: String, latency: Double, success: Bool, usage: ChatUsage? = nil, cost: Cost = .priced(nanoUSD: 0),
        tools: [String] = [], taskType: String = "chat"
    ) {
        self.usage?.record(UsageRecord(
            requestID: caller.requestID, sessionID: caller.session, tenant: caller.tenant, user: caller.user, engine: engine, model: model,
            tokens: usage?.tokens ?? TokenCounts(), cost: cost, latencyMilliseconds: latency, tools: tools, taskType: taskType, success: success,
            estimated: usage?.estimated ?? false))
    }

    static func toolNames(_ calls: [Any]) -> [String] {
        calls.compactMap { (($0 as? [String: Any])?["function"] as? [String: Any])?["name"] as? String }
    }

    static func pluginError(_ error: any Error) -> PluginError {
        error as? PluginError ?? PluginError(.internal, "\(error)")
    }

    static func nano(_ usd: Double) -> Int64 { Int64((usd * 1e9).rounded()) }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}

/// What a streamed answer has said so far: chunks forwarded, text bytes and tool names (for the
/// usage estimate and record). Closed at the deadline: later chunks are dropped and stop the plugin.
final class StreamTally: Sendable {
    private struct State {
        var bytes = 0
        var tools: [String] = []
        var emitted = false
        var closed = false
    }
    private let state = Mutex(State())
    let forward: @Sendable (Data) -> Bool

    init(forward: @escaping @Sendable (Data) -> Bool) { self.forward = forward }

    func take(_ chunk: Data) -> Bool {
        let object = (try? JSONSerialization.jsonObject(with: chunk)) as? [String: Any]
        let deltas = (object?["choices"] as? [[String: Any]])?.compactMap { $0["delta"] as? [String: Any] } ?? []
        let bytes = deltas.reduce(0) { $0 + ChatPayload.textBytes($1["content"] ?? "") + ChatPayload.textBytes($1["tool_calls"] ?? []) }
        let tools = ChatEngines.toolNames(deltas.flatMap { $0["tool_calls"] as? [Any] ?? [] })
        // Forwarding under the lock: once close() returns, no chunk of this route reaches the
        // caller (the next route's chunks must not interleave with it).
        return state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.bytes += bytes
            state.tools += tools
            state.emitted = true
            return forward(chunk)
        }
    }

    func close() { state.withLock { $0.closed = true } }

    var summary: (bytes: Int, tools: [String], emitted: Bool) { state.withLock { ($0.bytes, $0.tools, $0.emitted) } }
}

/// Runs an operation with a time limit that holds even when the operation ignores cancellation
/// (a plugin call completes when the plugin says so): at the deadline the caller gets a
/// `deadline` error at once and the operation's late result is dropped.
enum Deadline {
    static func run<T: Sendable>(
        _ limit: Duration, what: String = "engines.timeoutSeconds", onTimeout: @escaping @Sendable () -> Void = {},
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let gate = Gate<T>()
        return try await withCheckedThrowingContinuation { continuation in
            gate.arm(continuation)
            let work = Task {
                do { gate.resume(.success(try await operation())) } catch { gate.resume(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled, !gate.isFinished else { return }
                // Closed before the caller resumes, so nothing of this call follows the deadline.
                onTimeout()
                if gate.resume(.failure(PluginError(.deadline, "no answer within \(what) (\(limit))"))) {
                    work.cancel()
                }
            }
            gate.onDone { timer.cancel() }
        }
    }

    final class Gate<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var done: (@Sendable () -> Void)?
            var finished = false
        }
        private let state = Mutex(State())

        func arm(_ continuation: CheckedContinuation<T, any Error>) { state.withLock { $0.continuation = continuation } }

        var isFinished: Bool { state.withLock { $0.finished } }

        func onDone(_ action: @escaping @Sendable () -> Void) {
            let already = state.withLock { state -> Bool in
                if state.finished { return true }
                state.done = action
                return false
            }
            if already { action() }
        }

        /// True for the first result; later ones are dropped.
        @discardableResult
        func resume(_ result: Result<T, any Error>) -> Bool {
            let (continuation, done) = state.withLock { state -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
                guard !state.finished else { return (nil, nil) }
                state.finished = true
                defer {
                    state.continuation = nil
                    state.done = nil
                }
                return (state.continuation, state.done)
            }
            guard let continuation else { return false }
            continuation.resume(with: result)
            done?()
            return true
        }
    }
}
