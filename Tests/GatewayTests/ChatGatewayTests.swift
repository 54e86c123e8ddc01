import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OrionCore
import OrionGateway
import OrionUpstreamFake
import Testing

/// A fake upstream on a free loopback port.
final class UpstreamHarness: Sendable {
    let fake: FakeUpstream
    let port: Int
    let task: Task<Void, any Error>

    static func start(_ fake: FakeUpstream = FakeUpstream()) async throws -> UpstreamHarness {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await fake.run { continuation.yield($0) } }
        var port = 0
        for await bound in stream {
            port = bound
            break
        }
        return UpstreamHarness(fake: fake, port: port, task: task)
    }

    private init(fake: FakeUpstream, port: Int, task: Task<Void, any Error>) {
        self.fake = fake
        self.port = port
        self.task = task
    }

    func stop() { task.cancel() }

    /// Engines over this upstream: `openai` (retries fast), `pricing` with gpt-4o-mini's prices,
    /// `dead` (nothing listens at its port), and the tier's models.
    func engines(costCapUSD: Double = 50, extraModels: String = "", retries: Int = 2) -> GatewayHarness.Engines {
        GatewayHarness.Engines(
            files: [
                "openai.yaml": "id: openai\nplugin: engine-openai\nconfig: { baseUrl: 'http://127.0.0.1:\(port)/v1', apiKey: sk-test, defaultModel: gpt-4o-mini, retries: \(retries), retryBaseMs: 5 }\n",
                "dead.yaml": "id: dead\nplugin: engine-openai\nconfig: { baseUrl: 'http://127.0.0.1:9/v1', apiKey: sk-test, retries: 0 }\n",
                "anthropic.yaml": "id: anthropic\nplugin: engine-anthropic\nconfig: { baseUrl: 'http://127.0.0.1:\(port)/v1', apiKey: sk-ant-test, retries: \(retries), retryBaseMs: 5 }\n",
                "pricing.yaml": """
                    id: pricing
                    plugin: pricing-table
                    config: { models: { gpt-4o-mini: { input: 0.15, output: 0.60, cacheRead: 0.075 }, claude-3-5-haiku: { input: 0.80, output: 4.00, cacheRead: 0.08 } } }

                    """,
            ],
            capabilities: "pricing: pricing, chat: openai",
            models: """
                { gpt-4o-mini: openai, backup: [dead, openai/gpt-4o-mini], only-dead: dead, text-embedding-3-small: openai,
                  claude-3-5-haiku: [anthropic, openai/gpt-4o-mini]\(extraModels) }
                """,
            costCapUSD: costCapUSD)
    }
}

