import Foundation
import NIOHTTP1
import OrionCore
import OrionUpstreamFake
import Testing

@Suite("Anthropic's Messages API behind the OpenAI-compatible endpoint", .serialized)
struct AnthropicGatewayTests {
    func chat(_ extra: [String: Any] = [:], model: String = "claude-3-5-haiku") -> [String: Any] {
        var body: [String: Any] = [
            "model": model,
            "messages": [["role": "system", "content": "be brief"], ["role": "user", "content": "hi claude"]],
        ]
        for (key, value) in extra { body[key] = value }
        return body
    }

    @Test("a completion maps system, max_tokens and the key out, and text and cache tokens back, priced per class")
    func plain() async throws {
        let upstream = try await UpstreamHarness.start(FakeUpstream(promptTokens: 20, cachedTokens: 5))
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat())
        #expect(reply.status == 200)
        let choice = (reply.json["choices"] as? [[String: Any]])?.first
        #expect((choice?["message"] as? [String: Any])?["content"] as? String == "echo: hi claude")
        #expect(choice?["finish_reason"] as? String == "stop")
        let usage = reply.json["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == 20)
        #expect((usage?["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 5)
        let sent = try #require(upstream.fake.received.last)
        #expect(sent.path == "/v1/messages")
        #expect(sent.headers["x-api-key"] == "sk-ant-test")
        #expect(sent.headers["anthropic-version"] == "2023-06-01")
        #expect(sent.json["system"] as? String == "be brief")
        #expect(sent.json["max_tokens"] as? Int == 1024)
        #expect((sent.json["messages"] as? [[String: Any]])?.count == 1)
        // 15 input × 0.80 + 5 cache reads × 0.08 + 3 output × 4.00 USD per million = 24,400 nano-USD.
        let summary = try await gateway.send(.GET, "/api/usage/summary", token: token)
        let row = (summary.json["rows"] as? [[String: Any]])?.first
        #expect(row?["engine"] as? String == "anthropic")
        #expect(row?["cacheReadTokens"] as? Int == 5)
        #expect(row?["costNanoUsd"] as? Int == 24_400)
    }

