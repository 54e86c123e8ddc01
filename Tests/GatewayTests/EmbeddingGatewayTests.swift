import Foundation
import NIOHTTP1
import OrionTestSupport
import Testing

/// Text in, vectors out: memories stored and searched as text over HTTP get their vectors from the
/// tier's embeddings engine (embed-local on the real model), and hybrid search finds by meaning.
@Suite struct EmbeddingGatewayTests {
    static let memories = [
        ("m-password", "reset a forgotten password"),
        ("m-bread", "bake sourdough bread at home"),
        ("m-tls", "renew the TLS certificate of the web server"),
    ]

    @Test func textInHybridSearchFindsMemoriesByMeaning() async throws {
        let h = try await GatewayHarness.start(embeddings: .local)
        let token = try await GatewayHarness.token()
        for (id, intent) in Self.memories {
            let stored = try await h.send(.POST, "/api/memory", token: token, json: ["id": id, "intent": intent, "experience": "worked"])
            #expect(stored.status == 201, "\(String(decoding: stored.body, as: UTF8.self))")
            #expect(stored.json["hasEmbedding"] as? Bool == true, "the engine embedded the intent")
        }
        // No word of this query is in any memory: only the vector side can find the password one.
        let query = "I lost my passphrase and cannot sign in"
        let found = try await h.send(.POST, "/api/memory/search", token: token, json: ["intent": query, "topK": 3])
        #expect(found.status == 200, "\(String(decoding: found.body, as: UTF8.self))")
        #expect(found.json["retriever"] as? String == "hybrid")
        #expect(found.json["embedded"] as? Bool == true)
        #expect(found.json["degraded"] == nil, "\(found.json["degraded"] ?? "")")
        let hits = try #require(found.json["hits"] as? [[String: Any]])
        let first = try #require(hits.first?["memory"] as? [String: Any])
        #expect(first["id"] as? String == "m-password", "\(hits)")

        let textOnly = try await h.send(.POST, "/api/memory/search", token: token, json: ["intent": query, "retriever": "fts"])
        #expect(textOnly.status == 200)
        #expect((textOnly.json["hits"] as? [Any])?.isEmpty == true, "full text alone finds nothing for this query")
        #expect(textOnly.json["embedded"] as? Bool == false, "a text-only retriever needs no query vector")
        await h.stop()
    }

    @Test func aFailingEngineRefusesTextOnlyStoresAndSearchGoesOnByText() async throws {
        let h = try await GatewayHarness.start(embeddings: .broken)
        let token = try await GatewayHarness.token()
        // Readiness names the capability the tier cannot serve.
        let ready = try await h.send(.GET, "/ready")
        #expect(ready.status == 503)
        #expect((ready.json["problems"] as? [String])?.contains { $0.contains("'embeddings'") && $0.contains("embed") } == true, "\(ready.json)")

        let refused = try await h.send(.POST, "/api/memory", token: token, json: ["id": "m1", "intent": "reset a password", "experience": "worked"])
        #expect(refused.status == 503)
        #expect((refused.json["message"] as? String)?.contains("'embed' is not loaded") == true, "\(refused.json)")
        // A wrong request is refused as such, before any embedding is attempted.
        let wrong = try await h.send(.POST, "/api/memory", token: token, json: ["id": "m1", "intent": "reset a password", "experience": " "])
        #expect(wrong.status == 400, "\(wrong.json)")
        #expect(try await h.send(.GET, "/api/memory/m1", token: token).status == 404, "nothing was stored")

        // A caller-supplied vector needs no engine.
        let vector = (0..<384).map { Double($0 % 7) / 7 }
        let stored = try await h.send(
            .POST, "/api/memory", token: token, json: ["id": "m2", "intent": "reset a password", "experience": "worked", "embedding": vector])
        #expect(stored.status == 201)

        let searched = try await h.send(.POST, "/api/memory/search", token: token, json: ["intent": "reset password"])
        #expect(searched.status == 200)
        #expect(searched.json["embedded"] as? Bool == false)
        #expect((searched.json["degraded"] as? String)?.contains("not embedded") == true, "\(searched.json)")
        let hits = try #require(searched.json["hits"] as? [[String: Any]])
        #expect((hits.first?["memory"] as? [String: Any])?["id"] as? String == "m2", "found by its text")
        await h.stop()
    }

    @Test func aTenantWithItsOwnVectorSizeIsToldAndSearchesByText() async throws {
        let h = try await GatewayHarness.start(embeddings: .local)
        let token = try await GatewayHarness.token(tenant: "own-vectors")
        let own = try await h.send(
            .POST, "/api/memory", token: token, json: ["id": "m1", "intent": "reset a password", "experience": "worked", "embedding": [1, 0, 0, 0]])
        #expect(own.status == 201)
        // The engine's 384 values do not fit beside the tenant's 4: refused, as a mistake to fix.
        let mixed = try await h.send(.POST, "/api/memory", token: token, json: ["id": "m2", "intent": "bake bread", "experience": "worked"])
        #expect(mixed.status == 400, "\(mixed.json)")
        #expect((mixed.json["message"] as? String)?.contains("same model") == true, "\(mixed.json)")
        // A text-only search still answers: the hybrid leaves out its vector source, and says why.
        let found = try await h.send(.POST, "/api/memory/search", token: token, json: ["intent": "reset a password"])
        #expect(found.status == 200, "\(found.json)")
        #expect((found.json["degraded"] as? String)?.contains("dimensions") == true, "\(found.json)")
        #expect(((found.json["hits"] as? [[String: Any]])?.first?["memory"] as? [String: Any])?["id"] as? String == "m1")
        await h.stop()
    }
}
