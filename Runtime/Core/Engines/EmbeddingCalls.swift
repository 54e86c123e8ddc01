import Foundation
import OrionPluginHost
import OrionPluginSDK

/// Embeddings as an API (`/v1/embeddings`): the tier routes the model name like a chat model.
public struct EmbeddingAnswer: Sendable {
    public var vectors: [[Float]]
    public var engine: String
    public var model: String
    public var usage: ChatUsage
    public var cost: Cost
}

extension ChatEngines {
    /// Embeds `texts` with the engines `tier` routes `model` to (primary first), charged to `caller`.
    public func embed(model: String, texts: [String], for caller: EngineAccount) async throws(EngineError) -> EmbeddingAnswer {
        guard !texts.isEmpty else { throw EngineError(.invalidRequest, "'input' must hold at least one text") }
        let routes = try routes(tier: caller.tier, model: model)
        let bound = TokenCounts(input: Int64(texts.reduce(0) { $0 + $1.utf8.count + 2 }))
        let most = routes.compactMap { prices.lookUp(tier: caller.tier, model: $0.model ?? model, tokens: bound).nanoUSD }.max() ?? 0
        let reservation: BudgetLedger.Reservation
        do {
            reservation = try await budgets.reserve(.init(
                tenant: caller.tenant, session: caller.session, amountNanoUSD: most,
                sessionCapNanoUSD: Self.nano(config.telemetry.defaultCostCapUSD),
                tenantCapNanoUSD: Self.nano(monthlyCapUSD(caller)), sessionIsSingleCall: caller.isSingleCallSession))
        } catch let exceeded as BudgetExceeded {
            throw EngineError(.budgetExceeded, exceeded.description, budget: exceeded)
        } catch {
            throw EngineError(.unavailable, "the spend so far could not be read: \(error)")
        }
        var failures: [String] = []
        for route in routes {
            let target = route.model ?? model
            guard breakers.permit(route.instance) else {
                failures.append("'\(route.instance)': circuit open after repeated failures")
                continue
            }
            let started = ContinuousClock.now
            do {
                let result = try await embedOnce(route.instance, model: target, texts: texts)
                breakers.record(route.instance, success: true)
                let latency = Self.milliseconds(ContinuousClock.now - started)
                let provided = (try? JSONSerialization.jsonObject(with: result.usage)) as? [String: Any]
                let usage = (provided?["prompt_tokens"] as? Int).map { ChatUsage(tokens: TokenCounts(input: Int64($0)), estimated: false) }
                    ?? ChatUsage(tokens: TokenCounts(input: Int64(texts.reduce(0) { $0 + ($1.utf8.count + 3) / 4 })), estimated: true)
                let cost = prices.cost(tier: caller.tier, model: target, tokens: usage.tokens)
                await budgets.settle(reservation, actualNanoUSD: cost.nanoUSD ?? 0)
                self.usage?.record(UsageRecord(
                    requestID: caller.requestID, sessionID: caller.session, tenant: caller.tenant, user: caller.user, engine: route.instance,
                    model: target, tokens: usage.tokens, cost: cost, latencyMilliseconds: latency, taskType: "embedding", estimated: usage.estimated))
                return EmbeddingAnswer(vectors: result.rows, engine: route.instance, model: target, usage: usage, cost: cost)
            } catch {
                let failure = Self.pluginError(error)
                breakers.record(route.instance, success: failure.code == .invalidArgument)
                self.usage?.record(UsageRecord(
                    requestID: caller.requestID, sessionID: caller.session, tenant: caller.tenant, user: caller.user, engine: route.instance,
                    model: target, tokens: TokenCounts(), cost: .priced(nanoUSD: 0),
                    latencyMilliseconds: Self.milliseconds(ContinuousClock.now - started), taskType: "embedding", success: false))
                if failure.code == .invalidArgument {
                    await budgets.settle(reservation, actualNanoUSD: 0)
                    throw EngineError(.invalidRequest, "engine '\(route.instance)': \(failure.message)")
                }
                failures.append("'\(route.instance)': \(failure.message)")
            }
        }
        await budgets.settle(reservation, actualNanoUSD: 0)
        throw EngineError(.unavailable, "no engine could embed with model '\(model)': \(failures.joined(separator: "; "))")
    }

    private func embedOnce(_ instance: String, model: String, texts: [String]) async throws -> Embeddings {
        let lease = try registry.lease(kind: .engine, id: instance)
        guard let engine = lease.engine else {
            lease.release()
            throw PluginError(.unavailable, "not an engine")
        }
        let result = try await Deadline.run(.milliseconds(Int64(config.engines.timeoutSeconds * 1000))) {
            // Released when the plugin completes, not at the deadline (see ChatEngines).
            defer { lease.release() }
            return try await PluginCallMetrics.measure(instance: instance, operation: "embed") { try await engine.embed(model: model, texts: texts) }
        }
        guard result.count == texts.count, result.dimensions > 0 else {
            throw PluginError(.unavailable, "returned \(result.count) vectors for \(texts.count) texts")
        }
        return result
    }
}
