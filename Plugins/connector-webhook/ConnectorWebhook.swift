import Crypto
import Foundation
import OrionPluginABI
import OrionPluginSDK

/// `connector-webhook`: POSTs lifecycle events as JSON to one URL, signed with HMAC-SHA256.
///
/// Each request carries:
/// - `Orion-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`
///   (made again for every attempt, so a retry carries a fresh time);
/// - `Orion-Event` (the type) and `Orion-Delivery` (`<runId>:<type>:<sequence>`, or
///   `<tenant>:<type>:<sequence>:<timestampNs>` for events not about a run), the same for every
///   attempt of one event: receivers use it to drop duplicates.
///
/// A 2xx answer delivers the event. 408, 429, 5xx and failures to connect are retried with jittered
/// backoff (`Retry-After` honoured) up to `maxAttempts` attempts; then, or at once for any other
/// answer, the delivery fails and the host writes the event to the connector's dead-letter file
/// (`orion connectors replay` resends it).
final class ConnectorWebhook: OrionPlugin, ConnectorPlugin {
    /// - Configuration keys:
    ///   - `url` (string): where to POST. Without it, the environment variable named by `urlEnv`.
    ///   - `urlEnv` (string, default `ALERTS_WEBHOOK_URL`).
    ///   - `secret` (string): the HMAC key. Without it, the environment variable named by
    ///     `secretEnv`. Required: an unsigned webhook cannot be told from a forged one.
    ///   - `secretEnv` (string, default `ORION_WEBHOOK_SECRET`).
    ///   - `events` (list of event types, default `[run_completed, run_error]`; `["*"]` for all).
    ///   - `maxAttempts` (integer 1–20, default 5), `retryBaseMs` (default 500),
    ///     `maxRetryAfterSeconds` (default 60), `timeoutSeconds` (default 10, per attempt).
    ///   - `headers` (object of strings): sent with every request.
    struct Configuration: Decodable, Sendable {
        var url: String?
        var urlEnv: String?
        var secret: String?
        var secretEnv: String?
        var events: [String]?
        var maxAttempts: Int?
        var retryBaseMs: Int?
        var maxRetryAfterSeconds: Double?
        var timeoutSeconds: Double?
        var headers: [String: String]?
    }

    static let descriptor = PluginDescriptor(
        id: "connector-webhook", version: "1.0.0", capabilities: ["connectors"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{
            "url":{"type":"string","minLength":1},"urlEnv":{"type":"string","minLength":1},
            "secret":{"type":"string","minLength":1},"secretEnv":{"type":"string","minLength":1},
            "events":{"type":"array","items":{"type":"string","minLength":1}},
            "maxAttempts":{"type":"integer","minimum":1,"maximum":20},
            "retryBaseMs":{"type":"integer","minimum":1,"maximum":60000},
            "maxRetryAfterSeconds":{"type":"number","minimum":0,"maximum":3600},
            "timeoutSeconds":{"type":"number","minimum":0.01,"maximum":300},
            "headers":{"type":"object"}}}
            """,
        summary: "Lifecycle events POSTed as signed JSON to a webhook URL, with retries and dead letters")

    static let signatureHeader = "Orion-Signature"

    let host: PluginHost
    let url: String
    let key: SymmetricKey
    let events: Set<String>
    let retry: RetryPolicy
    let timeout: Duration
    let headers: [(name: String, value: String)]

    init(configuration c: Configuration, host: PluginHost) throws {
        let environment = ProcessInfo.processInfo.environment
        let urlEnv = c.urlEnv ?? "ALERTS_WEBHOOK_URL"
        guard let url = c.url ?? environment[urlEnv].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw PluginError(.config, "no webhook URL: set 'url' in the instance's config or the environment variable \(urlEnv)")
        }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
            throw PluginError(.config, "'url' must be an http or https URL, got '\(url)'")
        }
        let secretEnv = c.secretEnv ?? "ORION_WEBHOOK_SECRET"
        guard let secret = c.secret ?? environment[secretEnv].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw PluginError(.config, "no signing secret: set 'secret' in the instance's config or the environment variable \(secretEnv)")
        }
        self.host = host
        self.url = url
        key = SymmetricKey(data: Data(secret.utf8))
        events = Set(c.events ?? ["run_completed", "run_error"])
        let attempts = c.maxAttempts ?? 5
        retry = RetryPolicy(
            maxRetries: attempts - 1, baseDelay: .milliseconds(c.retryBaseMs ?? 500), maxDelay: .seconds(30),
            maxRetryAfter: .milliseconds(Int64((c.maxRetryAfterSeconds ?? 60) * 1000)))
        timeout = .milliseconds(Int64((c.timeoutSeconds ?? 10) * 1000))
        headers = (c.headers ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The signature header's value for `body` sent at `timestamp` (Unix seconds).
    static func signature(body: Data, timestamp: Int64, key: SymmetricKey) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return "t=\(timestamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// The JSON body for `event`.
    static func body(_ event: PluginEvent) throws -> Data {
        let payload = (try? JSONSerialization.jsonObject(with: event.payload)) ?? [String: Any]()
        return try JSONWriter.data([
            "type": event.type, "tenantId": event.tenantID, "workspaceId": event.workspaceID, "runId": event.runID,
            "sequence": event.sequence, "timestamp": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(event.timestampNanoseconds) / 1e9)),
            "payload": payload,
        ] as [String: Any])
    }

    func deliver(_ event: PluginEvent) async throws {
        guard events.contains("*") || events.contains(event.type) else { return }
        let body = try Self.body(event)
        // Run ids are unique; events not about a run are numbered per tenant from process start, so
        // their time makes the id unique across restarts.
        let delivery = event.runID.isEmpty
            ? "\(event.tenantID):\(event.type):\(event.sequence):\(event.timestampNanoseconds)" : "\(event.runID):\(event.type):\(event.sequence)"
        var attempt = 0
        while true {
            attempt += 1
            let now = host.nowNanoseconds() / 1_000_000_000
            var headers = self.headers
            headers += [
                ("Content-Type", "application/json"), ("Orion-Event", event.type), ("Orion-Delivery", delivery),
                (Self.signatureHeader, Self.signature(body: body, timestamp: now, key: key)),
            ]
            var failure: PluginError
            var retryAfter: String?
            var retryable = true
            do {
                let response = try await host.send(HTTPRequest(method: "POST", url: url, headers: headers, body: body, timeout: timeout))
                let text = (try? await response.collect(upTo: 16 << 10)) ?? Data()
                if (200..<300).contains(response.status) {
                    host.increment(counter: "webhook_deliveries_total")
                    return
                }
                retryAfter = response.header("Retry-After")
                let said = String(decoding: text.prefix(200), as: UTF8.self)
                failure = PluginError(.unavailable, "the webhook answered \(response.status)\(said.isEmpty ? "" : ": \(said)")")
                retryable = RetryPolicy.isRetryable(status: response.status)
            } catch let error as PluginError where error.code == .unavailable || error.code == .deadline {
                // Could not connect, or no answer in time: worth another attempt.
                failure = error
            }
            guard retryable else {
                host.increment(counter: "webhook_failures_total")
                throw failure
            }
            guard let wait = retry.delay(attempt: attempt, retryAfter: retryAfter) else {
                host.increment(counter: "webhook_failures_total")
                throw PluginError(.unavailable, "\(failure.message) (after \(attempt) attempt\(attempt == 1 ? "" : "s"))")
            }
            host.increment(counter: "webhook_retries_total")
            try await Task.sleep(for: wait)
        }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(ConnectorWebhook.self, host: host)
}
