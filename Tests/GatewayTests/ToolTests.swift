import Foundation
import NIOHTTP1
import OrionCore
import OrionUpstreamFake
import Testing

@Suite("Tools", .serialized)
struct ToolTests {
    /// tool-memory-search and the C fixture tool in tier free, beside the chat upstream's engines.
    static func engines(_ upstream: UpstreamHarness) -> GatewayHarness.Engines {
        var engines = upstream.engines()
        engines.files["memory-search.yaml"] = "id: memory-search\nplugin: tool-memory-search\nconfig: { maxResults: 3 }\n"
        engines.files["fixture.yaml"] = "id: fixture\nplugin: fixture-tool\n"
        engines.capabilities += ", tools: [memory-search, fixture]"
        return engines
    }

    static func start(_ upstream: UpstreamHarness, timeout: Double = 30, configure: @escaping (inout RuntimeConfig) -> Void = { _ in }) async throws -> GatewayHarness {
        try await GatewayHarness.start(engines: engines(upstream)) { config in
            config.tools.timeoutSeconds = timeout
            config.tools.breakerFailures = 3
            config.rbac.roles["agent"] = ["tool:memory_search:call", "tool:list", "runs:read"]
            configure(&config)
        }
    }

    @Test("memory_search answers from the caller's tenant only, is listed with its schemas and recorded as its run's tool call")
    func memorySearchIsTenantScopedAndRecorded() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await Self.start(upstream)
        defer { Task { await gateway.stop() } }
        let acme = try await GatewayHarness.token()
        let globex = try await GatewayHarness.token(tenant: "globex")
        for (token, experience) in [(acme, "acme restarts the queue"), (globex, "globex secret runbook")] {
            let stored = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": "restart the stuck queue", "experience": experience])
            #expect(stored.status == 201)
        }
        let listed = try await gateway.send(.GET, "/v1/tools", token: acme)
        let tools = listed.json["tools"] as? [[String: Any]] ?? []
        #expect(Set(tools.compactMap { $0["name"] as? String }) == ["memory_search", "fixture_tool"])
        let search = try #require(tools.first { $0["name"] as? String == "memory_search" })
        #expect(((search["inputSchema"] as? [String: Any])?["required"] as? [String]) == ["query"])
        #expect(search["callable"] as? Bool == true)
        let document = try await gateway.send(.GET, "/openapi.json")
        #expect((document.json["paths"] as? [String: Any])?["/v1/tools/memory_search/call"] != nil)