/// Parses a `text/event-stream` body into its data lines.
func sseData(_ body: Data) -> [String] {
    String(decoding: body, as: UTF8.self).components(separatedBy: "\n\n").compactMap { event in
        event.split(separator: "\n").first { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }
}

@Suite("OpenAI-compatible chat through engines", .serialized)
struct ChatGatewayTests {
    func chat(_ model: String = "gpt-4o-mini", _ text: String = "hello there", extra: [String: Any] = [:]) -> [String: Any] {
        var body: [String: Any] = ["model": model, "messages": [["role": "user", "content": text]]]
        for (key, value) in extra { body[key] = value }
        return body
    }

    @Test("a chat completion is answered, priced from usage and recorded once")
    func plainCompletion() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat(), headers: [("X-Session-Id", "s1")])
        #expect(reply.status == 200)
        let message = ((reply.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(message == "echo: hello there")
        let usage = reply.json["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == 12)
        #expect(usage?["completion_tokens"] as? Int == 3)
        #expect(usage?["estimated"] == nil)
        // The key went upstream; Orion's own token did not.
        #expect(upstream.fake.received.last?.headers["authorization"] == "Bearer sk-test")
        #expect(upstream.fake.received.last?.json["max_tokens"] as? Int == 1024)

        let summary = try await gateway.send(.GET, "/api/usage/summary?hours=1", token: token)
        #expect(summary.status == 200)
        let rows = summary.json["rows"] as? [[String: Any]] ?? []
        #expect(rows.count == 1)
        #expect(rows.first?["engine"] as? String == "openai")
        #expect(rows.first?["calls"] as? Int == 1)
        // 12 × 0.15 + 3 × 0.60 USD per million = 3,600 nano-USD.
        #expect(rows.first?["costNanoUsd"] as? Int == 3_600)
        let session = try await gateway.send(.GET, "/api/usage/sessions/s1", token: token)
        #expect(session.json["costNanoUsd"] as? Int == 3_600)
    }

    @Test("stream: true answers server-sent chunks, usage in the last chunk, then [DONE]")
    func streamedCompletion() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat(extra: ["stream": true]))
        #expect(reply.status == 200)
        #expect(reply.header("content-type") == "text/event-stream")
        let events = sseData(reply.body)
        #expect(events.last == "[DONE]")
        let objects = events.dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let text = objects.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        #expect(text == "echo: hello there")
        let last = objects.last
        #expect((last?["choices"] as? [Any])?.isEmpty == true)
        #expect((last?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3)
        #expect(upstream.fake.received.last?.json["stream_options"] as? [String: Bool] == ["include_usage": true])
    }

    @Test("tool calls pass through both ways")
    func toolCalls() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let tools: [[String: Any]] = [["type": "function", "function": ["name": "lookup", "parameters": ["type": "object"]]]]
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat(extra: ["tools": tools]))
        #expect(reply.status == 200)
        let choice = (reply.json["choices"] as? [[String: Any]])?.first
        #expect(choice?["finish_reason"] as? String == "tool_calls")
        let call = ((choice?["message"] as? [String: Any])?["tool_calls"] as? [[String: Any]])?.first?["function"] as? [String: Any]
        #expect(call?["name"] as? String == "lookup")
        #expect((upstream.fake.received.last?.json["tools"] as? [Any])?.count == 1)
    }

    @Test("a 429 with Retry-After is retried after the wait; a 500 is retried")
    func retriesHonourRetryAfter() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        upstream.fake.script(.status(429, retryAfter: "1"), .status(500))
        let started = ContinuousClock.now
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat())
        #expect(reply.status == 200)
        #expect(ContinuousClock.now - started >= .seconds(1))
        #expect(upstream.fake.requestCount == 3)
    }

    @Test("retries spent: a 429 becomes 429 UPSTREAM_RATE_LIMITED in OpenAI's error shape")
    func rateLimitedAfterRetries() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines(retries: 1))
        defer { Task { await gateway.stop() } }
        upstream.fake.script(.status(429, retryAfter: "0"), .status(429, retryAfter: "0"))
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat())
        #expect(reply.status == 429)
        #expect(reply.json["code"] as? String == "UPSTREAM_RATE_LIMITED")
        #expect((reply.json["error"] as? [String: Any])?["type"] as? String == "rate_limit_error")
    }

    @Test("a failing primary falls back to the next route, with that route's model")
    func fallback() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat("backup"))
        #expect(reply.status == 200)
        #expect(upstream.fake.received.last?.json["model"] as? String == "gpt-4o-mini")
        // Both calls are recorded: the failed one and the answer.
        let summary = try await gateway.send(.GET, "/api/usage/summary", token: token)
        let rows = summary.json["rows"] as? [[String: Any]] ?? []
        #expect(Set(rows.compactMap { $0["engine"] as? String }) == ["dead", "openai"])
        #expect(rows.first { $0["engine"] as? String == "dead" }?["successRate"] as? Double == 0)
    }

    @Test("repeated failures open the breaker: the engine is not called until it half-opens")
    func breakerOpens() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines(retries: 0)) { config in
            config.engines.breakerFailures = 2
            config.engines.breakerOpenSeconds = 60
        }
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        upstream.fake.script(.status(500), .status(500))
        for _ in 0..<2 {
            let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat())
            #expect(reply.status == 503)
        }
        let refused = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat())
        #expect(refused.status == 503)
        #expect((refused.json["message"] as? String)?.contains("circuit open") == true)
        #expect(upstream.fake.requestCount == 2)
        #expect(gateway.app.engines.breakers.state(of: "openai") == "open")
    }

    @Test("unknown models are 404 with the tier's models; bad bodies are 400")
    func refusals() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let unknown = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat("gpt-5-ultra"))
        #expect(unknown.status == 404)
        #expect(unknown.json["code"] as? String == "MODEL_NOT_FOUND")
        #expect((unknown.json["message"] as? String)?.contains("gpt-4o-mini") == true)
        let noMessages = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: ["model": "gpt-4o-mini", "messages": []])
        #expect(noMessages.status == 400)
        let badLimit = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat(extra: ["max_tokens": 0]))
        #expect(badLimit.status == 400)
        let models = try await gateway.send(.GET, "/v1/models", token: token)
        #expect((models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }.contains("gpt-4o-mini") == true)
        #expect(upstream.fake.requestCount == 0)
    }

    @Test("a stream cut short ends with an error event, not [DONE]")
    func truncatedStream() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        upstream.fake.script(.truncate(afterChunks: 1))
        let reply = try await gateway.send(
            .POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat("gpt-4o-mini", "one two three four", extra: ["stream": true]))
        #expect(reply.status == 200)
        let events = sseData(reply.body)
        #expect(events.last != "[DONE]")
        let last = (try? JSONSerialization.jsonObject(with: Data((events.last ?? "").utf8))) as? [String: Any]
        #expect(((last?["error"] as? [String: Any])?["message"] as? String)?.contains("before [DONE]") == true)
    }

    @Test("a host outside engines.egressAllowedHosts is refused by the host, with the key to change")
    func egressRefused() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines()) { config in
            config.engines.egressAllowedHosts = ["api.openai.com"]
        }
        defer { Task { await gateway.stop() } }
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat())
        #expect(reply.status == 503)
        #expect((reply.json["message"] as? String)?.contains("engines.egressAllowedHosts") == true)
        #expect(upstream.fake.requestCount == 0)
    }

    @Test("/v1/embeddings answers OpenAI's list of vectors")
    func embeddings() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let reply = try await gateway.send(
            .POST, "/v1/embeddings", token: try await GatewayHarness.token(), json: ["model": "text-embedding-3-small", "input": ["a b", "c"]])
        #expect(reply.status == 200)
        let data = reply.json["data"] as? [[String: Any]] ?? []
        #expect(data.count == 2)
        #expect((data.first?["embedding"] as? [Double])?.count == 8)
        #expect((reply.json["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 3)
        let bad = try await gateway.send(.POST, "/v1/embeddings", token: try await GatewayHarness.token(), json: ["model": "text-embedding-3-small", "input": [1]])
        #expect(bad.status == 400)
    }

    @Test("32 concurrent chats against a small cap never spend past it; the rest are 402 BUDGET_EXCEEDED")
    func budgetHoldsUnderConcurrency() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        // Each call reserves its prompt's bound plus 100 output tokens (about 0.00013 USD) and
        // costs about 0.000056 USD (a 91-word echo): the cap fits three in flight and seven in all.
        let cap = 0.0004
        let text = (1...90).map { "w\($0)" }.joined(separator: " ")
        let gateway = try await GatewayHarness.start(engines: upstream.engines(costCapUSD: cap))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<32 {
                group.addTask {
                    try await gateway.send(
                        .POST, "/v1/chat/completions", token: token, json: self.chat("gpt-4o-mini", text, extra: ["max_tokens": 100, "user": "u\(index)"])
                    ).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 402 })
        #expect(statuses.contains(402))
        #expect(statuses.contains(200))
        // Calls one after another spend what concurrency left, then are refused.
        var refused: GatewayHarness.Reply?
        for _ in 0..<10 where refused == nil {
            let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat("gpt-4o-mini", text, extra: ["max_tokens": 100]))
            if reply.status == 402 { refused = reply } else { #expect(reply.status == 200) }
        }
        let summary = try await gateway.send(.GET, "/api/usage/summary", token: token)
        let totals = summary.json["totals"] as? [String: Any]
        let spent = totals?["costNanoUsd"] as? Int ?? -1
        #expect(spent > 0)
        #expect(spent <= Int(cap * 1e9))
        // What is left is less than one more call's reservation.
        #expect(Int(cap * 1e9) - spent < 114_300)
        #expect(refused?.json["code"] as? String == "BUDGET_EXCEEDED")
        #expect((refused?.json["error"] as? [String: Any])?["type"] as? String == "insufficient_quota")
    }

    @Test("a slow upstream is cut at engines.timeoutSeconds: the caller is answered at the deadline and the next route is not the same engine")
    func slowUpstreamMeetsTheDeadline() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines(retries: 0)) { $0.engines.timeoutSeconds = 1 }
        defer { Task { await gateway.stop() } }
        upstream.fake.script(.slow(.seconds(3)))
        let started = ContinuousClock.now
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat())
        let waited = ContinuousClock.now - started
        #expect(reply.status == 503)
        #expect((reply.json["message"] as? String)?.contains("engines.timeoutSeconds") == true, "\(reply.json)")
        #expect(waited < .milliseconds(2500), "answered at the deadline, not when the upstream finally answered")
        // The cut call goes on upstream and may be billed: it is charged its maximum, never 0.
        let summary = try await gateway.send(.GET, "/api/usage/summary", token: try await GatewayHarness.token())
        let charged = (summary.json["totals"] as? [String: Any])?["costNanoUsd"] as? Int ?? 0
        #expect(charged >= 1024 * 600)
        // A slow stream is cut the same way: with an error event after its first chunks (at about
        // 0.6 s), or — on a machine too loaded to send one before the deadline — a plain 503.
        upstream.fake.script(.slow(.milliseconds(300)))
        let stream = try await gateway.send(
            .POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat("gpt-4o-mini", "a b c d e f", extra: ["stream": true]))
        let last = (try? JSONSerialization.jsonObject(with: Data((sseData(stream.body).last ?? "").utf8))) as? [String: Any]
        let message = stream.status == 503 ? stream.json["message"] as? String : (last?["error"] as? [String: Any])?["message"] as? String
        #expect(message?.contains("engines.timeoutSeconds") == true, "\(stream.status) \(String(decoding: stream.body, as: UTF8.self))")
    }
}
