import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// The hosts plugins may reach (`engines.egressAllowedHosts`).
public struct EgressAllowlist: Sendable, Hashable {
    /// One entry: `host`, `host:port` or `*.domain`.
    public struct Pattern: Sendable, Hashable {
        var host: String
        var port: Int?
        var isWildcard: Bool

        public init?(_ text: String) {
            var text = text.lowercased()
            guard !text.isEmpty, !text.contains("/"), !text.contains("@") else { return nil }
            var port: Int?
            // "::1" and other bare IPv6 addresses have colons but no port; "[::1]:8080" has one.
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                let rest = text[text.index(after: close)...]
                if rest.hasPrefix(":") {
                    guard let value = Int(rest.dropFirst()), (1...65535).contains(value) else { return nil }
                    port = value
                } else if !rest.isEmpty {
                    return nil
                }
                text = String(text[text.index(after: text.startIndex)..<close])
            } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
                guard let value = Int(text[text.index(after: colon)...]), (1...65535).contains(value) else { return nil }
                port = value
                text = String(text[..<colon])
            }
            isWildcard = text.hasPrefix("*.")
            host = isWildcard ? String(text.dropFirst(2)) : text
            self.port = port
            guard !host.isEmpty, !host.contains("*") else { return nil }
        }

        func matches(host candidate: String, port candidatePort: Int) -> Bool {
            if let port, port != candidatePort { return false }
            return isWildcard ? candidate.hasSuffix("." + host) : candidate == host
        }
    }

    public let patterns: [Pattern]

    public init(_ entries: [String]) {
        patterns = entries.compactMap(Pattern.init)
    }

    /// Nil when `url` may be reached; otherwise why not.
    public func refusal(for url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return "'\(url.absoluteString)' is not an http or https URL"
        }
        guard var host = url.host?.lowercased(), !host.isEmpty else { return "'\(url.absoluteString)' names no host" }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        guard patterns.contains(where: { $0.matches(host: host, port: port) }) else {
            return "host '\(host)' is not in engines.egressAllowedHosts; add it there (or ORION_EGRESS_ALLOWED_HOSTS) to let plugins reach it"
        }
        return nil
    }
}

/// The host's HTTP callout: plugins send requests through it, and it owns TLS, connection pools,
/// timeouts and the egress allowlist.
public final class HTTPEgress: Sendable {
    /// One client for the process: its pools are shared by every instance and it is never shut down.
    /// A connection that cannot be made fails the exchange at once instead of being retried until
    /// the connect timeout: the plugin's retry policy and the tier's fallback route decide what next.
    static let client: HTTPClient = {
        var pool = HTTPClient.Configuration.ConnectionPool(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        pool.retryConnectionEstablishment = false
        return HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10)), connectionPool: pool))
    }()

    public let allowlist: EgressAllowlist
    let defaultTimeout: Duration
    let logger: Logger

    public init(config: RuntimeConfig.Engines, logger: Logger) {
        allowlist = EgressAllowlist(config.egressAllowedHosts)
        defaultTimeout = .milliseconds(Int64(config.timeoutSeconds * 1000))
        self.logger = logger
    }

    /// Checks `request` and starts it; the exchange then runs on its own task and drives `handler`.
    func start(_ request: HostHTTPRequest, handler: HostHTTPHandler, pluginID: String) throws(PluginError) {
        guard let url = URL(string: request.url) else {
            Self.count(pluginID, "refused")
            throw PluginError(.invalidArgument, "'\(request.url)' is not a URL")
        }
        if let refusal = allowlist.refusal(for: url) {
            Self.count(pluginID, "refused")
            logger.warning("egress refused", metadata: ["orion.plugin.id": "\(pluginID)", "orion.reason": "\(refusal)"])
            throw PluginError(.config, "the host refused the request: \(refusal)")
        }
        let method = request.method.isEmpty ? "GET" : request.method.uppercased()
        guard method.allSatisfy({ $0.isASCII && $0.isLetter }) else { throw PluginError(.invalidArgument, "'\(request.method)' is not an HTTP method") }
        var headers = HTTPHeaders()
        for header in request.headers { headers.add(name: header.name, value: header.value) }
        let outbound: HTTPClient.Request
        do {
            outbound = try HTTPClient.Request(
                url: url, method: HTTPMethod(rawValue: method), headers: headers, body: request.body.isEmpty ? nil : .bytes(request.body))
        } catch {
            Self.count(pluginID, "refused")
            throw PluginError(.invalidArgument, "'\(request.url)' cannot be requested: \(error)")
        }
        let timeout = request.timeoutNanoseconds > 0 ? Duration.nanoseconds(request.timeoutNanoseconds) : defaultTimeout
        let nanoseconds = Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        // The delegate's callbacks run on the connection's event loop and call the plugin's handler
        // directly: no task is started and no thread is woken between the socket and the plugin.
        let delegate = EgressDelegate(handler: handler, pluginID: pluginID, timeout: timeout)
        _ = Self.client.execute(request: outbound, delegate: delegate, deadline: .now() + .nanoseconds(nanoseconds))
    }

    static func describe(_ error: any Error, timeout: Duration) -> PluginError {
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return PluginError(.deadline, "the exchange took longer than its limit of \(timeout)")
            case .connectTimeout:
                return PluginError(.unavailable, "could not connect within 10 s")
            case .cancelled:
                return PluginError(.cancelled, "the exchange was cancelled")
            case .remoteConnectionClosed:
                return PluginError(.unavailable, "the server closed the connection before the response was complete")
            default:
                return PluginError(.unavailable, "the exchange failed: \(client)")
            }
        }
        if error is CancellationError { return PluginError(.cancelled, "the exchange was cancelled") }
        return PluginError(.unavailable, "the exchange failed: \(error)")
    }

    static func count(_ pluginID: String, _ outcome: String) {
        Counter(label: "orion_egress_requests_total", dimensions: [("plugin", pluginID), ("outcome", outcome)]).increment()
    }
}

/// One exchange's response, handed to the plugin's handler as it arrives.
final class EgressDelegate: HTTPClientResponseDelegate, Sendable {
    typealias Response = Void
    let handler: HostHTTPHandler
    let pluginID: String
    let timeout: Duration
    let started = ContinuousClock.now
    /// Set once the plugin's handler has been completed (exactly once, as the ABI promises).
    private let completed = Atomic(false)

    init(handler: HostHTTPHandler, pluginID: String, timeout: Duration) {
        self.handler = handler
        self.pluginID = pluginID
        self.timeout = timeout
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        handler.head(status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) })
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard !completed.load(ordering: .acquiring) else { return task.eventLoop.makeSucceededVoidFuture() }
        if !handler.body(Data(buffer.readableBytesView)) {
            HTTPEgress.count(pluginID, "aborted")
            complete(PluginError(.cancelled, "the plugin stopped reading the response"))
            task.cancel()
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        HTTPEgress.count(pluginID, "failed")
        complete(HTTPEgress.describe(error, timeout: timeout))
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        HTTPEgress.count(pluginID, "ok")
        let elapsed = ContinuousClock.now - started
        Timer(label: "orion_egress_duration_seconds", dimensions: [("plugin", pluginID)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        complete(nil)
    }

    private func complete(_ error: PluginError?) {
        guard !completed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        handler.complete(error)
    }
}
