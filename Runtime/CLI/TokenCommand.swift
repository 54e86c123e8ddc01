import ArgumentParser
import Foundation
import JWTKit
import OrionCore
import OrionGateway

/// `orion token`: mints an HS256 bearer token with the deployment's secret (`auth.hs256Secret`,
/// or the development secret in the data directory), for operators and local tries.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Mint an HS256 bearer token signed with the configured (or development) secret.")

    @Option(help: "The tenant id (the 'tenant' claim).") var tenant = "default"
    @Option(help: "The user id (the 'sub' claim).") var user = "operator"
    @Option(help: "Comma-separated roles, e.g. member,analyst (see rbac.roles).") var roles = "member"
    @Option(help: "Lifetime in seconds.") var ttl = 3600
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        guard ttl >= 1 else { throw ValidationError("--ttl must be at least 1 second") }
        guard TenantStore.isValidID(tenant) else { throw ValidationError("--tenant must be 1 to 64 letters, digits, '-', '_' or '.'") }
    }

    func run() async throws {
        let config = try options.loadConfig()
        guard let secret = try config.auth.hs256Secret ?? TokenVerifier.developmentSecret(config: config) else {
            throw ValidationError("this deployment verifies RS256/ES256 tokens from your identity provider; 'orion token' mints HS256 only (set auth.hs256Secret)")
        }
        let claims = TokenClaims(
            sub: .init(value: user), exp: .init(value: Date().addingTimeInterval(TimeInterval(ttl))), iss: .init(value: config.auth.issuer),
            aud: .init(value: [config.auth.audience]), tenant: tenant,
            roles: roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        print(try await keys.sign(claims))
    }
}
