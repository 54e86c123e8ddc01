import Foundation
import OrionPluginABI
import OrionPluginSDK

/// `pricing-table`: model prices from the instance's configuration and, optionally, a LiteLLM
/// `model_prices_and_context_window.json`. Prices are held as integer nano-USD per one million
/// tokens, per token class (input, output, cache read, cache write).
///
/// A model is found by its exact name, else by the longest configured name that prefixes it up
/// to a `-` or `@` (so `gpt-4o-mini-2024-07-18` finds `gpt-4o-mini`, not `gpt-4o`), else not at all
/// (not-found: the caller records the call as unpriced, never as free).
final class PricingTable: OrionPlugin, PricingPlugin {
    /// - Configuration keys:
    ///   - `models` (object, default `{}`): model name → `{input, output, cacheRead, cacheWrite}`,
    ///     each USD per one million tokens (a number ≥ 0; a class left out is not priced).
    ///   - `litellm` (path, optional): a LiteLLM price file, absolute or relative to the working
    ///     directory. Its `input_cost_per_token`, `output_cost_per_token`,
    ///     `cache_read_input_token_cost` and `cache_creation_input_token_cost` (USD per token) are
    ///     imported; entries with neither an input nor an output cost are skipped. `models` wins
    ///     where both name a model.
    struct Configuration: Decodable, Sendable {
        var models: [String: JSONPrice] = [:]
        var litellm: String?

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            models = try c.decodeIfPresent([String: JSONPrice].self, forKey: .models) ?? [:]
            litellm = try c.decodeIfPresent(String.self, forKey: .litellm)
        }
        enum CodingKeys: String, CodingKey { case models, litellm }
    }

    /// One model's prices as configured: USD per one million tokens.
    struct JSONPrice: Decodable, Sendable {
        var input: Double?
        var output: Double?
        var cacheRead: Double?
        var cacheWrite: Double?

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            for key in c.allKeys where !["input", "output", "cacheRead", "cacheWrite"].contains(key.stringValue) {
                throw PluginError(.config, "unknown price class '\(key.stringValue)'; use input, output, cacheRead, cacheWrite")
            }
            input = try c.decodeIfPresent(Double.self, forKey: AnyKey("input"))
            output = try c.decodeIfPresent(Double.self, forKey: AnyKey("output"))
            cacheRead = try c.decodeIfPresent(Double.self, forKey: AnyKey("cacheRead"))
            cacheWrite = try c.decodeIfPresent(Double.self, forKey: AnyKey("cacheWrite"))
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static let descriptor = PluginDescriptor(
        id: "pricing-table", version: "1.0.0", capabilities: ["pricing"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{
            "models":{"type":"object"},
            "litellm":{"type":"string","minLength":1}}}
            """,
        summary: "Model prices per token class, from configuration and LiteLLM's price file")

    /// Name → prices, and the names longest first for prefix look-ups.
    let prices: [String: ModelPrice]
    let byLength: [String]

    init(configuration: Configuration, host: PluginHost) throws {
        var prices: [String: ModelPrice] = [:]
        if let path = configuration.litellm {
            prices = try Self.importLiteLLM(path)
        }
        for (name, price) in configuration.models {
            guard !name.isEmpty else { throw PluginError(.config, "'models' has an empty model name") }
            prices[name] = ModelPrice(
                inputPerMillion: try Self.nano(price.input, model: name, tokenClass: "input"),
                outputPerMillion: try Self.nano(price.output, model: name, tokenClass: "output"),
                cacheReadPerMillion: try Self.nano(price.cacheRead, model: name, tokenClass: "cacheRead"),
                cacheWritePerMillion: try Self.nano(price.cacheWrite, model: name, tokenClass: "cacheWrite"))
        }
        self.prices = prices
        byLength = prices.keys.sorted { $0.count != $1.count ? $0.count > $1.count : $0 < $1 }
        host.log(.info, "pricing-table: \(prices.count) models priced")
    }

    func price(model: PluginString) throws(PluginError) -> ModelPrice {
        let name = model.string
        if let exact = prices[name] { return exact }
        for candidate in byLength where name.count > candidate.count && name.hasPrefix(candidate) {
            let next = name[name.index(name.startIndex, offsetBy: candidate.count)]
            if next == "-" || next == "@" { return prices[candidate]! }
        }
        throw PluginError(.notFound, "no price for model '\(name)'")
    }

    /// USD per one million tokens → nano-USD per one million tokens.
    static func nano(_ usd: Double?, model: String, tokenClass: String) throws -> Int64? {
        guard let usd else { return nil }
        guard usd.isFinite, usd >= 0, usd < 9e9 else {
            throw PluginError(.config, "model '\(model)': the \(tokenClass) price \(usd) must be a number of USD per million tokens, 0 or more")
        }
        return Int64((usd * 1e9).rounded())
    }

    /// LiteLLM's per-token USD prices, as nano-USD per one million tokens.
    static func importLiteLLM(_ path: String) throws -> [String: ModelPrice] {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw PluginError(.config, "cannot read the LiteLLM price file '\(absolute)' ('litellm')")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PluginError(.config, "'\(absolute)' is not a JSON object of models (LiteLLM's model_prices_and_context_window.json format)")
        }
        func perToken(_ entry: [String: Any], _ key: String, _ model: String) throws -> Int64? {
            guard let value = entry[key] else { return nil }
            guard let usd = (value as? NSNumber)?.doubleValue, usd.isFinite, usd >= 0 else {
                throw PluginError(.config, "'\(absolute)': model '\(model)': '\(key)' must be a number of USD per token, 0 or more")
            }
            return Int64((usd * 1e15).rounded())
        }
        var prices: [String: ModelPrice] = [:]
        for (model, value) in root where model != "sample_spec" {
            guard let entry = value as? [String: Any] else { continue }
            let input = try perToken(entry, "input_cost_per_token", model)
            let output = try perToken(entry, "output_cost_per_token", model)
            guard input != nil || output != nil else { continue }
            prices[model] = ModelPrice(
                inputPerMillion: input, outputPerMillion: output,
                cacheReadPerMillion: try perToken(entry, "cache_read_input_token_cost", model),
                cacheWritePerMillion: try perToken(entry, "cache_creation_input_token_cost", model))
        }
        return prices
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(PricingTable.self, host: host)
}
