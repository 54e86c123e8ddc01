import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import OrionCore
import OrionPluginSDK

/// A tenant's live lifecycle events: `GET /v1/events` (Server-Sent Events) and the WebSocket
/// `/v1/events/ws`, both with `events:read`.
///
/// Query: `runId` (one run's events only) and `types` (comma-separated event types). Each event is
/// sent as `event: <type>`, `id: <runId or tenant>:<sequence>`, `data: {…}` (SSE) or as one JSON text
/// frame (WebSocket). Events go out at most `events.subscriberEventsPerSecond` per second for one
/// tenant and user; faster ones wait in the client's queue (`events.subscriberQueueCapacity`). A
/// client that lets its queue fill is disconnected: SSE ends with `event: error` and code
/// `SUBSCRIBER_TOO_SLOW`, the WebSocket closes with code 1008 and the same reason. At graceful
/// shutdown every stream ends the same way with `SERVER_SHUTTING_DOWN` (WebSocket code 1001).
/// An SSE stream carries a `: keep-alive` comment every 15 seconds.
struct EventRoutes: Sendable {
    static let wsPath = "/v1/events/ws"
    let hub: EventHub
    let gate: UpgradeGate
    let limiter: EventLimiter
    let rbac: RuntimeConfig.RBAC
    let logger: Logger

    init(hub: EventHub, gate: UpgradeGate, eventsPerSecond: Int, rbac: RuntimeConfig.RBAC, logger: Logger) {
        self.hub = hub
        self.gate = gate
        limiter = EventLimiter(limit: eventsPerSecond, windowSeconds: 1)
        self.rbac = rbac
        self.logger = logger
    }

    func add(to router: Router<GatewayContext>) {
        router.get("v1/events") { request, context in try self.sse(request, context) }
        router.get("v1/events/ws") { request, context -> Response in
            try context.authorize("events:read", rbac)
            _ = try Self.filter(request.uri.query)
            throw GatewayError(.init(code: 426), code: "UPGRADE_REQUIRED", "\(Self.wsPath) is a WebSocket: connect with Upgrade: websocket", headers: [.upgrade: "websocket"])
        }
    }

    /// The filter a request asks for.
    static func filter(_ query: String?) throws -> EventFilter {
        var runID: String?
        var types: Set<String> = []
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            guard parts.count == 2, !parts[1].isEmpty else { continue }
            switch parts[0] {
            case "runId":
                guard parts[1].count <= 200 else { throw GatewayError.badRequest("runId must be at most 200 characters", field: "runId") }
                runID = parts[1]
            case "types":
                types = Set(parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
                guard types.count <= 32 else { throw GatewayError.badRequest("types may name at most 32 event types", field: "types") }
            default: continue
            }
        }
        return EventFilter(runID: runID, types: types)
    }

    func sse(_ request: Request, _ context: GatewayContext) throws -> Response {
        try context.authorize("events:read", rbac)
        let tenant = try context.requireTenant()
        let filter = try Self.filter(request.uri.query)
        let user = context.identity?.userID ?? "unknown"
        let subscription = hub.subscribers.subscribe(tenantID: tenant.tenant.id, filter: filter)
        let (limiter, key) = (self.limiter, "events:\(tenant.tenant.id):\(user)")
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                defer { subscription.cancel() }
                try await writer.write(ByteBuffer(string: ": subscribed to \(tenant.tenant.id)'s events\nretry: 2000\n\n"))
                for await event in subscription.events {
                    // Once ended by the server, the events still queued are not sent: the reason is, now.
                    if subscription.endReason != nil { break }
                    if event.isHeartbeat {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                        continue
                    }
                    try await Self.throttle(limiter, key)
                    var buffer = ByteBuffer(string: "event: \(event.type)\nid: \(event.runID.isEmpty ? event.tenantID : event.runID):\(event.sequence)\ndata: ")
                    buffer.writeBytes(event.encoded())
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
                if let reason = subscription.endReason {
                    let body = (try? JSONWriter.data(["code": subscription.endCode ?? "SUBSCRIBER_TOO_SLOW", "message": reason])) ?? Data()
                    var buffer = ByteBuffer(string: "event: error\ndata: ")
                    buffer.writeBytes(body)
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
                try await writer.finish(nil)
            })
    }

    /// Waits until the tenant and user may be sent one more event.
    static func throttle(_ limiter: EventLimiter, _ key: String) async throws {
        for _ in 0..<10_000 {
            guard let wait = limiter.acquire(key) else { return }
            try await Task.sleep(for: .milliseconds(max(1, wait)))
        }
    }

    /// Upgrades an authenticated request with `events:read` for ``wsPath``.
    func shouldUpgrade(_ request: HTTPRequest, _ channel: any Channel) async -> ShouldUpgradeResult<UpgradeGate.Handler> {
        guard let (identity, tenant) = await gate.admit(request, permission: "events:read"),
            let filter = try? Self.filter(request.path?.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init))
        else { return .dontUpgrade }
        let subscription = hub.subscribers.subscribe(tenantID: tenant.tenant.id, filter: filter)
        let (limiter, key) = (self.limiter, "events:\(tenant.tenant.id):\(identity.userID)")
        return .upgrade([:]) { inbound, outbound, _ in
            defer { subscription.cancel() }
            // The client's frames are read (and dropped) so a close from it ends the subscription.
            let reader = Task {
                for try await _ in inbound.messages(maxSize: 1 << 16) {}
                subscription.cancel()
            }
            defer { reader.cancel() }
            for await event in subscription.events {
                if subscription.endReason != nil { break }
                if event.isHeartbeat { continue }
                try await Self.throttle(limiter, key)
                try await outbound.write(.text(String(decoding: event.encoded(), as: UTF8.self)))
            }
            if let reason = subscription.endReason, let code = subscription.endCode {
                let closing: WebSocketErrorCode = code == "SUBSCRIBER_TOO_SLOW" ? .policyViolation : .goingAway
                try await outbound.close(closing, reason: String("\(code): \(reason)".utf8.prefix(120)) ?? code)
            }
        }
    }
}

/// Who may upgrade to a WebSocket: a verified bearer token whose roles grant the permission, and
/// its resolved tenant.
struct UpgradeGate: Sendable {
    typealias Handler = WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
    let verifier: TokenVerifier
    let resolver: TenantResolver
    let rbac: RuntimeConfig.RBAC

    func admit(_ request: HTTPRequest, permission: String) async -> (Identity, ResolvedTenant)? {
        guard let header = request.headerFields[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        guard let identity = try? await verifier.verify(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)),
            rbac.allows(identity.roles, permission)
        else { return nil }
        if let cached = resolver.cached(identity.tenantID) { return (identity, cached) }
        guard let resolved = try? await resolver.resolve(identity) else { return nil }
        return (identity, resolved)
    }

    /// The path of an upgrade request, without its query.
    static func path(_ request: HTTPRequest) -> String? {
        request.path?.split(separator: "?").first.map(String.init)
    }
}
