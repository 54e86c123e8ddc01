import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrionCore
import OrionPluginHost

/// Reads request bodies up to `maxBytes` (413 above it, refused from `Content-Length` before
/// reading when the client announces it).
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let maxBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard [.post, .put, .patch].contains(request.method) else { return try await next(request, context) }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes { throw Self.tooLarge(maxBytes) }
        var request = request
        do {
            _ = try await request.collectBody(upTo: maxBytes)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge(maxBytes)
        }
        return try await next(request, context)
    }

    static func tooLarge(_ max: Int) -> GatewayError {
        GatewayError(.contentTooLarge, code: "BODY_TOO_LARGE", "the request body is larger than \(max) bytes (gateway.maxBodyBytes)", violation: "size")
    }
}

/// `Idempotency-Key` on POST: the first response (below 500) is stored per tenant, user and key and
/// replayed with `Idempotent-Replayed: true`; the same key with another method, path or body is
/// 409, as is a key whose first request is still running. Keys expire after
/// `gateway.idempotencyTtlSeconds`.
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = GatewayContext

    /// A JSON body with its keys sorted (a retry that orders keys differently is the same
    /// request); any other body as it is.
    static func canonical(_ body: Data) -> Data {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: body) else { return body }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(value)) ?? body
    }
    let store: any IdempotencyStore
    static let header = HTTPField.Name("Idempotency-Key")!
    static let replayed = HTTPField.Name("Idempotent-Replayed")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, let key = request.headers[Self.header], let tenant = context.tenant, let identity = context.identity else {
            return try await next(request, context)
        }
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7E }) else {
            throw GatewayError.badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters", field: "Idempotency-Key")
        }
        var request = request
        let body = try await request.collectBody(upTo: .max)
        var hasher = SHA256()
        hasher.update(data: Data("\(request.method.rawValue) \(request.uri.path)\n".utf8))
        hasher.update(data: Self.canonical(Data(body.readableBytesView)))
        let fingerprint = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        // Keys belong to one user of one tenant: another user's key never replays a response.
        let scope = tenant.tenant.id, scopedKey = "\(identity.userID)|\(key)"
        let store = self.store
        switch try await store.claim(tenant: scope, key: scopedKey, fingerprint: fingerprint) {
        case .mismatch:
            throw GatewayError(.conflict, code: "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request; use a new key")
        case .inProgress:
            throw GatewayError(
                .conflict, code: "IDEMPOTENCY_IN_PROGRESS", "the first request with this Idempotency-Key is still running",
                headers: [.retryAfter: "1"])
        case .replay(let status, let contentType, let stored):
            var headers: HTTPFields = [Self.replayed: "true"]
            if let contentType { headers[.contentType] = contentType }
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: stored)))
        case .claimed:
            do {
                let response = try await next(request, context)
                let code = Int(response.status.code), contentType = response.headers[.contentType], body = context.note.body ?? Data()
                try await store.complete(tenant: scope, key: scopedKey, status: code, contentType: contentType, body: body)
                return response
            } catch let error as GatewayError {
                let body = try error.body(), code = Int(error.status.code)
                try await store.complete(tenant: scope, key: scopedKey, status: code, contentType: "application/json", body: body)
                throw error
            } catch {
                try? await store.complete(tenant: scope, key: scopedKey, status: 500, contentType: nil, body: Data())
                throw error
            }
        }
    }
}
