import Foundation
import JWTKit
import OrionCore
@testable import OrionGateway
import Testing

/// The verifier's cache of recently verified tokens never outlives a token's validity.
@Suite struct TokenVerifierTests {
    @Test func aCachedTokenStillExpires() async throws {
        var config = RuntimeConfig()
        config.auth.hs256Secret = GatewayHarness.secret
        config.auth.leewaySeconds = 0
        let verifier = try await TokenVerifier(config: config, devSecret: nil)
        let now = Date()
        let token = try await GatewayHarness.token { $0.exp = .init(value: now.addingTimeInterval(60)) }
        #expect(try await verifier.verify(token, now: now).tenantID == "acme")
        #expect(try await verifier.verify(token, now: now.addingTimeInterval(30)).userID == "alice", "a cache hit")
        await #expect(throws: TokenRefusal.self, "the same token after its exp") {
            try await verifier.verify(token, now: now.addingTimeInterval(61))
        }
        let later = try await GatewayHarness.token { $0.nbf = .init(value: now.addingTimeInterval(100)) }
        await #expect(throws: TokenRefusal.self) { try await verifier.verify(later, now: now) }
        #expect(try await verifier.verify(later, now: now.addingTimeInterval(101)).tenantID == "acme", "refusals are not cached")
    }
}
