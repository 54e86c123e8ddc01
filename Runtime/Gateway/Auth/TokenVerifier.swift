import Crypto
import Foundation
import JWTKit
import Logging
import OrionCore
import Synchronization

/// The claims Orion reads from a bearer token (and writes, in `orion token`).
public struct TokenClaims: JWTPayload {
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var nbf: NotBeforeClaim?
    public var iss: IssuerClaim?
    public var aud: AudienceClaim?
    public var tenant: String?
    public var roles: [String]?

    public init(
        sub: SubjectClaim, exp: ExpirationClaim, nbf: NotBeforeClaim? = nil, iss: IssuerClaim?, aud: AudienceClaim?, tenant: String?,
        roles: [String]?
    ) {
        self.sub = sub
        self.exp = exp
        self.nbf = nbf
        self.iss = iss
        self.aud = aud
        self.tenant = tenant
        self.roles = roles
    }

    // Expiry, not-before, issuer and audience are checked by TokenVerifier, with its leeway.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Why a token was refused; the message goes into the 401 body and `WWW-Authenticate`.
struct TokenRefusal: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Verifies bearer tokens: signature, algorithm, `exp`, `nbf`, `iss`, `aud`, and the claims
/// Orion needs (`sub`, `tenant`, `roles`).
///
/// Each configured key is kept in a collection of its own algorithm, and the token's `alg` header
/// only chooses among configured algorithms: `none` and anything not configured are refused before
/// any signature is checked, so an HS256 token made with an RSA public key as its secret is never
/// checked with HMAC.
public final class TokenVerifier: Sendable {
    let hmac: JWTKeyCollection?
    let pem: (alg: String, keys: JWTKeyCollection)?
    let jwks: JWTKeyCollection?
    let jwksAlgorithms: Set<String>
    let issuer: String
    let audience: String
    let leeway: TimeInterval
    let multiTenant: Bool

    /// The algorithms this verifier accepts.
    public var algorithms: Set<String> {
        var out = jwksAlgorithms
        if hmac != nil { out.insert("HS256") }
        if let pem { out.insert(pem.alg) }
        return out
    }

