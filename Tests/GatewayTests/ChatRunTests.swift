import Foundation
import NIOHTTP1
import OrionCore
import OrionUpstreamFake
import Testing

@Suite("/v1/chat: memories, engine, usage and feedback in one run", .serialized)
struct ChatRunTests {
    @Test("a chat hands the tenant's memories to the engine, records the run and credits the memories it used")
    func chatWithMemories() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let stored = try await gateway.send(
            .POST, "/api/memory", token: token, json: ["intent": "deploy the billing service", "experience": "run the migrations first"])
        #expect(stored.status == 201)
        let memoryID = try #require(stored.json["id"] as? String)
        // Another tenant's memory is never handed over.
        _ = try await gateway.send(
            .POST, "/api/memory", token: try await GatewayHarness.token(tenant: "other"),
            json: ["intent": "deploy the billing service", "experience": "other tenant secret"])

        let reply = try await gateway.send(
            .POST, "/v1/chat", token: token, json: ["session": "s1", "message": "how do I deploy the billing service", "model": "gpt-4o-mini"])
        #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
        #expect(reply.json["answer"] as? String == "echo: how do I deploy the billing service")
        #expect(reply.json["engine"] as? String == "openai")
        #expect((reply.json["memories"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [memoryID])
        #expect(reply.json["costNanoUsd"] as? Int == 12 * 150 + 8 * 600 / 1)
        let system = ((upstream.fake.received.last?.json["messages"] as? [[String: Any]])?.first?["content"] as? String) ?? ""
        #expect(system.contains("run the migrations first"))
        #expect(!system.contains("other tenant secret"))
        let runID = try #require(reply.json["runId"] as? String)

        // The chat's implied success raised the memory's utility; a thumbs-down replaces it.
        let after = try await gateway.send(.GET, "/api/memory/\(memoryID)", token: token)
        let raised = try #require(after.json["utility"] as? Double)
        #expect(raised > 0)
        let rated = try await gateway.send(.POST, "/v1/chat/feedback", token: token, json: ["runId": runID, "outcome": "thumbs_down"])
        #expect(rated.status == 200)
        #expect((rated.json["memories"] as? [[String: Any]])?.first?["effect"] as? String == "replaced")
        let lowered = try await gateway.send(.GET, "/api/memory/\(memoryID)", token: token)
        #expect((lowered.json["utility"] as? Double ?? 1) < raised)
        let session = try await gateway.send(.GET, "/api/usage/sessions/s1", token: token)
        #expect(session.json["calls"] as? Int == 1)
    }

    @Test("remember: true stores the answer as a new experience of the chat's intent")
    func remember() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let reply = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "rotate the api keys", "remember": true])
        #expect(reply.status == 200)
        let newID = try #require(reply.json["newMemoryId"] as? String)
        let memory = try await gateway.send(.GET, "/api/memory/\(newID)", token: token)
        #expect(memory.json["intent"] as? String == "rotate the api keys")
        #expect(memory.json["experience"] as? String == "echo: rotate the api keys")
    }

    @Test("budget refusals and unknown models are HTTP errors, and the run is closed as an error")
    func refusals() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines(costCapUSD: 0))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let broke = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello", "model": "gpt-4o-mini", "runId": "run-broke"])
        #expect(broke.status == 402, "a cap of 0 refuses a priced model before any call")
        let unpriced = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello"])
        #expect(unpriced.status == 402, "a cap of 0 refuses even a call it cannot price")
        #expect(broke.json["code"] as? String == "BUDGET_EXCEEDED")
        let run = try await gateway.app.runs.record(id: "run-broke", namespace: Namespace.forTenant("acme"))
        #expect(run?.status == .error)
        let noModel = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello", "model": "nope"])
        #expect(noModel.status == 404)
        let feedback = try await gateway.send(.POST, "/v1/chat/feedback", token: token, json: ["runId": "missing", "outcome": "thumbs_up"])
        #expect(feedback.status == 404)
        #expect(upstream.fake.requestCount == 0)
    }

    /// A chat that names no model is answered by the tier's default engine with its default
    /// model, known only from the answer: the hold covers the dearest model the tier offers
    /// through that engine, so concurrent chats cannot spend past the cap together.
    @Test("chats without a model hold what their engine's models may cost: concurrent ones stay within the cap")
    func unnamedModelsAreHeldToo() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let cap = 0.0004  // a 90-word chat holds about 0.00013 USD and costs about half of it
        let gateway = try await GatewayHarness.start(engines: upstream.engines(costCapUSD: cap))
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let text = (1...90).map { "w\($0)" }.joined(separator: " ")
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                group.addTask {
                    try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": text, "maxTokens": 100, "session": "s\(index)"]).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 402 }, "\(statuses)")
        #expect(statuses.contains(402) && statuses.contains(200))
        let totals = try await gateway.send(.GET, "/api/usage/summary", token: token).json["totals"] as? [String: Any]
        let spent = totals?["costNanoUsd"] as? Int ?? -1
        #expect(spent > 0 && spent <= Int(cap * 1e9), "spent \(spent) nano-USD against a cap of \(Int(cap * 1e9))")
    }

    @Test("chats that name no session are charged as sessions of their own, never to one shared account")
    func sessionlessChatsDoNotShareAnAccount() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        for _ in 0..<3 {
            let reply = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello", "model": "gpt-4o-mini"])
            #expect(reply.status == 200)
        }
        for _ in 0..<2 {
            let reply = try await gateway.send(.POST, "/v1/chat", token: token, json: ["message": "hello", "model": "gpt-4o-mini", "session": "s"])
            #expect(reply.status == 200)
        }
        let shared = try await gateway.send(.GET, "/api/usage/sessions/default", token: token)
        #expect(shared.json["calls"] as? Int == 0, "no account collects every sessionless chat")
        let named = try await gateway.send(.GET, "/api/usage/sessions/s", token: token)
        #expect(named.json["calls"] as? Int == 2)
        #expect(gateway.app.engines.budgets.spent(tenant: "acme", session: "default") == nil)
    }
}
