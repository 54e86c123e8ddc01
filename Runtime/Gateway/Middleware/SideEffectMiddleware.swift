import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrionCore

/// Publishes a `side_effect` event for every request that changed something or spent money: a POST,
/// PUT, PATCH or DELETE answered below 400 (chats and tool calls included), except the routes that
/// only read. The event says who (the user), what (method and route), for which tenant, when, and
/// the SHA-256 of the change (the request body) — what `connector-audit` chains. Each one is also
/// an entry of the audit trail in the shared store (`GET /api/audit`).
struct SideEffectMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let events: EventHub
    let audit: AuditTrail
    let node: String
    /// POST routes that only read.
    static let reads: Set<String> = ["/api/memory/search"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard [.post, .put, .patch, .delete].contains(request.method), let tenant = context.tenant, !Self.reads.contains(context.route) else {
            return try await next(request, context)
        }
        var request = request
        // The body is already read (and bounded) by the body middleware for POST, PUT and PATCH.
        let body = request.method == .delete ? ByteBuffer() : try await request.collectBody(upTo: .max)
        let response = try await next(request, context)
        guard response.status.code < 400 else { return response }
        let digest = "sha256:" + Self.hex(SHA256.hash(data: Data(body.readableBytesView)))
        let actor = context.identity?.userID ?? "unknown", action = "\(request.method.rawValue) \(context.route)", status = Int(response.status.code)
        audit.record(AuditEntry(
            at: Int64(Date().timeIntervalSince1970 * 1000), tenant: tenant.tenant.id, actor: actor, action: action, path: request.uri.path,
            status: status, digest: digest, node: node))
        guard events.isObserved(tenantID: tenant.tenant.id, tier: tenant.tier.name) else { return response }
        events.publish(
            .sideEffect, tenantID: tenant.tenant.id, tier: tenant.tier.name,
            payload: ["actor": actor, "action": action, "path": request.uri.path, "status": status, "digest": digest])
        return response
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