    /// Builds the verifier from `config`; `devSecret` is used when no key is configured (never in production).
    public init(config: RuntimeConfig, devSecret: String?) async throws {
        let auth = config.auth
        issuer = auth.issuer
        audience = auth.audience
        leeway = TimeInterval(auth.leewaySeconds)
        multiTenant = config.multiTenantEnabled
        if let secret = auth.hs256Secret ?? (auth.hasKey ? nil : devSecret) {
            hmac = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        } else {
            hmac = nil
        }
        if let file = auth.publicKeyFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw TokenRefusal(message: "auth.publicKeyFile: cannot read \(file)")
            }
            if let rsa = try? Insecure.RSA.PublicKey(pem: text) {
                pem = ("RS256", await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256))
            } else if let ec = try? ES256PublicKey(pem: text) {
                pem = ("ES256", await JWTKeyCollection().add(ecdsa: ec))
            } else {
                throw TokenRefusal(message: "auth.publicKeyFile: \(file) is not a PEM RSA or P-256 public key")
            }
        } else {
            pem = nil
        }
        if let file = auth.jwksFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw TokenRefusal(message: "auth.jwksFile: cannot read \(file)")
            }
            let set: JWKS
            do {
                set = try JSONDecoder().decode(JWKS.self, from: Data(text.utf8))
            } catch {
                throw TokenRefusal(message: "auth.jwksFile: \(file) is not a JWKS document: \(error)")
            }
            var algorithms = Set<String>()
            for key in set.keys {
                guard let alg = key.algorithm?.rawValue, ["RS256", "ES256"].contains(alg), key.keyIdentifier != nil else {
                    throw TokenRefusal(message: "auth.jwksFile: every key needs a 'kid' and an 'alg' of RS256 or ES256")
                }
                algorithms.insert(alg)
            }
            jwks = try await JWTKeyCollection().add(jwks: set)
            jwksAlgorithms = algorithms
        } else {
            jwks = nil
            jwksAlgorithms = []
        }
    }

    /// Tokens verified recently: token → identity and its validity interval. A client sends the
    /// same token many times; a hit skips parsing and the signature check, and `exp`/`nbf` are
    /// still checked against the clock on every use. Bounded; emptied when full.
    private let recent = Mutex<[String: (identity: Identity, notBefore: Date, expires: Date)]>([:])
    static let recentCapacity = 10_000

    /// The identity in `token`, or a refusal saying why.
    func verify(_ token: String, now: Date = Date()) async throws(TokenRefusal) -> Identity {
        if let hit = recent.withLock({ $0[token] }) {
            guard hit.expires > now else { throw TokenRefusal(message: "the token has expired") }
            guard hit.notBefore <= now else { throw TokenRefusal(message: "the token is not valid yet (nbf is in the future)") }
            return hit.identity
        }
        let (identity, notBefore, expires) = try await verifyFully(token, now: now)
        recent.withLock { recent in
            if recent.count >= Self.recentCapacity { recent.removeAll(keepingCapacity: true) }
            recent[token] = (identity, notBefore, expires)
        }
        return identity
    }

    /// Every check, from the token's bytes: the identity and the interval (leeway included) in
    /// which the token is valid.
    private func verifyFully(_ token: String, now: Date) async throws(TokenRefusal) -> (Identity, Date, Date) {
        let header = try Self.header(token)
        guard let alg = header["alg"] as? String, !alg.isEmpty, alg.lowercased() != "none" else {
            throw TokenRefusal(message: "unsigned tokens (alg none) are refused")
        }
        guard algorithms.contains(alg) else {
            throw TokenRefusal(message: "algorithm \(alg) is not accepted here; accepted: \(algorithms.sorted().joined(separator: ", "))")
        }
        let keys: JWTKeyCollection?
        switch alg {
        case "HS256": keys = hmac
        case pem?.alg where header["kid"] == nil || jwks == nil: keys = pem?.keys
        default:
            guard header["kid"] is String else { throw TokenRefusal(message: "a \(alg) token needs a 'kid' header naming a key of the JWKS") }
            keys = jwks
        }
        guard let keys else { throw TokenRefusal(message: "no key for algorithm \(alg)") }
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
        } catch let error as DecodingError {
            throw TokenRefusal(message: "the token's claims are incomplete: \(Self.describe(error))")
        } catch {
            throw TokenRefusal(message: "the token's signature does not verify")
        }
        guard claims.exp.value.addingTimeInterval(leeway) > now else { throw TokenRefusal(message: "the token has expired") }
        if let nbf = claims.nbf, nbf.value > now.addingTimeInterval(leeway) {
            throw TokenRefusal(message: "the token is not valid yet (nbf is in the future)")
        }
        guard claims.iss?.value == issuer else { throw TokenRefusal(message: "the token's issuer must be '\(issuer)'") }
        guard claims.aud?.value.contains(audience) == true else { throw TokenRefusal(message: "the token's audience must include '\(audience)'") }
        let user = claims.sub.value
        guard !user.isEmpty else { throw TokenRefusal(message: "the token's 'sub' claim is empty") }
        let tenant: String
        if multiTenant {
            guard let claimed = claims.tenant, !claimed.isEmpty else { throw TokenRefusal(message: "the token has no 'tenant' claim") }
            tenant = claimed
        } else {
            tenant = Self.personalTenant(of: user)
        }
        guard TenantStore.isValidID(tenant) else {
            throw TokenRefusal(message: "the token's tenant '\(tenant)' is not a valid tenant id (1 to 64 letters, digits, '-', '_', '.')")
        }
        let notBefore = claims.nbf.map { $0.value.addingTimeInterval(-leeway) } ?? .distantPast
        return (Identity(userID: user, tenantID: tenant, roles: claims.roles ?? []), notBefore, claims.exp.value.addingTimeInterval(leeway))
    }

    /// The personal tenant id of `user`.
    /// `user-` and the first 40 hex digits of SHA-256(`sub`): distinct users never share one, whatever
    /// characters or length their `sub` has.
    static func personalTenant(of user: String) -> String {
        "user-" + SHA256.hash(data: Data(user.utf8)).prefix(20).map { String(format: "%02x", $0) }.joined()
    }

    static func header(_ token: String) throws(TokenRefusal) -> [String: Any] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw TokenRefusal(message: "a bearer token must be a JWT: three base64url parts separated by dots") }
        var base64 = parts[0].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw TokenRefusal(message: "the token's header is not base64url JSON")
        }
        return object
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "claim '\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            "claim '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        @unknown default: "\(error)"
        }
    }

    /// The secret used in development when no key is configured: made once, kept (mode 0600) in
    /// `<dataDirectory>/jwt-dev-secret`.
    public static func developmentSecret(config: RuntimeConfig) throws -> String? {
        guard !config.auth.hasKey, config.environment != .production else { return nil }
        let path = (config.dataDirectory as NSString).appendingPathComponent("jwt-dev-secret")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), existing.utf8.count >= 32 {
            return existing.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let secret = bytes.map { String(format: "%02x", $0) }.joined()
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
        return secret
    }
}
