import Foundation
import OrionPluginSDK

/// OpenAI-style chat ⇄ Anthropic Messages: requests one way, answers, stream events and usage the other.
enum MessagesMapping {
    // MARK: Request

    /// The Messages request for an OpenAI-style chat request.
    static func request(_ data: Data, defaultModel: String?, defaultMaxTokens: Int) throws -> [String: Any] {
        guard let chat = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PluginError(.invalidArgument, "the chat request is not a JSON object")
        }
        guard let messages = chat["messages"] as? [[String: Any]], !messages.isEmpty else {
            throw PluginError(.invalidArgument, "'messages' must be a non-empty array")
        }
        var model = chat["model"] as? String ?? ""
        if model.isEmpty {
            guard let defaultModel else { throw PluginError(.invalidArgument, "the request names no model and this instance sets no 'defaultModel'") }
            model = defaultModel
        }
        var body: [String: Any] = [
            "model": model,
            "max_tokens": (chat["max_completion_tokens"] as? Int) ?? (chat["max_tokens"] as? Int) ?? defaultMaxTokens,
        ]
        var system: [String] = []
        var turns: [[String: Any]] = []
        /// Appends blocks to the conversation, merging into the last turn when the role repeats.
        func add(_ role: String, _ blocks: [[String: Any]]) {
            guard !blocks.isEmpty else { return }
            if var last = turns.last, last["role"] as? String == role {
                last["content"] = (last["content"] as? [[String: Any]] ?? []) + blocks
                turns[turns.count - 1] = last
            } else {
                turns.append(["role": role, "content": blocks])
            }
        }
        for (index, message) in messages.enumerated() {
            let role = message["role"] as? String ?? ""
            switch role {
            case "system", "developer":
                system.append(text(of: message["content"]))
            case "user":
                add("user", try blocks(of: message["content"], at: index))
            case "assistant":
                var content = try blocks(of: message["content"], at: index)
                for call in message["tool_calls"] as? [[String: Any]] ?? [] {
                    let function = call["function"] as? [String: Any] ?? [:]
                    let arguments = function["arguments"] as? String ?? "{}"
                    let input = (try? JSONSerialization.jsonObject(with: Data(arguments.utf8))) as? [String: Any] ?? [:]
                    content.append(["type": "tool_use", "id": call["id"] as? String ?? "call_\(index)", "name": function["name"] as? String ?? "", "input": input])
                }
                add("assistant", content)
            case "tool":
                guard let id = message["tool_call_id"] as? String else {
                    throw PluginError(.invalidArgument, "messages[\(index)] is a tool result without 'tool_call_id'")
                }
                add("user", [["type": "tool_result", "tool_use_id": id, "content": text(of: message["content"])]])
            default:
                throw PluginError(.invalidArgument, "messages[\(index)] has role '\(role)'; use system, user, assistant or tool")
            }
        }
        guard !turns.isEmpty else { throw PluginError(.invalidArgument, "the request has no user or assistant message") }
        body["messages"] = turns
        if !system.isEmpty { body["system"] = system.joined(separator: "\n\n") }
        for key in ["temperature", "top_p"] { if let value = chat[key] as? Double { body[key] = value } }
        switch chat["stop"] {
        case let stop as String: body["stop_sequences"] = [stop]
        case let stops as [String]: body["stop_sequences"] = stops
        default: break
        }
        if let tools = chat["tools"] as? [[String: Any]], !tools.isEmpty {
            body["tools"] = tools.compactMap { tool -> [String: Any]? in
                guard let function = tool["function"] as? [String: Any], let name = function["name"] as? String else { return nil }
                var out: [String: Any] = ["name": name, "input_schema": function["parameters"] as? [String: Any] ?? ["type": "object"]]
                if let description = function["description"] as? String { out["description"] = description }
                return out
            }
        }
        switch chat["tool_choice"] {
        case let choice as String where choice == "auto": body["tool_choice"] = ["type": "auto"]
        case let choice as String where choice == "required": body["tool_choice"] = ["type": "any"]
        case let choice as String where choice == "none": body["tool_choice"] = ["type": "none"]
        case let choice as [String: Any]:
            if let name = (choice["function"] as? [String: Any])?["name"] as? String { body["tool_choice"] = ["type": "tool", "name": name] }
        default: break
        }
        if let user = chat["user"] as? String { body["metadata"] = ["user_id": user] }
        return body
    }

    /// The text of an OpenAI content value (a string or text parts).
    static func text(of content: Any?) -> String {
        switch content {
        case let text as String: text
        case let parts as [[String: Any]]: parts.compactMap { $0["text"] as? String }.joined(separator: "\n")
        default: ""
        }
    }

    /// Content blocks for an OpenAI content value: text parts and images (URL or data URL).
    static func blocks(of content: Any?, at index: Int) throws -> [[String: Any]] {
        switch content {
        case let text as String: return text.isEmpty ? [] : [["type": "text", "text": text]]
        case let parts as [[String: Any]]:
            return try parts.compactMap { part -> [String: Any]? in
                switch part["type"] as? String {
                case "text": return ["type": "text", "text": part["text"] as? String ?? ""]
                case "image_url":
                    let url = (part["image_url"] as? [String: Any])?["url"] as? String ?? ""
                    if url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") {
                        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
                        let mediaType = header.split(separator: ";").first.map(String.init) ?? "image/png"
                        return ["type": "image", "source": ["type": "base64", "media_type": mediaType, "data": String(url[url.index(after: comma)...])]]
                    }
                    return ["type": "image", "source": ["type": "url", "url": url]]
                default:
                    throw PluginError(.invalidArgument, "messages[\(index)] has a content part of type '\(part["type"] as? String ?? "?")'; use text or image_url")
                }
            }
        case nil, is NSNull: return []
        default: throw PluginError(.invalidArgument, "messages[\(index)].content must be a string or an array of parts")
        }
    }

    // MARK: Answer

    static func finishReason(_ stop: String?) -> String? {
        switch stop {
        case "end_turn", "stop_sequence", "pause_turn": "stop"
        case "max_tokens": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        case nil: nil
        default: "stop"
        }
    }

    /// OpenAI usage from Anthropic's: prompt tokens count the cached ones too, as OpenAI's do.
    static func usage(_ usage: [String: Any]) -> [String: Any] {
        let input = usage["input_tokens"] as? Int ?? 0
        let read = usage["cache_read_input_tokens"] as? Int ?? 0
        let written = usage["cache_creation_input_tokens"] as? Int ?? 0
        let output = usage["output_tokens"] as? Int ?? 0
        let prompt = input + read + written
        return [
            "prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
            "prompt_tokens_details": ["cached_tokens": read, "cache_write_tokens": written],
        ]
    }

    /// A `chat.completion` for a Messages answer.
    static func completion(_ message: [String: Any]) -> [String: Any] {
        var text: [String] = []
        var calls: [[String: Any]] = []
        for block in message["content"] as? [[String: Any]] ?? [] {
            switch block["type"] as? String {
            case "text": text.append(block["text"] as? String ?? "")
            case "tool_use":
                let input = (try? JSONWriter.data(block["input"] ?? [String: Any]())).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                calls.append(["id": block["id"] as? String ?? "", "type": "function", "function": ["name": block["name"] as? String ?? "", "arguments": input]])
            default: break
            }
        }
        var reply: [String: Any] = ["role": "assistant", "content": text.isEmpty && !calls.isEmpty ? NSNull() : text.joined()]
        if !calls.isEmpty { reply["tool_calls"] = calls }
        return [
            "id": message["id"] as? String ?? "", "object": "chat.completion", "created": Int(Date().timeIntervalSince1970),
            "model": message["model"] as? String ?? "",
            "choices": [["index": 0, "message": reply, "finish_reason": finishReason(message["stop_reason"] as? String) ?? "stop"]],
            "usage": usage(message["usage"] as? [String: Any] ?? [:]),
        ]
    }

    // MARK: Stream

    /// Anthropic's stream events turned into `chat.completion.chunk`s, one event at a time.
    struct StreamState {
        enum Step {
            case chunk([String: Any])
            case done
            case nothing
        }
        var id = ""
        var model = ""
        var created = Int(Date().timeIntervalSince1970)
        var usage: [String: Any] = [:]
        /// Content block index → tool call index, for tool_use blocks.
        var tools: [Int: Int] = [:]

        mutating func take(_ event: [String: Any]) throws -> Step {
            switch event["type"] as? String {
            case "message_start":
                let message = event["message"] as? [String: Any] ?? [:]
                id = message["id"] as? String ?? ""
                model = message["model"] as? String ?? ""
                usage = message["usage"] as? [String: Any] ?? [:]
                return .chunk(chunk(["role": "assistant", "content": ""]))
            case "content_block_start":
                let block = event["content_block"] as? [String: Any] ?? [:]
                guard block["type"] as? String == "tool_use", let index = event["index"] as? Int else { return .nothing }
                let position = tools.count
                tools[index] = position
                return .chunk(chunk(["tool_calls": [[
                    "index": position, "id": block["id"] as? String ?? "", "type": "function",
                    "function": ["name": block["name"] as? String ?? "", "arguments": ""],
                ]]]))
            case "content_block_delta":
                let delta = event["delta"] as? [String: Any] ?? [:]
                switch delta["type"] as? String {
                case "text_delta": return .chunk(chunk(["content": delta["text"] as? String ?? ""]))
                case "input_json_delta":
                    guard let index = event["index"] as? Int, let position = tools[index] else { return .nothing }
                    return .chunk(chunk(["tool_calls": [["index": position, "function": ["arguments": delta["partial_json"] as? String ?? ""]]]]))
                default: return .nothing
                }
            case "message_delta":
                for (key, value) in event["usage"] as? [String: Any] ?? [:] { usage[key] = value }
                let stop = (event["delta"] as? [String: Any])?["stop_reason"] as? String
                guard let reason = MessagesMapping.finishReason(stop) else { return .nothing }
                return .chunk(chunk([:], finish: reason))
            case "message_stop":
                return .done
            case "error":
                let error = event["error"] ?? [:]
                throw PluginError(.unavailable, "the upstream failed mid-stream: \(UpstreamClient.describe(error))")
            default:
                return .nothing
            }
        }

        func chunk(_ delta: [String: Any], finish: String? = nil) -> [String: Any] {
            [
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { $0 as Any } ?? NSNull()]],
            ]
        }

        func usageJSON() throws -> Data {
            try JSONWriter.data(MessagesMapping.usage(usage))
        }
    }
}
