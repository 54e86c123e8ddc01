import AsyncHTTPClient
import Foundation
import JWTKit
import _CryptoExtras
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import OrionCore
import OrionGateway
import OrionTestSupport
import Testing

/// The gateway over real HTTP on a loopback port.
@Suite struct GatewayTests {
    @Test func jwtNegativesAreRefusedWith401() async throws {
        let h = try await GatewayHarness.start()
        let now = Date()
        let cases: [(String, String)] = [
            ("expired", try await GatewayHarness.token { $0.exp = .init(value: now.addingTimeInterval(-120)) }),
            ("not valid yet", try await GatewayHarness.token { $0.nbf = .init(value: now.addingTimeInterval(600)) }),
            ("issuer", try await GatewayHarness.token { $0.iss = .init(value: "someone-else") }),
            ("audience", try await GatewayHarness.token { $0.aud = .init(value: ["other-api"]) }),
            ("signature", try await GatewayHarness.token(secret: "another-secret-of-at-least-32-bytes!")),
            ("tenant", try await GatewayHarness.token(tenant: nil)),
            ("alg none", Self.unsigned(["sub": "alice", "tenant": "acme", "roles": ["admin"], "iss": "orion", "aud": "orion-api", "exp": now.timeIntervalSince1970 + 600])),
            ("bearer token must be a JWT", "not-a-jwt"),
        ]
        for (says, token) in cases {
            let reply = try await h.send(.GET, "/api/memory/x", token: token)
            #expect(reply.status == 401, "\(says): \(reply.status)")
            #expect(reply.header("WWW-Authenticate")?.hasPrefix("Bearer realm=\"orion\"") == true)
            #expect((reply.json["message"] as? String)?.lowercased().contains(says.lowercased()) == true, "\(says): \(reply.json)")
        }
        let missing = try await h.send(.GET, "/api/memory/x")
        #expect(missing.status == 401)
        #expect(missing.json["code"] as? String == "UNAUTHENTICATED")
        let fine = try await h.send(.GET, "/api/memory/x", token: try await GatewayHarness.token())
        #expect(fine.status == 404, "a valid token reaches the route")
        await h.stop()
    }

