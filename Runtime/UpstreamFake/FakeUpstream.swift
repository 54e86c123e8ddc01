import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OrionPluginSDK
import Synchronization

/// A loopback stand-in for the OpenAI and Anthropic APIs, speaking their wire formats (JSON and
/// server-sent events, usage fields, error bodies), for `orion bench gateway --chat` and the
/// tests. Answers are deterministic: the reply echoes the last user message.
///
/// Scripted behaviours are taken one per request, in order, before the default (a good answer):
/// a status with an optional `Retry-After`, a slow answer, a stream cut short.
public final class FakeUpstream: Sendable {
    public enum Behaviour: Sendable, Hashable {
        case status(Int, retryAfter: String? = nil)
        /// Waits before answering (streams wait before each chunk).
        case slow(Duration)
        /// A stream that closes after this many content chunks, without `[DONE]`.
        case truncate(afterChunks: Int)
        /// A good answer whose text is this (instead of the echo).
        case reply(String)
    }

    /// One request as received.
    public struct Received: Sendable {
        public var path: String
        public var headers: [String: String]
        public var body: Data
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    private struct State {
        var script: [Behaviour] = []
        var received: [Received] = []
        var keepReceived = true
    }
    private let state = Mutex(State())
    /// Prompt tokens reported per request (cached ones included), and of those, cache reads.
    public let promptTokens: Int
    public let cachedTokens: Int

    public init(promptTokens: Int = 12, cachedTokens: Int = 0, keepReceived: Bool = true) {
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        state.withLock { $0.keepReceived = keepReceived }
    }

    /// Queues behaviours for the next requests.
    public func script(_ behaviours: Behaviour...) { state.withLock { $0.script += behaviours } }
    public var received: [Received] { state.withLock { $0.received } }
    public var requestCount: Int { state.withLock { $0.received.count } }

    /// The router: `/v1/chat/completions`, `/v1/embeddings`, `/v1/messages`.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("v1/chat/completions") { request, _ in try await self.openAIChat(request) }
        router.post("v1/embeddings") { request, _ in try await self.openAIEmbeddings(request) }
        router.post("v1/messages") { request, _ in try await self.anthropicMessages(request) }
        return router
    }