    @Test("a streamed answer becomes chat.completion.chunks with usage at the end")
    func streamed() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat(["stream": true]))
        #expect(reply.status == 200)
        let events = sseData(reply.body)
        #expect(events.last == "[DONE]")
        let objects = events.dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let text = objects.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
        #expect(text == "echo: hi claude")
        let finish = objects.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        #expect(finish == ["stop"])
        #expect((objects.last?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3)
    }

    @Test("tools go out as input_schema; tool_use comes back as tool_calls; tool results go back as tool_result blocks")
    func tools() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let tools: [[String: Any]] = [["type": "function", "function": ["name": "lookup", "description": "find", "parameters": ["type": "object"]]]]
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat(["tools": tools, "tool_choice": "required"]))
        #expect(reply.status == 200)
        let choice = (reply.json["choices"] as? [[String: Any]])?.first
        #expect(choice?["finish_reason"] as? String == "tool_calls")
        let call = ((choice?["message"] as? [String: Any])?["tool_calls"] as? [[String: Any]])?.first
        #expect((call?["function"] as? [String: Any])?["arguments"] as? String == #"{"q":"x"}"#)
        let sentTools = upstream.fake.received.last?.json["tools"] as? [[String: Any]]
        #expect(sentTools?.first?["input_schema"] as? [String: String] == ["type": "object"])
        #expect(upstream.fake.received.last?.json["tool_choice"] as? [String: String] == ["type": "any"])

        let followUp: [[String: Any]] = [
            ["role": "user", "content": "hi claude"],
            ["role": "assistant", "content": NSNull(), "tool_calls": [["id": "toolu_fake1", "type": "function", "function": ["name": "lookup", "arguments": #"{"q":"x"}"#]]]],
            ["role": "tool", "tool_call_id": "toolu_fake1", "content": "found it"],
        ]
        let second = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: ["model": "claude-3-5-haiku", "messages": followUp])
        #expect(second.status == 200)
        let turns = upstream.fake.received.last?.json["messages"] as? [[String: Any]] ?? []
        #expect(turns.map { $0["role"] as? String } == ["user", "assistant", "user"])
        let use = (turns[1]["content"] as? [[String: Any]])?.first
        #expect(use?["type"] as? String == "tool_use")
        #expect(use?["input"] as? [String: String] == ["q": "x"])
        let result = (turns[2]["content"] as? [[String: Any]])?.first
        #expect(result?["type"] as? String == "tool_result")
        #expect(result?["tool_use_id"] as? String == "toolu_fake1")
    }

    @Test("an overloaded Anthropic (529) falls back to the route's OpenAI model")
    func fallbackToOpenAI() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines(retries: 0))
        defer { Task { await gateway.stop() } }
        upstream.fake.script(.status(529))
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat())
        #expect(reply.status == 200)
        #expect(upstream.fake.received.map(\.path) == ["/v1/messages", "/v1/chat/completions"])
        #expect(upstream.fake.received.last?.json["model"] as? String == "gpt-4o-mini")
        #expect(reply.json["model"] as? String == "gpt-4o-mini")
    }

    @Test("without a key the upstream's 401 is reported with the variable to set")
    func missingKey() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        var engines = upstream.engines()
        engines.files["keyless.yaml"] = "id: keyless\nplugin: engine-anthropic\nconfig: { baseUrl: 'http://127.0.0.1:\(upstream.port)/v1', apiKeyEnv: ORION_TEST_UNSET_KEY, retries: 0 }\n"
        engines.models = engines.models.replacingOccurrences(of: "}", with: ", keyless-claude: keyless }")
        let gateway = try await GatewayHarness.start(engines: engines)
        defer { Task { await gateway.stop() } }
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: try await GatewayHarness.token(), json: chat(model: "keyless-claude"))
        #expect(reply.status == 503)
        let message = reply.json["message"] as? String ?? ""
        #expect(message.contains("401") && message.contains("ORION_TEST_UNSET_KEY"), "\(message)")
    }

    @Test("images, stop sequences, a named tool choice and the user map out; a bad role is 400 without a call")
    func requestMapping() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let content: [[String: Any]] = [
            ["type": "text", "text": "what is this"],
            ["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw0KGgo="]],
            ["type": "image_url", "image_url": ["url": "https://example.org/cat.jpg"]],
        ]
        let tools: [[String: Any]] = [["type": "function", "function": ["name": "lookup"]]]
        let body: [String: Any] = [
            "model": "claude-3-5-haiku", "messages": [["role": "developer", "content": [["type": "text", "text": "be exact"]]], ["role": "user", "content": content]],
            "stop": "END", "temperature": 0.5, "tools": tools, "tool_choice": ["type": "function", "function": ["name": "lookup"]], "user": "u-1",
        ]
        let reply = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: body)
        #expect(reply.status == 200)
        let sent = try #require(upstream.fake.received.last?.json)
        #expect(sent["system"] as? String == "be exact")
        #expect(sent["stop_sequences"] as? [String] == ["END"])
        #expect(sent["temperature"] as? Double == 0.5)
        #expect(sent["tool_choice"] as? [String: String] == ["type": "tool", "name": "lookup"])
        #expect(sent["metadata"] as? [String: String] == ["user_id": "u-1"])
        let blocks = ((sent["messages"] as? [[String: Any]])?.first?["content"] as? [[String: Any]]) ?? []
        #expect(blocks.map { $0["type"] as? String } == ["text", "image", "image"])
        #expect((blocks[1]["source"] as? [String: String]) == ["type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="])
        #expect((blocks[2]["source"] as? [String: String]) == ["type": "url", "url": "https://example.org/cat.jpg"])

        let before = upstream.fake.requestCount
        let bad = try await gateway.send(
            .POST, "/v1/chat/completions", token: token, json: ["model": "claude-3-5-haiku", "messages": [["role": "narrator", "content": "x"]]])
        #expect(bad.status == 400)
        #expect((bad.json["message"] as? String)?.contains("narrator") == true)
        let orphan = try await gateway.send(
            .POST, "/v1/chat/completions", token: token, json: ["model": "claude-3-5-haiku", "messages": [["role": "tool", "content": "x"]]])
        #expect(orphan.status == 400)
        #expect(upstream.fake.requestCount == before)
    }

    @Test("a stream cut before message_stop is an error event; a 400 from Anthropic is 400 without fallback")
    func streamAndRefusals() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines(retries: 0))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        upstream.fake.script(.truncate(afterChunks: 3))
        let cut = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat(["stream": true]))
        let last = (try? JSONSerialization.jsonObject(with: Data((sseData(cut.body).last ?? "").utf8))) as? [String: Any]
        #expect(((last?["error"] as? [String: Any])?["message"] as? String)?.contains("message_stop") == true)

        upstream.fake.script(.status(400))
        let refused = try await gateway.send(.POST, "/v1/chat/completions", token: token, json: chat())
        #expect(refused.status == 400)
        #expect((refused.json["message"] as? String)?.contains("invalid_request_error") == true)
        #expect(upstream.fake.received.last?.path == "/v1/messages", "a malformed request does not fall back")
    }
}
