import Foundation

/// When to try an upstream call again: on 429 and 5xx, after a jittered exponential backoff, or
/// after the upstream's own `Retry-After` when it sends one.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts after the first.
    public var maxRetries: Int
    /// The first backoff; each next one doubles, capped at ``maxDelay``. The wait is drawn
    /// uniformly from [backoff/2, backoff] so clients that failed together do not retry together.
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// A `Retry-After` longer than this is not waited for: the call fails at once instead.
    public var maxRetryAfter: Duration

    public init(maxRetries: Int = 2, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5), maxRetryAfter: Duration = .seconds(20)) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// The policy from an engine's usual configuration keys (`retries`, `retryBaseMs`,
    /// `maxRetryAfterSeconds`), each defaulting to 2, 250 ms and 20 s.
    public init(retries: Int?, baseMs: Int?, maxRetryAfterSeconds: Double?) {
        self.init(
            maxRetries: retries ?? 2, baseDelay: .milliseconds(baseMs ?? 250),
            maxRetryAfter: .milliseconds(Int64((maxRetryAfterSeconds ?? 20) * 1000)))
    }

    /// True for the statuses worth another attempt.
    public static func isRetryable(status: Int) -> Bool { status == 429 || status == 408 || (500...599).contains(status) }

    /// The wait before retry number `attempt` (1 for the first retry), or nil to give up.
    /// `retryAfter` is the response's header, in seconds or as an HTTP date.
    public func delay(attempt: Int, retryAfter: String?, now: Date = Date(), random: Double = Double.random(in: 0...1)) -> Duration? {
        guard attempt <= maxRetries else { return nil }
        if let retryAfter, let wait = Self.parseRetryAfter(retryAfter, now: now) {
            return wait <= maxRetryAfter ? wait : nil
        }
        let doubled = baseDelay * (1 << min(attempt - 1, 20))
        let backoff = min(doubled, maxDelay)
        return backoff * (0.5 + 0.5 * min(max(random, 0), 1))
    }

    /// `Retry-After` as a wait: delta-seconds or an IMF-fixdate (RFC 9110 §10.2.3).
    public static func parseRetryAfter(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(text), seconds >= 0, seconds.isFinite {
            // A day at most: anything longer is "not now" all the same, and stays in range.
            return .milliseconds(Int64(min(seconds, 86_400) * 1000))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .milliseconds(Int64(min(max(0, date.timeIntervalSince(now)), 86_400) * 1000))
    }
}

/// One server-sent event (`text/event-stream`).
public struct ServerSentEvent: Sendable, Hashable {
    /// The `event:` field; `message` when absent.
    public var event: String
    /// The `data:` lines joined by newlines.
    public var data: String

    public init(event: String = "message", data: String) {
        self.event = event
        self.data = data
    }
}

/// Incremental parser for `text/event-stream` bodies: feed it chunks as they arrive, in any
/// split, and take the events each completes.
public struct ServerSentEventParser: Sendable {
    private var buffer: [UInt8] = []
    private var event = ""
    private var data: [String] = []
    private var hasData = false

    public init() {}

    /// The events completed by `chunk`.
    public mutating func feed(_ chunk: Data) -> [ServerSentEvent] {
        buffer.append(contentsOf: chunk)
        var events: [ServerSentEvent] = []
        var start = 0
        var index = 0
        while index < buffer.count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                // A CR at the end of the buffer may be half of a CRLF: wait for more.
                if byte == UInt8(ascii: "\r") && index + 1 == buffer.count { break }
                let line = String(decoding: buffer[start..<index], as: UTF8.self)
                if byte == UInt8(ascii: "\r") && buffer[index + 1] == UInt8(ascii: "\n") { index += 1 }
                index += 1
                start = index
                if let event = process(line) { events.append(event) }
            } else {
                index += 1
            }
        }
        buffer.removeFirst(start)
        return events
    }

    /// The end of the stream: an event not closed by a blank line is discarded, as the standard says.
    public var hasPartialEvent: Bool { hasData || !buffer.isEmpty }

    private mutating func process(_ line: String) -> ServerSentEvent? {
        if line.isEmpty {
            defer {
                event = ""
                data = []
                hasData = false
            }
            guard hasData else { return nil }
            return ServerSentEvent(event: event.isEmpty ? "message" : event, data: data.joined(separator: "\n"))
        }
        if line.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = Substring(line)
            value = ""
        }
        switch field {
        case "event": event = String(value)
        case "data":
            data.append(String(value))
            hasData = true
        default: break
        }
        return nil
    }
}

/// A JSON API behind the host's HTTP callout, for engine plugins: fixed headers, retries by a
/// ``RetryPolicy``, and upstream failures turned into ``PluginError``s that say what to fix.
public struct UpstreamClient: Sendable {
    public let host: PluginHost
    public let baseURL: String
    public let headers: [(name: String, value: String)]
    public let timeout: Duration?
    public let retry: RetryPolicy
    /// Where the credentials come from, named in the message of a 401 or 403.
    public let keyHint: String

    public init(
        host: PluginHost, baseURL: String, headers: [(name: String, value: String)], timeout: Duration?, retry: RetryPolicy, keyHint: String
    ) {
        self.host = host
        self.baseURL = baseURL
        self.headers = headers
        self.timeout = timeout
        self.retry = retry
        self.keyHint = keyHint
    }

