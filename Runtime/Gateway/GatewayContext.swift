import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrionCore

/// Who is calling, from a verified token.
public struct Identity: Sendable, Hashable {
    public var userID: String
    public var tenantID: String
    public var roles: [String]
}

/// The tenant a request acts for, resolved once per request (cached across requests).
public struct ResolvedTenant: Sendable, Hashable {
    public var tenant: Tenant
    public var tier: Tier
    /// The per-tenant workspace directory (created on first use).
    public var workspace: String
    public var namespace: String { tenant.namespace }
}

/// The request context every gateway route sees.
public struct GatewayContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address.
    public let remoteIP: String
    public var identity: Identity?
    public var tenant: ResolvedTenant?
    /// Facts inner middleware hands back to the outer ones (tenant, tier).
    let note = RequestNote()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// The route pattern (e.g. `/api/memory/{id}`), or `unmatched` — for metric labels and limiter keys.
    public var route: String { endpointPath ?? "unmatched" }

    /// The resolved tenant, for routes behind the tenant middleware.
    func requireTenant() throws -> ResolvedTenant {
        guard let tenant else { throw GatewayError(.unauthorized, code: "UNAUTHENTICATED", "this route needs a bearer token") }
        return tenant
    }
}

/// An error with its HTTP status and a stable machine-readable code; its response is JSON:
/// `{"code": …, "message": …, "field": …}` plus any extra fields (e.g. `retryAfterMs`).
public struct GatewayError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// The failing JSON field for 400s, as a JSON pointer (`/topK`).
    public var field: String?
    public var headers: HTTPFields
    public var extra: [String: Int64]
    /// Which `orion_violations_total` kind this is, if any.
    public var violation: String?
    /// Also carry OpenAI's `{"error": {"message", "type", "code"}}` (the `/v1` API's errors).
    public var openAIShape = false

    public init(
        _ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil, headers: HTTPFields = [:],
        extra: [String: Int64] = [:], violation: String? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
        self.extra = extra
        self.violation = violation
    }

    /// The JSON body.
    func body() throws -> Data {
        var object: [String: Any] = ["code": code, "message": message]
        if let field { object["field"] = field }
        for (key, value) in extra { object[key] = value }
        if openAIShape {
            let type = switch status.code {
            case 400, 404: "invalid_request_error"
            case 401: "authentication_error"
            case 402: "insufficient_quota"
            case 403: "permission_error"
            case 429: "rate_limit_error"
            default: "server_error"
            }
            object["error"] = ["message": message, "type": type, "code": code, "param": field.map { $0.isEmpty ? NSNull() as Any : String($0.dropFirst()) } ?? NSNull()]
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try body()
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension GatewayError {
    static func notFound(_ what: String) -> GatewayError { GatewayError(.notFound, code: "NOT_FOUND", what) }
    static func badRequest(_ message: String, field: String? = nil) -> GatewayError {
        GatewayError(.badRequest, code: "INVALID_REQUEST", message, field: field, violation: "schema")
    }
}
