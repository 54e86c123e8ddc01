import Foundation
import OrionPluginSDK

/// An OpenAI-style chat request as the core reads it: the JSON object, what bounds its cost, and
/// how to read usage from an answer (or estimate it when the provider sent none).
public struct ChatPayload: @unchecked Sendable {
    // @unchecked: `object` holds only JSON values (strings, numbers, arrays, dictionaries, NSNull)
    // and is never mutated after init except through this value's own mutating methods.
    public private(set) var object: [String: Any]

    /// Parses a request body; says what is wrong when it is not a chat request.
    public init(json data: Data) throws(EngineError) {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw EngineError(.invalidRequest, "the body is not a JSON object")
        }
        guard let messages = object["messages"] as? [Any], !messages.isEmpty else {
            throw EngineError(.invalidRequest, "'messages' must be a non-empty array of {role, content}")
        }
        for (index, message) in messages.enumerated() {
            guard let message = message as? [String: Any], message["role"] is String else {
                throw EngineError(.invalidRequest, "messages[\(index)] must be an object with a 'role'")
            }
        }
        for key in ["max_tokens", "max_completion_tokens"] where object[key] != nil {
            guard let value = object[key] as? Int, value >= 1 else { throw EngineError(.invalidRequest, "'\(key)' must be an integer ≥ 1") }
        }
        self.object = object
    }

    public init(object: [String: Any]) { self.object = object }

    public var model: String { object["model"] as? String ?? "" }
    public var messageCount: Int { (object["messages"] as? [Any])?.count ?? 0 }

    /// The output limit the caller set, if any.
    public var maxOutputTokens: Int? { (object["max_completion_tokens"] as? Int) ?? (object["max_tokens"] as? Int) }

    /// Sets `max_tokens` when the caller set no limit, so the call's cost has a bound.
    public mutating func boundOutput(default limit: Int) -> Int {
        if let set = maxOutputTokens { return set }
        object["max_tokens"] = limit
        return limit
    }

    public mutating func setModel(_ model: String?) {
        if let model, !model.isEmpty { object["model"] = model } else { object["model"] = nil }
    }

    /// An upper bound of the prompt's tokens: its UTF-8 bytes (a byte-level tokenizer never makes
    /// more tokens than bytes) plus 8 per message for roles and separators.
    public var promptTokenBound: Int64 {
        var bytes = 0
        if let messages = object["messages"] { bytes += Self.textBytes(messages) }
        if let tools = object["tools"], let data = try? JSONWriter.data(tools) { bytes += data.count }
        return Int64(bytes + 8 * messageCount)
    }

    /// A rough estimate of the prompt's tokens (4 bytes a token), for answers without usage.
    public var promptTokenEstimate: Int64 {
        Int64((Self.textBytes(object["messages"] ?? []) + 3) / 4 + 4 * messageCount)
    }

    public func data() -> Data {
        // The object came from JSONSerialization (or holds the same kinds of values), so it serialises.
        (try? JSONWriter.data(object)) ?? Data("{}".utf8)
    }

    /// Bytes of every string inside `value`.
    static func textBytes(_ value: Any) -> Int {
        switch value {
        case let text as String: text.utf8.count
        case let list as [Any]: list.reduce(0) { $0 + textBytes($1) }
        case let map as [String: Any]: map.values.reduce(0) { $0 + textBytes($1) }
        default: 0
        }
    }
}

/// Token counts read from an answer's `usage`, or estimated.
public struct ChatUsage: Sendable, Hashable {
    public var tokens: TokenCounts
    /// True when the provider sent no counts.
    public var estimated: Bool

    public init(tokens: TokenCounts, estimated: Bool) {
        self.tokens = tokens
        self.estimated = estimated
    }

    /// Reads OpenAI-style usage: `prompt_tokens` (all input, cached included),
    /// `completion_tokens`, `prompt_tokens_details.cached_tokens` (cache reads) and
    /// `prompt_tokens_details.cache_write_tokens` (cache writes). Nil when the counts are missing.
    public static func read(_ usage: Any?) -> ChatUsage? {
        guard let usage = usage as? [String: Any], let prompt = usage["prompt_tokens"] as? Int else { return nil }
        let completion = usage["completion_tokens"] as? Int ?? 0
        let details = usage["prompt_tokens_details"] as? [String: Any]
        let cached = details?["cached_tokens"] as? Int ?? 0
        let written = details?["cache_write_tokens"] as? Int ?? 0
        let tokens = TokenCounts(
            input: Int64(max(0, prompt - cached - written)), output: Int64(max(0, completion)), cacheRead: Int64(max(0, cached)),
            cacheWrite: Int64(max(0, written)))
        return ChatUsage(tokens: tokens, estimated: usage["estimated"] as? Bool ?? false)
    }

    /// An estimate from the prompt and the answer's text.
    public static func estimate(prompt: ChatPayload, completionBytes: Int) -> ChatUsage {
        ChatUsage(tokens: TokenCounts(input: prompt.promptTokenEstimate, output: Int64((completionBytes + 3) / 4)), estimated: true)
    }

    /// The usage as OpenAI-style JSON (with `estimated: true` when estimated).
    public var json: [String: Any] {
        let prompt = tokens.input + tokens.cacheRead + tokens.cacheWrite
        var object: [String: Any] = [
            "prompt_tokens": prompt, "completion_tokens": tokens.output, "total_tokens": prompt + tokens.output,
            "prompt_tokens_details": ["cached_tokens": tokens.cacheRead, "cache_write_tokens": tokens.cacheWrite],
        ]
        if estimated { object["estimated"] = true }
        return object
    }
}

/// What an engine call failed with, as the gateway maps it to HTTP.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The request itself is wrong (400).
        case invalidRequest
        /// The tier routes no such model (404).
        case unknownModel
        /// A cap would be crossed (402).
        case budgetExceeded
        /// Every engine of the route failed or is open-circuited (503).
        case unavailable
        /// The route's engines are rate limiting (429).
        case rateLimited
    }
    public var code: Code
    public var message: String
    public var budget: BudgetExceeded?

    public init(_ code: Code, _ message: String, budget: BudgetExceeded? = nil) {
        self.code = code
        self.message = message
        self.budget = budget
    }

    public var description: String { message }
}