    /// Serves on 127.0.0.1 (port 0: any free port) until the task is cancelled; `onRunning` gets the port.
    public func run(port: Int = 0, onRunning: @escaping @Sendable (Int) async -> Void) async throws {
        let app = Application(
            router: router(), configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil),
            onServerRunning: { await onRunning($0.localAddress?.port ?? 0) }, logger: Self.quietLogger)
        try await app.runService()
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "fake-upstream")
        logger.logLevel = .critical
        return logger
    }()

    private func take(_ request: Request) async throws -> (Received, Behaviour?) {
        let body = Data(try await request.body.collect(upTo: 16 << 20).readableBytesView)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let received = Received(path: request.uri.path, headers: headers, body: body)
        let behaviour = state.withLock { state -> Behaviour? in
            if state.keepReceived { state.received.append(received) } else { state.received = [received] }
            return state.script.isEmpty ? nil : state.script.removeFirst()
        }
        if case .slow(let delay) = behaviour { try await Task.sleep(for: delay) }
        return (received, behaviour)
    }

    static func json(_ status: HTTPResponse.Status, _ object: Any, headers: HTTPFields = [:]) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try JSONWriter.data(object))))
    }

    static func failure(_ code: Int, retryAfter: String?, anthropic: Bool) throws -> Response {
        var headers: HTTPFields = [:]
        if let retryAfter { headers[.retryAfter] = retryAfter }
        let kind = code == 429 ? "rate_limit_error" : code == 401 ? "authentication_error" : code >= 500 ? "api_error" : "invalid_request_error"
        let body: [String: Any] = anthropic
            ? ["type": "error", "error": ["type": kind, "message": "fake upstream answered \(code)"]]
            : ["error": ["message": "fake upstream answered \(code)", "type": kind, "code": NSNull()]]
        return try json(.init(code: code), body, headers: headers)
    }

    /// The reply's words: "echo:" and the last user message's words.
    static func replyWords(_ request: [String: Any]) -> [String] {
        let messages = request["messages"] as? [[String: Any]] ?? []
        let last = messages.last { $0["role"] as? String == "user" }
        let text: String
        switch last?["content"] {
        case let string as String: text = string
        case let parts as [[String: Any]]: text = parts.compactMap { $0["text"] as? String }.joined(separator: " ")
        default: text = ""
        }
        return ["echo:"] + text.split(separator: " ").map(String.init)
    }

    // MARK: OpenAI

    func openAIChat(_ request: Request) async throws -> Response {
        let (received, behaviour) = try await take(request)
        if case .status(let code, let retryAfter) = behaviour { return try Self.failure(code, retryAfter: retryAfter, anthropic: false) }
        let body = received.json
        let model = body["model"] as? String ?? "fake"
        var words = Self.replyWords(body)
        if case .reply(let text) = behaviour { words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init) }
        let tool = ((body["tools"] as? [[String: Any]])?.first?["function"] as? [String: Any])?["name"] as? String
        let usage: [String: Any] = [
            "prompt_tokens": promptTokens, "completion_tokens": words.count, "total_tokens": promptTokens + words.count,
            "prompt_tokens_details": ["cached_tokens": cachedTokens],
        ]
        let id = "chatcmpl-fake\(received.body.count)"
        guard body["stream"] as? Bool == true else {
            var message: [String: Any] = ["role": "assistant", "content": words.joined(separator: " ")]
            if let tool {
                message["content"] = NSNull()
                message["tool_calls"] = [["id": "call_fake1", "type": "function", "function": ["name": tool, "arguments": "{\"q\":\"x\"}"]]]
            }
            return try Self.json(.ok, [
                "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [["index": 0, "message": message, "finish_reason": tool == nil ? "stop" : "tool_calls", "logprobs": NSNull()]],
                "usage": usage,
            ])
        }
        let includeUsage = (body["stream_options"] as? [String: Any])?["include_usage"] as? Bool ?? false
        func chunk(_ delta: [String: Any], finish: String?) -> [String: Any] {
            ["id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
             "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { $0 as Any } ?? NSNull()]]]
        }
        var events: [[String: Any]] = [chunk(["role": "assistant", "content": ""], finish: nil)]
        events += words.enumerated().map { chunk(["content": ($0.offset == 0 ? "" : " ") + $0.element], finish: nil) }
        events.append(chunk([:], finish: "stop"))
        if includeUsage {
            events.append(["id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage])
        }
        return sse(events.map { try! JSONWriter.data($0) }, done: "data: [DONE]\n\n", behaviour: behaviour)
    }

    func openAIEmbeddings(_ request: Request) async throws -> Response {
        let (received, behaviour) = try await take(request)
        if case .status(let code, let retryAfter) = behaviour { return try Self.failure(code, retryAfter: retryAfter, anthropic: false) }
        let body = received.json
        let inputs = (body["input"] as? [String]) ?? [(body["input"] as? String) ?? ""]
        let data = inputs.enumerated().map { ["object": "embedding", "index": $0.offset, "embedding": Self.vector($0.element)] as [String: Any] }
        let tokens = inputs.reduce(0) { $0 + $1.split(separator: " ").count }
        return try Self.json(.ok, [
            "object": "list", "data": data, "model": body["model"] as? String ?? "fake",
            "usage": ["prompt_tokens": tokens, "total_tokens": tokens],
        ])
    }

    /// A deterministic unit vector of 8 dimensions from the text's bytes.
    public static func vector(_ text: String) -> [Double] {
        var values = [Double](repeating: 0.1, count: 8)
        for (index, byte) in text.utf8.enumerated() { values[index % 8] += Double(byte) / 255 }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    // MARK: Anthropic

    func anthropicMessages(_ request: Request) async throws -> Response {
        let (received, behaviour) = try await take(request)
        if case .status(let code, let retryAfter) = behaviour { return try Self.failure(code, retryAfter: retryAfter, anthropic: true) }
        guard received.headers["x-api-key"] != nil, received.headers["anthropic-version"] != nil else {
            return try Self.failure(401, retryAfter: nil, anthropic: true)
        }
        let body = received.json
        let model = body["model"] as? String ?? "fake"
        let words = Self.replyWords(body)
        let tool = (body["tools"] as? [[String: Any]])?.first?["name"] as? String
        let input = promptTokens - cachedTokens
        let usage: [String: Any] = [
            "input_tokens": input, "output_tokens": words.count, "cache_read_input_tokens": cachedTokens, "cache_creation_input_tokens": 0,
        ]
        guard body["stream"] as? Bool == true else {
            var content: [[String: Any]] = [["type": "text", "text": words.joined(separator: " ")]]
            if let tool { content.append(["type": "tool_use", "id": "toolu_fake1", "name": tool, "input": ["q": "x"]]) }
            return try Self.json(.ok, [
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": tool == nil ? "end_turn" : "tool_use", "stop_sequence": NSNull(), "usage": usage,
            ])
        }
        var events: [(String, [String: Any])] = [
            ("message_start", ["type": "message_start", "message": [
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": NSNull(),
                "usage": ["input_tokens": input, "output_tokens": 1, "cache_read_input_tokens": cachedTokens, "cache_creation_input_tokens": 0],
            ] as [String: Any]]),
            ("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]),
            ("ping", ["type": "ping"]),
        ]
        events += words.enumerated().map {
            ("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": ($0.offset == 0 ? "" : " ") + $0.element]])
        }
        events.append(("content_block_stop", ["type": "content_block_stop", "index": 0]))
        events.append(("message_delta", ["type": "message_delta", "delta": ["stop_reason": "end_turn", "stop_sequence": NSNull()], "usage": ["output_tokens": words.count]]))
        let payloads = events.map { "event: \($0.0)\ndata: \(String(decoding: try! JSONWriter.data($0.1), as: UTF8.self))" }
        return sse(payloads.map { Data($0.utf8) }, raw: true, done: "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", behaviour: behaviour)
    }

    /// A `text/event-stream` of `events` (JSON data, or whole event text when `raw`), then `done`.
    func sse(_ events: [Data], raw: Bool = false, done: String, behaviour: Behaviour?) -> Response {
        let body = ResponseBody { writer in
            for (index, event) in events.enumerated() {
                if case .truncate(let limit) = behaviour, index > limit {
                    try await writer.finish(nil)
                    return
                }
                if case .slow(let delay) = behaviour { try await Task.sleep(for: delay) }
                var buffer = ByteBuffer(string: raw ? "" : "data: ")
                buffer.writeBytes(event)
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            try await writer.write(ByteBuffer(string: done))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
