import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import OrionCore

/// The outermost middleware: turns every error into a JSON response, puts the security and CORS
/// headers on every response, answers CORS preflights, and measures and records each request
/// (duration histogram per route, method and status; violations by kind; the request record
/// the analytics endpoint reads).
struct ObservationMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let cors: Set<String>
    let telemetry: GatewayTelemetry
    let logger: Logger

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
        .strictTransportSecurity: "max-age=63072000; includeSubDomains",
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        .cacheControl: "no-store",
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        var violation: String?
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            response = preflight(request)
        } else {
            do {
                response = try await next(request, context)
            } catch let error as GatewayError {
                violation = error.violation
                response = try error.response(from: request, context: context)
            } catch let error as any HTTPResponseError {
                if error.status == .contentTooLarge { violation = "size" }
                response = try GatewayError(error.status, code: Self.code(for: error.status), Self.message(for: error.status, error))
                    .response(from: request, context: context)
            } catch {
                logger.error("request failed", metadata: ["orion.route": "\(context.route)", "orion.error": "\(error)"])
                response = try GatewayError(.internalServerError, code: "INTERNAL", "the server failed to answer; the error is logged")
                    .response(from: request, context: context)
            }
        }
        for field in Self.securityHeaders where response.headers[field.name] == nil { response.headers.append(field) }
        if let origin = request.headers[.origin], cors.contains(origin) || cors.contains("*") {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = "RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed"
            response.headers.append(HTTPField(name: .vary, value: "Origin"))
        }
        let seconds = (ContinuousClock.now - started).seconds
        telemetry.record(
            route: context.route, method: request.method.rawValue, status: Int(response.status.code), seconds: seconds,
            violation: violation, tenantID: context.note.tenantID, tier: context.note.tier)
        return response
    }

    func preflight(_ request: Request) -> Response {
        var headers: HTTPFields = [:]
        if let origin = request.headers[.origin], cors.contains(origin) || cors.contains("*") {
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowMethods] = "GET, POST, PUT, DELETE, OPTIONS"
            headers[.accessControlAllowHeaders] = "Authorization, Content-Type, Idempotency-Key"
            headers[.accessControlMaxAge] = "600"
            headers.append(HTTPField(name: .vary, value: "Origin"))
        }
        return Response(status: .noContent, headers: headers)
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "INVALID_REQUEST"
        case 404: "NOT_FOUND"
        case 405: "METHOD_NOT_ALLOWED"
        case 413: "BODY_TOO_LARGE"
        default: "HTTP_\(status.code)"
        }
    }

    static func message(for status: HTTPResponse.Status, _ error: any Error) -> String {
        switch status.code {
        case 404: "no such route"
        case 413: "the request body is larger than the server accepts (gateway.maxBodyBytes)"
        default: (error as? HTTPError)?.body ?? status.reasonPhrase
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
