import Foundation
import NIOHTTP1
import OrionCore
import OrionUpstreamFake
import Testing

@Suite("Query expansion: rephrasings by the tier's fast engine, fused by full text", .serialized)
struct QueryExpansionTests {
    static let query = "how should I go about cycling the access tokens for our payments backend"

    func start(_ upstream: UpstreamHarness) async throws -> GatewayHarness {
        var engines = upstream.engines(retries: 0)
        engines.capabilities += ", query_expansion: openai"
        return try await GatewayHarness.start(engines: engines) { $0.memory.queryExpansionEnabled = true }
    }

    @Test("a long query's rephrasings find a memory its own words miss; the call is recorded")
    func rephrasingsFindMore() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await start(upstream)
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        let stored = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": "renew billing service secrets", "experience": "vault"])
        let memoryID = try #require(stored.json["id"] as? String)
        _ = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": "plan offsite", "experience": "book early"])

        upstream.fake.script(.reply("1. rotate payment API credentials\n2. renew billing service secrets"))
        let found = try await gateway.send(.POST, "/api/memory/search", token: token, json: ["intent": Self.query])
        #expect(found.status == 200)
        let ids = (found.json["hits"] as? [[String: Any]])?.compactMap { ($0["memory"] as? [String: Any])?["id"] as? String } ?? []
        #expect(ids.first == memoryID, "\(found.json)")
        let asked = upstream.fake.received.last?.json["messages"] as? [[String: Any]]
        #expect(asked?.last?["content"] as? String == Self.query)

        let summary = try await gateway.send(.GET, "/api/usage/summary", token: token)
        #expect((summary.json["totals"] as? [String: Any])?["calls"] as? Int == 1)

        // Without expansion (a short query is not expanded) the same memory is not found by these words.
        let short = try await gateway.send(.POST, "/api/memory/search", token: token, json: ["intent": "cycling access tokens payments"])
        #expect((short.json["hits"] as? [Any])?.isEmpty == true)
        #expect(upstream.fake.requestCount == 1)
    }

    /// The rephrasing call is charged like any other: against the tenant's own cap when an
    /// operator gave it one, not its tier's.
    @Test("a tenant's own cap, not its tier's, pays for rephrasings")
    func aTenantsOwnCapPays() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        var engines = upstream.engines(retries: 0)
        engines.capabilities += ", query_expansion: openai"
        engines.costCapUSD = 0.000_001  // the tier's cap cannot pay for one call
        let gateway = try await GatewayHarness.start(engines: engines) { $0.memory.queryExpansionEnabled = true }
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        _ = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": "renew billing service secrets", "experience": "vault"])
        // The rephrasing's hold (the dearest model the tier offers through the engine) is past the
        // tier's cap: refused before any call, and the search goes on without it.
        let refused = try await gateway.send(.POST, "/api/memory/search", token: token, json: ["intent": Self.query])
        #expect(refused.status == 200 && (refused.json["hits"] as? [Any])?.isEmpty == true)
        #expect(upstream.fake.requestCount == 0)

        let admin = try await GatewayHarness.token(tenant: "ops", user: "olga", roles: ["admin"])
        let raised = try await gateway.send(.PUT, "/api/admin/tenants/acme", token: admin, json: ["name": "Acme", "tier": "free", "costCapUsd": 10])
        #expect(raised.status == 200 || raised.status == 201)
        upstream.fake.script(.reply("rotate payment API credentials\nrenew billing service secrets"))
        let found = try await gateway.send(.POST, "/api/memory/search", token: token, json: ["intent": Self.query])
        #expect(found.status == 200)
        #expect(upstream.fake.requestCount == 1, "the tenant's own cap pays for the rephrasing")
    }

    @Test("an engine failure never fails the search")
    func failureDoesNotBlock() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await start(upstream)
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        _ = try await gateway.send(.POST, "/api/memory", token: token, json: ["intent": "cycling the access tokens", "experience": "vault"])
        upstream.fake.script(.status(500))
        let found = try await gateway.send(.POST, "/api/memory/search", token: token, json: ["intent": Self.query])
        #expect(found.status == 200)
        #expect((found.json["hits"] as? [Any])?.count == 1)
    }

    @Test("rephrasings are cleaned: markers and quotes removed, the query and repeats left out, two at most")
    func lines() {
        let text = "1. \"renew secrets\"\n- renew secrets\n\nthe query\n* rotate keys\n• third one"
        #expect(EngineQueryExpander.lines(text, excluding: "The Query") == ["renew secrets", "rotate keys"])
        #expect(EngineQueryExpander.lines("3D printing of parts\n2024 tax rules", excluding: "x") == ["3D printing of parts", "2024 tax rules"])
    }
}
