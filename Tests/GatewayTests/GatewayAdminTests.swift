import AsyncHTTPClient
import Foundation
import NIOHTTP1
import OrionCore
import OrionGateway
import Testing

/// Admin, readiness, analytics, CORS and tenant resolution through the API.
@Suite struct GatewayAdminTests {
    @Test func adminListsReloadsAndSwapsATiersRetrieverWhileServing() async throws {
        let h = try await GatewayHarness.start()
        let admin = try await GatewayHarness.token(roles: ["admin"])
        let member = try await GatewayHarness.token()
        let list = try await h.send(.GET, "/api/admin/plugins", token: admin)
        #expect(list.status == 200)
        let ids = (list.json["instances"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        #expect(Set(ids) == ["fts", "fts2", "ratelimit"])
        #expect(try await h.send(.POST, "/api/admin/reload", token: admin).status == 200)

        #expect(try await h.send(.POST, "/api/memory", token: member, json: ["id": "m", "intent": "scale the queue", "experience": "x"]).status == 201)
        let swapped = try await h.send(.PUT, "/api/admin/tiers/free/retriever", token: admin, json: ["instances": ["fts2"]])
        #expect(swapped.status == 200, "\(swapped.json)")
        let search = try await h.send(.POST, "/api/memory/search", token: member, json: ["intent": "scale the queue"])
        #expect(search.json["retriever"] as? String == "fts2")
        #expect((search.json["hits"] as? [Any])?.count == 1, "the new retriever was filled from the store")
        let refused = try await h.send(.PUT, "/api/admin/tiers/free/retriever", token: admin, json: ["instances": ["ratelimit"]])
        #expect(refused.status == 409, "a rate limiter cannot serve retrieval")
        #expect(try await h.send(.PUT, "/api/admin/tiers/gold/retriever", token: admin, json: ["instances": ["fts"]]).status == 404)
        let ghost = try await h.send(.PUT, "/api/admin/tiers/free/retriever", token: admin, json: ["instances": ["ghost"]])
        #expect(ghost.status == 409)
        #expect((ghost.json["message"] as? String)?.contains("no instance 'ghost'") == true, "\(ghost.json)")
        #expect(try await h.send(.PUT, "/api/admin/tiers/free/retriever", token: member, json: ["instances": ["fts"]]).status == 403)
        // The swap survives a reload from plugins.d.
        #expect(try await h.send(.POST, "/api/admin/reload", token: admin).status == 200)
        #expect(h.app.runtime.registry.snapshot.tiers["free"]?.capabilities["retrieval"] == ["fts2"])
        // Deleting the saved overrides and reloading returns to tiers.yaml.
        try FileManager.default.removeItem(atPath: h.dir + "/tier-overrides.json")
        #expect(try await h.send(.POST, "/api/admin/reload", token: admin).status == 200)
        #expect(h.app.runtime.registry.snapshot.tiers["free"]?.capabilities["retrieval"] == ["fts"])
        await h.stop()
    }

    @Test func readyHealthAndMetricsArePublic() async throws {
        let h = try await GatewayHarness.start()
        #expect(try await h.send(.GET, "/health").status == 200)
        let ready = try await h.send(.GET, "/ready")
        #expect(ready.status == 200)
        #expect(ready.json["status"] as? String == "ready")
        for _ in 0..<5 { _ = try await h.send(.GET, "/api/memory/x", token: try await GatewayHarness.token()) }
        let metrics = String(decoding: try await h.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("orion_http_request_duration_window_seconds{route=\"/api/memory/{id}\",quantile=\"0.95\"}"), "\(metrics.prefix(2000))")
        #expect(metrics.contains("route=\"/api/memory/{id}\""))
        _ = try await h.send(.POST, "/api/memory/search", token: try await GatewayHarness.token(), json: ["intent": "anything"])
        let after = String(decoding: try await h.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(after.contains("orion_plugin_calls_total{instance=\"ratelimit\",operation=\"acquire\",outcome=\"ok\"}"), "\(after.prefix(3000))")
        #expect(after.contains("orion_plugin_calls_total{instance=\"fts\",operation=\"search\",outcome=\"ok\"}"))
        #expect(after.contains("orion_plugin_call_duration_seconds"))
        await h.stop()
    }

    @Test func analyticsReportOneTenantFromStoredRecords() async throws {
        let h = try await GatewayHarness.start()
        let member = try await GatewayHarness.token(tenant: "shop")
        for n in 0..<4 { _ = try await h.send(.GET, "/api/memory/m\(n)", token: member) }
        let analyst = try await GatewayHarness.token(tenant: "shop", user: "ann", roles: ["analyst"])
        let reply = try await h.send(.GET, "/api/analytics/tenants/shop?windowSeconds=600", token: analyst)
        #expect(reply.status == 200)
        #expect(reply.json["requests"] as? Int == 4, "\(reply.json)")
        #expect(reply.json["errors"] as? Int == 0)
        #expect((reply.json["requestsByRoute"] as? [String: Int])?["/api/memory/{id}"] == 4)
        #expect((reply.json["latencyMs"] as? [String: Double])?["p99"] ?? 0 > 0)
        #expect(try await h.send(.GET, "/api/analytics/tenants/other", token: analyst).status == 403, "another tenant needs admin:tenants")
        #expect(try await h.send(.GET, "/api/analytics/tenants/shop", token: member).status == 403)
        #expect(try await h.send(.GET, "/api/analytics/tenants/shop?windowSeconds=0", token: analyst).status == 400)
        await h.stop()
    }

    @Test func corsAnswersOnlyAllowedOrigins() async throws {
        let h = try await GatewayHarness.start { $0.gateway.corsAllowedOrigins = ["https://app.example"] }
        let allowed = try await h.send(.OPTIONS, "/api/memory", headers: [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")])
        #expect(allowed.status == 204)
        #expect(allowed.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(allowed.header("Access-Control-Allow-Headers")?.contains("Authorization") == true)
        let other = try await h.send(.GET, "/health", headers: [("Origin", "https://evil.example")])
        #expect(other.header("Access-Control-Allow-Origin") == nil)
        await h.stop()
    }

    @Test func unknownTenantsAreProvisionedOrRefusedAndChangesReachTheCache() async throws {
        let h = try await GatewayHarness.start()
        let token = try await GatewayHarness.token(tenant: "newco", user: "nina")
        #expect(try await h.send(.GET, "/api/memory/x", token: token).status == 404)
        let created = try #require(try await h.gateway.tenants.tenant(id: "newco"))
        #expect(created.tier == "free")
        #expect(created.name.contains("nina"))
        // Moving the tenant to a tier that does not exist is seen at once, not after the TTL.
        try await h.gateway.tenants.upsert(id: "newco", name: "NewCo", tier: "gold")
        #expect(try await h.send(.GET, "/api/memory/x", token: token).status == 503)
        await h.stop()

        let closed = try await GatewayHarness.start { $0.auth.autoProvisionTenants = false }
        let stranger = try await closed.send(.GET, "/api/memory/x", token: try await GatewayHarness.token(tenant: "nobody"))
        #expect(stranger.status == 403)
        #expect(stranger.json["code"] as? String == "UNKNOWN_TENANT")
        await closed.stop()
    }

    @Test func operatorsCreateAndChangeTenantsAndATenantCapReplacesItsTiers() async throws {
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let h = try await GatewayHarness.start(engines: upstream.engines())
        let admin = try await GatewayHarness.token(tenant: "ops", user: "olga", roles: ["admin"])
        let created = try await h.send(.PUT, "/api/admin/tenants/newco", token: admin, json: ["name": "NewCo", "tier": "free"])
        #expect(created.status == 201)
        #expect(created.json["tier"] as? String == "free" && created.json["costCapUsd"] == nil)
        let replaced = try await h.send(.PUT, "/api/admin/tenants/newco", token: admin, json: ["name": "NewCo Ltd", "tier": "free", "costCapUsd": 0])
        #expect(replaced.status == 200)
        #expect(replaced.json["name"] as? String == "NewCo Ltd" && replaced.json["costCapUsd"] as? Double == 0)
        #expect(replaced.json["createdAt"] as? Int == created.json["createdAt"] as? Int)

        let unknownTier = try await h.send(.PUT, "/api/admin/tenants/newco", token: admin, json: ["name": "x", "tier": "gold"])
        #expect(unknownTier.status == 400)
        #expect((unknownTier.json["message"] as? String)?.contains("use one of: free") == true)
        #expect(try await h.send(.PUT, "/api/admin/tenants/.hidden", token: admin, json: ["name": "x", "tier": "free"]).status == 400)
        #expect(try await h.send(.PUT, "/api/admin/tenants/newco", token: admin, json: ["tier": "free"]).status == 400, "name is required")
        let member = try await GatewayHarness.token(tenant: "newco", user: "nina")
        #expect(try await h.send(.PUT, "/api/admin/tenants/newco", token: member, json: ["name": "x", "tier": "free"]).status == 403)
        #expect(try await h.send(.GET, "/api/admin/tenants", token: member).status == 403)

        // The operator's changes are in the changed tenant's trail too.
        let trail = try await h.send(.GET, "/api/audit?tenant=newco", token: admin).json["entries"] as? [[String: Any]] ?? []
        #expect(trail.count == 2 && trail.allSatisfy { $0["actor"] as? String == "olga" && $0["action"] as? String == "PUT /api/admin/tenants/{id}" })
        #expect(trail.map { $0["status"] as? Int } == [200, 201])
        let list = try await h.send(.GET, "/api/admin/tenants", token: admin)
        #expect((list.json["tenants"] as? [[String: Any]])?.compactMap { $0["id"] as? String }.contains("newco") == true)
        #expect(try await h.send(.GET, "/api/admin/tenants/newco", token: admin).json["name"] as? String == "NewCo Ltd")
        #expect(try await h.send(.GET, "/api/admin/tenants/nobody", token: admin).status == 404)

        // The tenant's own cap (0) replaces the tier's (50 USD): its first chat is refused.
        let chat: [String: Any] = ["model": "gpt-4o-mini", "messages": [["role": "user", "content": "hi"]]]
        let refused = try await h.send(.POST, "/v1/chat/completions", token: member, json: chat)
        #expect(refused.status == 402)
        _ = try await h.send(.PUT, "/api/admin/tenants/newco", token: admin, json: ["name": "NewCo Ltd", "tier": "free"])
        #expect(try await h.send(.POST, "/v1/chat/completions", token: member, json: chat).status == 200, "without its own cap, the tier's applies")
        await h.stop()
    }

    @Test func everyChangeIsInTheAuditTrailOfItsTenant() async throws {
        let h = try await GatewayHarness.start()
        let alice = try await GatewayHarness.token(tenant: "acme", user: "alice", roles: ["member", "analyst"])
        let body = ["id": "m1", "intent": "book a flight", "experience": "use the fare calendar"]
        #expect(try await h.send(.POST, "/api/memory", token: alice, json: body).status == 201)
        #expect(try await h.send(.POST, "/api/memory/search", token: alice, json: ["intent": "flight"]).status == 200)
        #expect(try await h.send(.POST, "/api/memory", token: alice, json: ["id": ""]).status == 400)
        let trail = try await h.send(.GET, "/api/audit?limit=10", token: alice)
        #expect(trail.status == 200)
        let entries = trail.json["entries"] as? [[String: Any]] ?? []
        #expect(entries.count == 1, "a search reads and a refused request changes nothing: \(entries)")
        #expect(entries.first?["actor"] as? String == "alice" && entries.first?["action"] as? String == "POST /api/memory")
        #expect(entries.first?["status"] as? Int == 201 && entries.first?["node"] as? String == "orion-local")
        #expect((entries.first?["digest"] as? String)?.hasPrefix("sha256:") == true)

        let other = try await GatewayHarness.token(tenant: "globex", user: "gil", roles: ["member", "analyst"])
        #expect(try await h.send(.GET, "/api/audit", token: other).json["entries"] as? [[String: Any]] != nil)
        #expect((try await h.send(.GET, "/api/audit", token: other).json["entries"] as? [[String: Any]])?.isEmpty == true, "another tenant's trail is its own")
        #expect(try await h.send(.GET, "/api/audit?tenant=acme", token: other).status == 403)
        let admin = try await GatewayHarness.token(tenant: "ops", user: "olga", roles: ["admin"])
        #expect((try await h.send(.GET, "/api/audit?tenant=acme", token: admin).json["entries"] as? [[String: Any]])?.count == 1)
        #expect(try await h.send(.GET, "/api/audit?limit=0", token: alice).status == 400)
        #expect(try await h.send(.GET, "/api/audit?since=-1", token: alice).status == 400)
        let member = try await GatewayHarness.token(tenant: "acme", user: "mo")
        #expect(try await h.send(.GET, "/api/audit", token: member).status == 403, "members do not read the audit trail")
        await h.stop()
    }

    @Test func personalTenantsNeverCollideAndDotIdsAreRefused() async throws {
        let h = try await GatewayHarness.start { $0.multiTenantEnabled = false }
        let first = try await GatewayHarness.token(tenant: nil, user: "bob@x.io")
        let second = try await GatewayHarness.token(tenant: nil, user: "bob_x.io")
        #expect(try await h.send(.POST, "/api/memory", token: first, json: ["id": "m", "intent": "a", "experience": "b"]).status == 201)
        #expect(try await h.send(.GET, "/api/memory/m", token: second).status == 404, "two users whose ids differ only in punctuation")
        #expect(try await h.send(.GET, "/api/memory/m", token: first).status == 200)
        await h.stop()

        let multi = try await GatewayHarness.start()
        for bad in [".", "..", ".hidden"] {
            let reply = try await multi.send(.GET, "/api/memory/x", token: try await GatewayHarness.token(tenant: bad))
            #expect(reply.status == 401, "\(bad)")
        }
        await #expect(throws: TenantError.self) { try await multi.gateway.tenants.upsert(id: "..", name: "x", tier: "free") }
        await multi.stop()
    }

    @Test func anIdempotencyKeyBelongsToOneUser() async throws {
        let h = try await GatewayHarness.start()
        let alice = try await GatewayHarness.token(user: "alice")
        let bob = try await GatewayHarness.token(user: "bob")
        let body = ["intent": "same", "experience": "same"]
        let first = try await h.send(.POST, "/api/memory", token: alice, json: body, headers: [("Idempotency-Key", "shared")])
        let other = try await h.send(.POST, "/api/memory", token: bob, json: body, headers: [("Idempotency-Key", "shared")])
        #expect(other.status == 201)
        #expect(other.header("Idempotent-Replayed") == nil, "bob's request ran; it did not replay alice's answer")
        #expect(other.json["id"] as? String != first.json["id"] as? String)
        await h.stop()
    }
}