    /// A key pair for `alg`, its public key as PEM, and a signer.
    static func keyPair(_ alg: String) async throws -> (pem: String, signer: JWTKeyCollection) {
        if alg == "RS256" {
            let key = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            return (try key.publicKey.pemRepresentation, await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256))
        }
        let key = ES256PrivateKey()
        return (key.publicKey.pemRepresentation, await JWTKeyCollection().add(ecdsa: key))
    }

    @Test(arguments: ["RS256", "ES256"])
    func anHS256TokenMadeWithThePublicKeyIsRefused(alg: String) async throws {
        let (pem, signer) = try await Self.keyPair(alg)
        let file = TestPluginsPath.temp("key.pem")
        try pem.write(toFile: file, atomically: true, encoding: .utf8)
        let h = try await GatewayHarness.start { config in
            config.auth.hs256Secret = nil
            config.auth.publicKeyFile = file
        }
        #expect(try await h.send(.GET, "/api/memory/x", token: try await signer.sign(Self.claims())).status == 404)
        // The classic confusion: HS256 with the public key's text as the HMAC secret.
        let forged = try await JWTKeyCollection().add(hmac: HMACKey(from: pem), digestAlgorithm: .sha256).sign(Self.claims())
        let reply = try await h.send(.GET, "/api/memory/x", token: forged)
        #expect(reply.status == 401)
        #expect((reply.json["message"] as? String)?.contains("HS256 is not accepted") == true, "\(reply.json)")
        await h.stop()
    }

    @Test func jwksKeysAreChosenByKid() async throws {
        let key = ES256PrivateKey()
        let parameters = try #require(key.publicKey.parameters)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"k1","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
        let file = TestPluginsPath.temp("jwks.json")
        try jwks.write(toFile: file, atomically: true, encoding: .utf8)
        let h = try await GatewayHarness.start { config in
            config.auth.hs256Secret = nil
            config.auth.jwksFile = file
        }
        let signer = await JWTKeyCollection().add(ecdsa: key, kid: "k1")
        #expect(try await h.send(.GET, "/api/memory/x", token: try await signer.sign(Self.claims(), kid: "k1")).status == 404)
        let other = await JWTKeyCollection().add(ecdsa: ES256PrivateKey(), kid: "k1")
        #expect(try await h.send(.GET, "/api/memory/x", token: try await other.sign(Self.claims(), kid: "k1")).status == 401, "another key under the same kid")
        let unnamed = await JWTKeyCollection().add(ecdsa: key)
        let reply = try await h.send(.GET, "/api/memory/x", token: try await unnamed.sign(Self.claims()))
        #expect(reply.status == 401)
        #expect((reply.json["message"] as? String)?.contains("kid") == true, "\(reply.json)")
        await h.stop()
    }

    @Test func errorPathsCarryTheirCodesAndHeaders() async throws {
        let h = try await GatewayHarness.start { $0.gateway.maxBodyBytes = 2048 }
        let member = try await GatewayHarness.token()
        let viewer = try await GatewayHarness.token(roles: ["viewer"])
        let unknownField = try await h.send(.POST, "/api/memory", token: member, json: ["intent": "a", "experience": "b", "colour": "red"])
        #expect(unknownField.status == 400)
        #expect(unknownField.json["field"] as? String == "/colour")
        let wrongType = try await h.send(.POST, "/api/memory/search", token: member, json: ["intent": "a", "topK": "ten"])
        #expect(wrongType.status == 400)
        #expect(wrongType.json["field"] as? String == "/topK")
        let missing = try await h.send(.POST, "/api/memory", token: member, json: ["intent": "a"])
        #expect(missing.json["field"] as? String == "/experience")
        let notJSON = try await h.send(.POST, "/api/memory", token: member, raw: Data("{oops".utf8))
        #expect(notJSON.status == 400)
        let forbidden = try await h.send(.POST, "/api/memory", token: viewer, json: ["intent": "a", "experience": "b"])
        #expect(forbidden.status == 403)
        #expect(forbidden.json["code"] as? String == "FORBIDDEN")
        #expect(try await h.send(.GET, "/api/admin/plugins", token: member).status == 403)
        #expect(try await h.send(.GET, "/api/memory/nope", token: member).status == 404)
        #expect(try await h.send(.GET, "/no/such/route", token: member).status == 404)
        let large = try await h.send(.POST, "/api/memory", token: member, json: ["intent": "a", "experience": String(repeating: "x", count: 5000)])
        #expect(large.status == 413)
        #expect(large.json["code"] as? String == "BODY_TOO_LARGE")
        // A tenant whose tier this deployment does not define: 503 with Retry-After.
        try await h.gateway.tenants.upsert(id: "gold-co", name: "Gold", tier: "gold")
        let unavailable = try await h.send(.GET, "/api/memory/x", token: try await GatewayHarness.token(tenant: "gold-co"))
        #expect(unavailable.status == 503)
        #expect(unavailable.header("Retry-After") != nil)
        // Every response carries the security headers and no Server version.
        for reply in [unknownField, forbidden, large, unavailable] {
            #expect(reply.header("X-Content-Type-Options") == "nosniff")
            #expect(reply.header("Strict-Transport-Security") != nil)
            #expect(reply.header("Content-Security-Policy") != nil)
            #expect(reply.header("Server") == nil)
        }
        let metrics = String(decoding: try await h.send(.GET, "/metrics").body, as: UTF8.self)
        for kind in ["schema", "rbac", "size"] { #expect(metrics.contains("orion_violations_total{kind=\"\(kind)\"}"), "\(kind)") }
        #expect(metrics.contains("orion_http_request_duration_seconds_bucket"))
        #expect(!metrics.contains("acme"), "labels never carry a tenant")
        await h.stop()
    }

    @Test func theNPlusFirstRequestIsRefusedWithTheRightRetryAfter() async throws {
        let h = try await GatewayHarness.start(rateLimit: 3)
        let token = try await GatewayHarness.token()
        let first = ContinuousClock.now
        for n in 0..<3 {
            let reply = try await h.send(.GET, "/api/memory/x", token: token)
            #expect(reply.status == 404)
            #expect(reply.header("RateLimit-Policy") == "\"http\";q=3;w=60")
            #expect(reply.header("RateLimit")?.hasPrefix("\"http\";r=\(2 - n);") == true, "\(reply.header("RateLimit") ?? "none")")
        }
        let refused = try await h.send(.GET, "/api/memory/x", token: token)
        #expect(refused.status == 429)
        #expect(refused.json["code"] as? String == "RATE_LIMITED")
        // GCRA at 3 per 60 s frees one request every 20 s, counted from the first admitted one.
        let elapsed = ContinuousClock.now - first
        let elapsedMs = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        let retryMs = try #require(refused.json["retryAfterMs"] as? Int)
        #expect((20_000 - elapsedMs - 50...20_000).contains(retryMs), "\(retryMs) after \(elapsedMs) ms")
        let retryAfter = try #require(refused.header("Retry-After").flatMap(Int.init))
        #expect(retryAfter == (retryMs + 999) / 1000, "Retry-After rounds retryAfterMs up to whole seconds")
        // Another route is another key.
        #expect(try await h.send(.GET, "/api/memory/x/y", token: token).status == 404)
        await h.stop()
    }

    @Test func theHourlyQuotaOfTheTierApplies() async throws {
        let h = try await GatewayHarness.start(quota: 2)
        let token = try await GatewayHarness.token()
        #expect(try await h.send(.GET, "/api/memory/a", token: token).status == 404)
        let second = try await h.send(.GET, "/api/memory/b", token: token)
        #expect(second.header("RateLimit-Policy")?.contains("\"quota\";q=2;w=3600") == true)
        let third = try await h.send(.GET, "/api/memory/c", token: token)
        #expect(third.status == 429)
        #expect((third.json["message"] as? String)?.contains("quota") == true)
        await h.stop()
    }

    @Test func tenantsNeverSeeEachOthersMemories() async throws {
        let h = try await GatewayHarness.start()
        let a = try await GatewayHarness.token(tenant: "tenant-a")
        let b = try await GatewayHarness.token(tenant: "tenant-b", user: "bob")
        let stored = try await h.send(.POST, "/api/memory", token: a, json: ["id": "m1", "intent": "rotate the vault keys", "experience": "used the cli"])
        #expect(stored.status == 201)
        #expect(try await h.send(.GET, "/api/memory/m1", token: b).status == 404)
        let search = try await h.send(.POST, "/api/memory/search", token: b, json: ["intent": "rotate the vault keys"])
        #expect((search.json["hits"] as? [Any])?.isEmpty == true)
        #expect(try await h.send(.POST, "/api/memory/feedback", token: b, json: ["runId": "r", "memoryIds": ["m1"], "outcome": "failure"]).status == 404)
        #expect(try await h.send(.DELETE, "/api/memory/m1", token: b).status == 404)
        let own = try await h.send(.GET, "/api/memory/m1", token: a)
        #expect(own.status == 200)
        #expect(own.json["utility"] as? Double == 0)
        let found = try await h.send(.POST, "/api/memory/search", token: a, json: ["intent": "rotate the vault keys"])
        #expect(((found.json["hits"] as? [[String: Any]])?.first?["memory"] as? [String: Any])?["id"] as? String == "m1")
        let feedback = try await h.send(.POST, "/api/memory/feedback", token: a, json: ["runId": "r", "memoryIds": ["m1"], "outcome": "success"])
        #expect(((feedback.json["results"] as? [[String: Any]])?.first?["utility"] as? Double).map { abs($0 - 0.1) < 1e-9 } == true)
        #expect(FileManager.default.fileExists(atPath: h.dir + "/workspaces/tenant-a"), "the workspace is made on first use")
        #expect(try await h.send(.DELETE, "/api/memory/m1", token: a).status == 204)
        await h.stop()
    }

    @Test func anIdempotencyKeyReplaysAndRefusesAnotherBody() async throws {
        let h = try await GatewayHarness.start()
        let token = try await GatewayHarness.token()
        let body = ["intent": "archive the ledger", "experience": "ran the job"]
        let first = try await h.send(.POST, "/api/memory", token: token, json: body, headers: [("Idempotency-Key", "k-1")])
        #expect(first.status == 201)
        let again = try await h.send(.POST, "/api/memory", token: token, json: body, headers: [("Idempotency-Key", "k-1")])
        #expect(again.status == 201)
        #expect(again.header("Idempotent-Replayed") == "true")
        #expect(again.json["id"] as? String == first.json["id"] as? String, "the same memory, not a second one")
        #expect(try h.app.documents.store.count(namespace: "tenant_acme") == 1)
        let other = try await h.send(.POST, "/api/memory", token: token, json: ["intent": "x", "experience": "y"], headers: [("Idempotency-Key", "k-1")])
        #expect(other.status == 409)
        #expect(other.json["code"] as? String == "IDEMPOTENCY_KEY_REUSED")
        await h.stop()
    }

    @Test func idempotencyKeysExpire() async throws {
        let h = try await GatewayHarness.start { $0.gateway.idempotencyTTLSeconds = 1 }
        let token = try await GatewayHarness.token()
        #expect(try await h.send(.POST, "/api/memory", token: token, json: ["intent": "a", "experience": "b"], headers: [("Idempotency-Key", "k")]).status == 201)
        try await Task.sleep(for: .milliseconds(1100))
        let later = try await h.send(.POST, "/api/memory", token: token, json: ["intent": "c", "experience": "d"], headers: [("Idempotency-Key", "k")])
        #expect(later.status == 201, "an expired key is free again")
        #expect(later.header("Idempotent-Replayed") == nil)
        await h.stop()
    }

    @Test func oneTenantAtItsInFlightLimitDoesNotBlockAnother() async throws {
        let h = try await GatewayHarness.start { $0.gateway.maxInFlightPerTenant = 1 }
        let busyTenant = try await GatewayHarness.token(tenant: "busy")
        let json = Data(#"{"intent":"slow","experience":"late"}"#.utf8)
        let client = h.client
        // A request whose body arrives slowly holds the tenant's one slot. Which request the server
        // sees first is up to the machine's load, so a round whose probe came first (and took the
        // slot) is finished and tried again, waiting longer (a bounded number of rounds).
        var held = false
        for round in 1...5 where !held {
            let (chunks, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
            var slow = HTTPClientRequest(url: h.base + "/api/memory")
            slow.method = .POST
            slow.headers.add(name: "Authorization", value: "Bearer \(busyTenant)")
            slow.body = .stream(chunks, length: .known(Int64(json.count)))
            let pending = Task { try await client.execute(slow, timeout: .seconds(30)) }
            feed.yield(ByteBuffer(bytes: Array(json.prefix(5))))
            try await Task.sleep(for: .milliseconds(300 * round))
            let refused = try await h.send(.GET, "/api/memory/x", token: busyTenant)
            held = refused.status == 503
            if held {
                #expect(refused.json["code"] as? String == "TENANT_OVERLOADED")
                #expect(refused.header("Retry-After") == "1")
                #expect(try await h.send(.GET, "/api/memory/x", token: try await GatewayHarness.token(tenant: "calm")).status == 404)
            }
            feed.yield(ByteBuffer(bytes: Array(json.dropFirst(5))))
            feed.finish()
            let status = try await pending.value.status
            if held { #expect(status == .created) }
        }
        #expect(held, "the slow request never held the slot before the probe")
        #expect(try await h.send(.GET, "/api/memory/x", token: busyTenant).status == 404, "the slot is free again")
        await h.stop()
    }

    @Test func overloadIs503AndShutdownFinishesInFlightRequests() async throws {
        let h = try await GatewayHarness.start { $0.gateway.maxInFlight = 1 }
        let token = try await GatewayHarness.token()
        let json = Data(#"{"intent":"slow upload","experience":"arrived late"}"#.utf8)
        let client = h.client
        // A request whose body arrives slowly stays in flight. Whether the server has its head
        // before the probe is up to the machine's load, so a round whose probe came first is
        // finished and tried again, waiting longer (a bounded number of rounds).
        var held = false
        for round in 1...5 where !held {
            let (chunks, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
            var slow = HTTPClientRequest(url: h.base + "/api/memory")
            slow.method = .POST
            slow.headers.add(name: "Authorization", value: "Bearer \(token)")
            slow.headers.add(name: "Content-Type", value: "application/json")
            slow.body = .stream(chunks, length: .known(Int64(json.count)))
            let pending = Task { try await client.execute(slow, timeout: .seconds(30)) }
            feed.yield(ByteBuffer(bytes: Array(json.prefix(10))))
            try await Task.sleep(for: .milliseconds(300 * round))
            let busy = try await h.send(.GET, "/health")
            held = busy.status == 503
            var stopping: Task<Void, Never>?
            if held {
                #expect(busy.header("Retry-After") == "1")
                // Shut down while the slow request is in flight: it still completes.
                stopping = Task { await h.group.triggerGracefulShutdown() }
                try await Task.sleep(for: .milliseconds(200))
            }
            feed.yield(ByteBuffer(bytes: Array(json.dropFirst(10))))
            feed.finish()
            let response = try await pending.value
            if held { #expect(response.status == .created) }
            await stopping?.value
        }
        #expect(held, "the slow request never held the only slot before the probe")
        await h.stop()
    }

    static func claims() -> TokenClaims {
        TokenClaims(
            sub: .init(value: "alice"), exp: .init(value: Date().addingTimeInterval(600)), nbf: nil, iss: .init(value: "orion"),
            aud: .init(value: ["orion-api"]), tenant: "acme", roles: ["member"])
    }

    static func unsigned(_ payload: [String: Any]) -> String {
        func encode(_ object: Any) -> String {
            // Test input: these objects always serialise.
            let data = try! JSONSerialization.data(withJSONObject: object)
            return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        return encode(["alg": "none", "typ": "JWT"]) + "." + encode(payload) + "."
    }
}

enum TestPluginsPath {
    static func temp(_ name: String) -> String {
        (TestPlugins.scratchRoot as NSString).appendingPathComponent("\(UUID().uuidString)-\(name)")
    }
}
