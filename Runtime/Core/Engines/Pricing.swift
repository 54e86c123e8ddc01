import Logging
import Metrics
import OrionPluginHost
import OrionPluginSDK

/// The tokens of one engine call, per token class.
public struct TokenCounts: Sendable, Hashable {
    public var input: Int64
    public var output: Int64
    public var cacheRead: Int64
    public var cacheWrite: Int64

    public init(input: Int64 = 0, output: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0) {
        self.input = input
        self.output = output
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
    }
}

/// What one call cost, or why it has no price. Unpriced is never recorded as free.
public enum Cost: Sendable, Hashable {
    /// nano-USD (1 USD = 1,000,000,000).
    case priced(nanoUSD: Int64)
    case unpriced(reason: String)

    public var nanoUSD: Int64? {
        if case .priced(let value) = self { value } else { nil }
    }
}

/// Prices engine calls with the instance a tier maps to the capability `pricing` (primary first,
/// the next when one is not loaded or does not know the model).
public struct PriceBook: Sendable {
    public static let capability = "pricing"
    let registry: Registry
    let logger: Logger

    public init(registry: Registry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    /// The cost of `tokens` of `model` for a tenant of `tier`. An unpriced call is counted
    /// (`orion_usage_unpriced_total`) and logged with its reason.
    public func cost(tier: String, model: String, tokens: TokenCounts) -> Cost {
        let cost = lookUp(tier: tier, model: model, tokens: tokens)
        if case .unpriced(let reason) = cost {
            // No model label: model names come from callers, and labels must stay bounded.
            Counter(label: "orion_usage_unpriced_total").increment()
            logger.warning("engine call recorded as unpriced", metadata: ["orion.model": "\(model)", "orion.reason": "\(reason)"])
        }
        return cost
    }

    func lookUp(tier: String, model: String, tokens: TokenCounts) -> Cost {
        let ids: [String]
        do {
            ids = try registry.instanceIDs(tier: tier, capability: Self.capability)
        } catch {
            return .unpriced(reason: "tier '\(tier)' maps no pricing table")
        }
        var reasons: [String] = []
        for id in ids {
            guard let lease = try? registry.lease(kind: .pricing, id: id), let pricing = lease.pricing else {
                reasons.append("pricing instance '\(id)' is not loaded")
                continue
            }
            defer { lease.release() }
            do {
                let price = try PluginCallMetrics.measure(instance: id, operation: "price") { () throws(PluginError) in
                    try pricing.price(model: model)
                }
                return Self.cost(tokens, at: price, model: model)
            } catch {
                reasons.append(error.code == .notFound ? "'\(id)' has no price for model '\(model)'" : "'\(id)' failed: \(error.message)")
            }
        }
        return .unpriced(reason: reasons.isEmpty ? "tier '\(tier)' maps no pricing table" : reasons.joined(separator: "; "))
    }

    /// Σ over token classes of tokens × price per million / 1,000,000, each class rounded half up
    /// to a whole nano-USD. A class with tokens and no price leaves the whole call unpriced.
    public static func cost(_ tokens: TokenCounts, at price: ModelPrice, model: String) -> Cost {
        let classes: [(name: String, tokens: Int64, perMillion: Int64?)] = [
            ("input", tokens.input, price.inputPerMillion), ("output", tokens.output, price.outputPerMillion),
            ("cache read", tokens.cacheRead, price.cacheReadPerMillion), ("cache write", tokens.cacheWrite, price.cacheWritePerMillion),
        ]
        var total: Int128 = 0
        for entry in classes where entry.tokens != 0 {
            guard entry.tokens > 0 else { return .unpriced(reason: "a negative \(entry.name) token count (\(entry.tokens))") }
            guard let perMillion = entry.perMillion else {
                return .unpriced(reason: "model '\(model)' has no \(entry.name) price, and the call used \(entry.tokens) \(entry.name) tokens")
            }
            total += (Int128(entry.tokens) * Int128(perMillion) + 500_000) / 1_000_000
        }
        guard total <= Int128(Int64.max) else { return .unpriced(reason: "the cost does not fit in 64 bits of nano-USD") }
        return .priced(nanoUSD: Int64(total))
    }
}
