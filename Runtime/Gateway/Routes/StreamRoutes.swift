import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import OrionCore
import OrionPluginSDK
import Synchronization

/// WebSocket `/v1/stream`: streamed chat over one connection. The upgrade needs a bearer token
/// with `chat:create` (a refused upgrade falls through to the HTTP route, which answers 401/403 or
/// 426). Frames are JSON text:
///
/// - in: `{"type":"chat","id":"c1","model":"gpt-4o-mini","messages":[…],"session":"s1"}` (any
///   chat completion field), `{"type":"ping"}`;
/// - out: `{"type":"chunk","id":"c1","chunk":{chat.completion.chunk}}` per chunk, then
///   `{"type":"done","id":"c1","engine":…,"model":…,"usage":{…},"costNanoUsd":…}`, or
///   `{"type":"error","id":"c1","code":…,"message":…}`; `{"type":"pong"}`.
///
/// Each event is rate limited with key `ws:<tenant>:<user>:<ip>:<event type>`
/// (`gateway.streamEventLimit` per `gateway.streamEventWindowSeconds`); a refused event gets an
/// error frame with `code: RATE_LIMITED` and `retryAfterMs`. Chats on one connection run one at a time.
struct StreamRoutes: Sendable {
    static let path = "/v1/stream"
    let engines: ChatEngines
    let gate: UpgradeGate
    let limiter: EventLimiter
    let logger: Logger
    var rbac: RuntimeConfig.RBAC { gate.rbac }

    typealias Handler = UpgradeGate.Handler

    /// The plain HTTP route: reached by a request that is not an acceptable upgrade.
    func add(to router: Router<GatewayContext>) {
        router.get("v1/stream") { _, context -> Response in
            try context.authorize("chat:create", rbac)
            throw GatewayError(.init(code: 426), code: "UPGRADE_REQUIRED", "/v1/stream is a WebSocket: connect with Upgrade: websocket", headers: [.upgrade: "websocket"])
        }
    }

    /// Upgrades an authenticated, authorised request for `/v1/stream`.
    func shouldUpgrade(_ request: HTTPRequest, _ channel: any Channel) async -> ShouldUpgradeResult<Handler> {
        guard let (identity, tenant) = await gate.admit(request, permission: "chat:create") else { return .dontUpgrade }
        let ip = channel.remoteAddress?.ipAddress ?? "unknown"
        return .upgrade([:]) { inbound, outbound, _ in
            try await self.serve(inbound: inbound, outbound: outbound, identity: identity, tenant: tenant, ip: ip)
        }
    }

    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, identity: Identity, tenant: ResolvedTenant, ip: String) async throws {
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message,
                var event = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
            else {
                try await send(outbound, ["type": "error", "code": "INVALID_REQUEST", "message": "send JSON objects as text frames"])
                continue
            }
            let type = event.removeValue(forKey: "type") as? String ?? ""
            let id = event.removeValue(forKey: "id") as? String ?? ""
            let key = "ws:\(tenant.tenant.id):\(identity.userID):\(ip):\(type.prefix(32))"
            if let wait = limiter.acquire(key) {
                try await send(outbound, [
                    "type": "error", "id": id, "code": "RATE_LIMITED", "retryAfterMs": wait,
                    "message": "more than \(limiter.limit) '\(type)' events in \(limiter.window); retry in \(wait) ms",
                ])
                continue
            }
            switch type {
            case "ping": try await send(outbound, ["type": "pong", "id": id])
            case "chat": try await chat(event, id: id, outbound: outbound, identity: identity, tenant: tenant)
            default:
                try await send(outbound, ["type": "error", "id": id, "code": "INVALID_REQUEST", "message": "unknown event type '\(type)'; send chat or ping"])
            }
        }
    }

    func chat(_ event: [String: Any], id: String, outbound: WebSocketOutboundWriter, identity: Identity, tenant: ResolvedTenant) async throws {
        var object = event
        let session = object.removeValue(forKey: "session") as? String
        object["stream"] = nil
        let payload: ChatPayload
        do {
            payload = try ChatPayload(json: try JSONWriter.data(object))
        } catch {
            return try await send(outbound, ["type": "error", "id": id, "code": "INVALID_REQUEST", "message": "\(error)"])
        }
        let requestID = UUID().uuidString.lowercased()
        let account = EngineAccount(
            tier: tenant.tier.name, tenant: tenant.tenant.id, user: identity.userID, session: session ?? "request-\(requestID)",
            requestID: requestID, isSingleCallSession: session == nil, tenantCapUSD: tenant.tenant.costCapUSD)
        let (chunks, sink) = AsyncStream<Data>.makeStream()
        let stopped = Atomic(false)
        sink.onTermination = { _ in stopped.store(true, ordering: .relaxed) }
        let engines = self.engines
        let call = Task { () -> Result<EngineAnswer, EngineError> in
            defer { sink.finish() }
            do throws(EngineError) {
                return .success(try await engines.stream(payload, for: account) { chunk in
                    if case .terminated = sink.yield(chunk) { return false }
                    return !stopped.load(ordering: .relaxed)
                })
            } catch {
                return .failure(error)
            }
        }
        let prefix = Data(#"{"type":"chunk","id":"#.utf8) + ((try? JSONWriter.data(id)) ?? Data("\"\"".utf8)) + Data(#","chunk":"#.utf8)
        do {
            for await chunk in chunks {
                try await outbound.write(.text(String(decoding: prefix + chunk + Data("}".utf8), as: UTF8.self)))
            }
        } catch {
            stopped.store(true, ordering: .relaxed)
            throw error
        }
        switch await call.value {
        case .success(let answer):
            var done: [String: Any] = [
                "type": "done", "id": id, "engine": answer.engine, "model": answer.model,
                "usage": (try? JSONSerialization.jsonObject(with: answer.body)) ?? [:],
            ]
            if let nano = answer.cost.nanoUSD { done["costNanoUsd"] = nano }
            try await send(outbound, done)
        case .failure(let error):
            let mapped = OpenAIRoutes.plainError(error)
            try await send(outbound, ["type": "error", "id": id, "code": mapped.code, "message": mapped.message])
        }
    }

    func send(_ outbound: WebSocketOutboundWriter, _ object: [String: Any]) async throws {
        try await outbound.write(.text(String(decoding: try JSONWriter.data(object), as: UTF8.self)))
    }
}

/// Per-key token buckets: `limit` events per `window`, refilled continuously. Keys idle for a
/// whole window are dropped when the table grows past 100,000.
final class EventLimiter: Sendable {
    let limit: Int
    let window: Duration
    private let buckets = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])

    init(limit: Int, windowSeconds: Double) {
        self.limit = limit
        self.window = .milliseconds(Int64(windowSeconds * 1000))
    }

    /// Nil when the event is admitted; otherwise the milliseconds until it would be.
    func acquire(_ key: String, now: ContinuousClock.Instant = .now) -> Int64? {
        let perSecond = Double(limit) / (Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18)
        return buckets.withLock { all in
            var bucket = all[key] ?? (Double(limit), now)
            let elapsed = now - bucket.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(Double(limit), bucket.tokens + seconds * perSecond)
            bucket.at = now
            defer {
                all[key] = bucket
                if all.count > 100_000 { all = all.filter { now - $0.value.at < window } }
            }
            guard bucket.tokens >= 1 else { return Int64(((1 - bucket.tokens) / perSecond * 1000).rounded(.up)) }
            bucket.tokens -= 1
            return nil
        }
    }
}