        let called = try await gateway.send(.POST, "/v1/tools/memory_search/call", token: acme, json: ["input": ["query": "restart the stuck queue"]])
        #expect(called.status == 200, "\(called.json)")
        let memories = (called.json["output"] as? [String: Any])?["memories"] as? [[String: Any]] ?? []
        #expect(memories.compactMap { $0["experience"] as? String } == ["acme restarts the queue"])
        let runID = try #require(called.json["runId"] as? String)
        let run = try await gateway.send(.GET, "/v1/runs/\(runID)", token: acme)
        #expect(run.json["kind"] as? String == "tool")
        #expect(run.json["status"] as? String == "finished")
        let calls = run.json["toolCalls"] as? [[String: Any]] ?? []
        #expect(calls.count == 1)
        #expect(calls.first?["name"] as? String == "memory_search")
        #expect(calls.first?["success"] as? Bool == true)
        #expect((calls.first?["argumentsSha256"] as? String)?.count == 64)
        #expect(try await gateway.send(.GET, "/v1/runs/\(runID)", token: globex).status == 404)
    }

    @Test("bad input is 400 naming the field; RBAC is per tool; Idempotency-Key replays")
    func inputRBACAndIdempotency() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await Self.start(upstream)
        defer { Task { await gateway.stop() } }
        let member = try await GatewayHarness.token()
        for (input, field) in [
            (["query": 5] as [String: Any], "/input/query"), ([:], "/input/query"), (["query": "x", "limit": 3], "/input/limit"),
            (["query": "x", "topK": 99], "/input/topK"),
        ] {
            let refused = try await gateway.send(.POST, "/v1/tools/memory_search/call", token: member, json: ["input": input])
            #expect(refused.status == 400)
            #expect(refused.json["field"] as? String == field, "\(refused.json)")
        }
        let unknown = try await gateway.send(.POST, "/v1/tools/nope/call", token: member, json: ["input": [:]])
        #expect(unknown.status == 404)
        #expect(unknown.json["code"] as? String == "TOOL_NOT_FOUND")
        // Callers choose names: an unknown one is counted under one label, never its own.
        let metrics = String(decoding: try await gateway.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"tool="(unknown)""#))
        #expect(!metrics.contains(#"tool="nope""#))
        let viewer = try await GatewayHarness.token(roles: ["viewer"])
        #expect(try await gateway.send(.POST, "/v1/tools/memory_search/call", token: viewer, json: ["input": ["query": "x"]]).status == 403)
        let agent = try await GatewayHarness.token(user: "bot", roles: ["agent"])
        #expect(try await gateway.send(.POST, "/v1/tools/memory_search/call", token: agent, json: ["input": ["query": "x"]]).status == 200)
        let other = try await gateway.send(.POST, "/v1/tools/fixture_tool/call", token: agent, json: ["input": ["mode": "echo"]])
        #expect(other.status == 403)
        #expect((other.json["message"] as? String)?.contains("tool:fixture_tool:call") == true)

        let key = [("Idempotency-Key", "tool-call-1")]
        let first = try await gateway.send(.POST, "/v1/tools/memory_search/call", token: member, json: ["input": ["query": "once"]], headers: key)
        let second = try await gateway.send(.POST, "/v1/tools/memory_search/call", token: member, json: ["input": ["query": "once"]], headers: key)
        #expect(first.status == 200 && second.status == 200)
        #expect(second.header("Idempotent-Replayed") == "true")
        #expect(second.json["runId"] as? String == first.json["runId"] as? String)
        let runs = try await gateway.send(.GET, "/v1/runs?limit=500", token: member)
        #expect((runs.json["runs"] as? [[String: Any]])?.filter { $0["kind"] as? String == "tool" }.count == 2)
    }

    @Test("a tool that hangs is answered at tools.timeoutSeconds; failures open its breaker; an answer outside its schema is 502; outcomes are counted")
    func deadlineBreakerAndOutputSchema() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await Self.start(upstream, timeout: 0.3)
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        func call(_ mode: String) async throws -> GatewayHarness.Reply {
            try await gateway.send(.POST, "/v1/tools/fixture_tool/call", token: token, json: ["input": ["mode": mode]])
        }
        #expect(try await call("echo").status == 200)
        // A refusal of the caller's input says the tool is healthy: it never opens the breaker.
        for _ in 0..<4 { #expect(try await call("refuse").status == 400) }
        let hung = try await call("hang")
        #expect(hung.status == 504)
        #expect((hung.json["message"] as? String)?.contains("tools.timeoutSeconds") == true)
        let bad = try await call("bad_output")
        #expect(bad.status == 502)
        #expect(bad.json["code"] as? String == "TOOL_INVALID_OUTPUT")
        // A third failure in a row opens the breaker (tools.breakerFailures = 3 here).
        #expect(try await call("fail").status == 502)
        let open = try await call("echo")
        #expect(open.status == 503)
        #expect(open.json["code"] as? String == "TOOL_UNAVAILABLE")
        let metrics = String(decoding: try await gateway.send(.GET, "/metrics").body, as: UTF8.self)
        for outcome in ["ok", "timeout", "invalid_output", "invalid_input", "error", "breaker_open"] {
            #expect(metrics.split(separator: "\n").contains {
                $0.hasPrefix("orion_tool_calls_total") && $0.contains(#"tool="fixture_tool""#) && $0.contains(#"outcome="\#(outcome)""#)
            }, "no orion_tool_calls_total for \(outcome)")
        }
    }

    @Test("a tool call joins a streamed chat's run in progress; a finished run refuses it")
    func toolCallJoinsARunInProgress() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await Self.start(upstream)
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        upstream.fake.script(.slow(.milliseconds(100)))
        let chat = try await SSEReader(gateway, "/v1/chat", method: .POST, token: token, json: ["message": "one two three four five six", "topK": 0, "stream": true, "runId": "agent-1"])
        #expect(try await chat.next()?.name == "run")
        let joined = try await gateway.send(.POST, "/v1/tools/fixture_tool/call", token: token, json: ["input": ["mode": "echo"], "runId": "agent-1"])
        #expect(joined.status == 200, "\(joined.json)")
        #expect(joined.json["runId"] as? String == "agent-1")
        var last: String?
        while let event = try await chat.next() { last = event.name }
        #expect(last == "done")
        let run = try await gateway.send(.GET, "/v1/runs/agent-1", token: token)
        #expect((run.json["toolCalls"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["fixture_tool"])
        #expect(Set((run.json["steps"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }) == ["tool_call", "generate"])
        let late = try await gateway.send(.POST, "/v1/tools/fixture_tool/call", token: token, json: ["input": ["mode": "echo"], "runId": "agent-1"])
        #expect(late.status == 409)
        #expect(late.json["code"] as? String == "RUN_NOT_ACTIVE")
    }
}