    /// POSTs `json` to `baseURL + path` and returns the first 2xx response, its body unread.
    /// Retries 408, 429 and 5xx answers (and failures to connect) by the policy; counts each retry
    /// in the plugin metric `upstream_retries_total`.
    public func post(_ path: String, json: Any) async throws -> HTTPResponse {
        let body = try JSONWriter.data(json)
        let request = HTTPRequest(method: "POST", url: baseURL + path, headers: headers, body: body, timeout: timeout)
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPResponse
            do {
                response = try await host.send(request)
            } catch let error as PluginError where error.code == .unavailable {
                guard let wait = retry.delay(attempt: attempt, retryAfter: nil) else { throw error }
                try await pause(wait)
                continue
            }
            if (200..<300).contains(response.status) { return response }
            let text = (try? await response.collect(upTo: 64 << 10)) ?? Data()
            if RetryPolicy.isRetryable(status: response.status), let wait = retry.delay(attempt: attempt, retryAfter: response.header("Retry-After")) {
                try await pause(wait)
                continue
            }
            throw failure(status: response.status, body: text, retryAfter: response.header("Retry-After"))
        }
    }

    private func pause(_ wait: Duration) async throws {
        host.increment(counter: "upstream_retries_total")
        try await Task.sleep(for: wait)
    }

    /// The error for a final non-2xx answer.
    public func failure(status: Int, body: Data, retryAfter: String?) -> PluginError {
        let detail = (try? JSONSerialization.jsonObject(with: body) as? [String: Any]).flatMap { $0["error"] }.map(Self.describe)
            ?? String(decoding: body.prefix(300), as: UTF8.self)
        let said = detail.isEmpty ? "" : ": \(detail)"
        switch status {
        case 401, 403:
            return PluginError(.config, "the upstream refused the credentials (\(status))\(said); check \(keyHint)")
        case 429:
            let wait = retryAfter.map { " (Retry-After: \($0))" } ?? ""
            return PluginError(.resourceExhausted, "the upstream is rate limiting (429)\(wait)\(said)")
        case 400, 404, 409, 413, 422:
            return PluginError(.invalidArgument, "the upstream refused the request (\(status))\(said)")
        case 408, 504:
            return PluginError(.deadline, "the upstream timed out (\(status))\(said)")
        default:
            return PluginError(.unavailable, "the upstream failed (\(status))\(said)")
        }
    }

    /// An error member as text: its `message` (and `type`) when it has them.
    public static func describe(_ error: Any) -> String {
        if let object = error as? [String: Any] {
            let message = object["message"] as? String ?? ""
            let type = object["type"] as? String ?? ""
            return [type, message].filter { !$0.isEmpty }.joined(separator: ": ")
        }
        return error as? String ?? "\(error)"
    }
}

/// The configuration keys every HTTP engine shares: `baseUrl`, `apiKey`, `apiKeyEnv`, `headers`,
/// `timeoutSeconds`, `retries`, `retryBaseMs`, `maxRetryAfterSeconds`. Decode it from the same
/// decoder as the plugin's own configuration (`try UpstreamSettings(from: decoder)`).
public struct UpstreamSettings: Decodable, Sendable {
    public var baseUrl: String?
    public var apiKey: String?
    public var apiKeyEnv: String?
    public var headers: [String: String]?
    public var timeoutSeconds: Double?
    public var retries: Int?
    public var retryBaseMs: Int?
    public var maxRetryAfterSeconds: Double?

    /// The JSON Schema properties of these keys, for a plugin's `configSchema`.
    public static let schemaProperties = """
        "baseUrl":{"type":"string","minLength":1},
        "apiKey":{"type":"string","minLength":1},
        "apiKeyEnv":{"type":"string","minLength":1},
        "headers":{"type":"object"},
        "timeoutSeconds":{"type":"number","minimum":0.1,"maximum":3600},
        "retries":{"type":"integer","minimum":0,"maximum":10},
        "retryBaseMs":{"type":"integer","minimum":1,"maximum":60000},
        "maxRetryAfterSeconds":{"type":"number","minimum":0,"maximum":3600}
        """
}

extension UpstreamClient {
    /// A client from the shared engine keys. `baseUrl` defaults to `defaultBaseURL` (a trailing
    /// `/` dropped); the key is `apiKey`, else the environment variable `apiKeyEnv` (default
    /// `defaultKeyVariable`), sent by `credential` (no key sends nothing); `headers` may not set the
    /// credential's header.
    public init(
        host: PluginHost, settings: UpstreamSettings, defaultBaseURL: String, defaultKeyVariable: String,
        credential: (String) -> (name: String, value: String), fixedHeaders: [(name: String, value: String)]
    ) throws(PluginError) {
        var base = settings.baseUrl ?? defaultBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw PluginError(.config, "'baseUrl' must be an http or https URL, e.g. \(defaultBaseURL); got '\(base)'")
        }
        var headers = [(name: "Content-Type", value: "application/json")] + fixedHeaders
        let keyVariable = settings.apiKeyEnv ?? defaultKeyVariable
        let credentialHeader = credential("").name
        if let key = settings.apiKey ?? ProcessInfo.processInfo.environment[keyVariable], !key.isEmpty {
            headers.append(credential(key))
        }
        for (name, value) in (settings.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard name.caseInsensitiveCompare(credentialHeader) != .orderedSame else {
                throw PluginError(.config, "'headers' must not set \(credentialHeader); use apiKey or apiKeyEnv")
            }
            headers.append((name: name, value: value))
        }
        self.init(
            host: host, baseURL: base, headers: headers, timeout: settings.timeoutSeconds.map { .milliseconds(Int64($0 * 1000)) },
            retry: RetryPolicy(retries: settings.retries, baseMs: settings.retryBaseMs, maxRetryAfterSeconds: settings.maxRetryAfterSeconds),
            keyHint: settings.apiKey != nil ? "'apiKey'" : keyVariable)
    }
}
