import Foundation
import OrionPluginABI
import Synchronization

/// An outbound HTTP request, sent through the host (which owns TLS, connection pools, timeouts
/// and the deployment's egress allowlist). Plugins carry no HTTP stack of their own.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// The whole exchange's limit, head and body; nil for the host's default.
    public var timeout: Duration?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: Data = Data(), timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A response whose body arrives as it is received.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    /// The body's chunks. Stop iterating (or drop it) to abort the transfer.
    public var body: AsyncThrowingStream<Data, any Error>

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// The whole body; refuses one longer than `limit` bytes.
    public func collect(upTo limit: Int = 16 << 20) async throws -> Data {
        var data = Data()
        for try await chunk in body {
            guard data.count + chunk.count <= limit else {
                throw PluginError(.resourceExhausted, "the response body is longer than \(limit) bytes")
            }
            data.append(chunk)
        }
        return data
    }
}

extension PluginHost {
    /// Sends `request` through the host and returns once the response head has arrived.
    ///
    /// Throws the host's refusal (a host not in the egress allowlist is `config`), or the
    /// transfer's failure before the head (`unavailable`, `deadline`). Failures after the head
    /// end the body stream with the error.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let call = HTTPCall()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                call.start(continuation)
                let arena = StringArena()
                let headers = request.headers.map { orion_http_header(name: arena.str($0.name), value: arena.str($0.value)) }
                var error = ErrorBuffer.make()
                let ctx = Unmanaged.passRetained(call).toOpaque()
                let handler = orion_http_response_handler(ctx: ctx, head: httpHead, body: httpBody, complete: httpComplete)
                let timeout = request.timeout.map { Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 } ?? 0
                let status = withExtendedLifetime(arena) {
                    headers.withUnsafeBufferPointer { headerBuffer in
                        Array(request.body).withOrionStr { body in
                            var raw = orion_http_request(
                                struct_size: UInt32(MemoryLayout<orion_http_request>.size), method: arena.str(request.method),
                                url: arena.str(request.url), headers: headerBuffer.baseAddress, header_count: headerBuffer.count,
                                body: body, timeout_ns: timeout)
                            return api.pointee.http_request(context, &raw, handler, &error)
                        }
                    }
                }
                if status != ORION_OK {
                    // Not started: no callback will come, so the retain is balanced here.
                    Unmanaged<HTTPCall>.fromOpaque(ctx).release()
                    call.fail(PluginError(status: status, error: &error))
                }
            }
        } onCancel: {
            call.cancel()
        }
    }
}

/// One exchange's state, shared with the host's callbacks through the handler's `ctx`.
final class HTTPCall: Sendable {
    private struct State {
        var head: CheckedContinuation<HTTPResponse, any Error>?
        var body: AsyncThrowingStream<Data, any Error>.Continuation?
        var cancelled = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<HTTPResponse, any Error>) {
        state.withLock { $0.head = continuation }
    }

    /// The head arrived: hand the caller a response whose body this call feeds.
    func head(status: Int, headers: [(name: String, value: String)]) {
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel() }
        }
        let waiting = state.withLock { state -> CheckedContinuation<HTTPResponse, any Error>? in
            defer { state.head = nil }
            guard !state.cancelled else { return nil }
            state.body = continuation
            return state.head
        }
        if let waiting {
            waiting.resume(returning: HTTPResponse(status: status, headers: headers, body: stream))
        } else {
            continuation.finish(throwing: PluginError(.cancelled, "the request was cancelled"))
        }
    }

    /// A body chunk; false asks the host to abort.
    func body(_ chunk: Data) -> Bool {
        let (continuation, cancelled) = state.withLock { ($0.body, $0.cancelled) }
        guard !cancelled, let continuation else { return false }
        if case .terminated = continuation.yield(chunk) { return false }
        return true
    }

    /// The exchange ended, with `error` when it failed.
    func finish(_ error: PluginError?) {
        let (head, body) = state.withLock { state in
            defer {
                state.head = nil
                state.body = nil
            }
            return (state.head, state.body)
        }
        if let head {
            head.resume(throwing: error ?? PluginError(.internal, "the host completed an HTTP exchange without a response head"))
        }
        body?.finish(throwing: error)
    }

    func fail(_ error: PluginError) { finish(error) }

    /// The caller's task was cancelled: a caller still waiting for the head is answered at once;
    /// the host is asked to abort at its next body chunk, and complete() still releases the call.
    func cancel() {
        let waiting = state.withLock { state -> CheckedContinuation<HTTPResponse, any Error>? in
            state.cancelled = true
            defer { state.head = nil }
            return state.head
        }
        waiting?.resume(throwing: PluginError(.cancelled, "the request was cancelled"))
    }
}

private func headerList(_ headers: UnsafePointer<orion_http_header>?, _ count: Int) -> [(name: String, value: String)] {
    guard let headers else { return [] }
    return UnsafeBufferPointer(start: headers, count: count).map { (PluginString($0.name).string, PluginString($0.value).string) }
}

private let httpHead: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<orion_http_header>?, Int) -> Void = {
    ctx, status, headers, count in
    Unmanaged<HTTPCall>.fromOpaque(ctx!).takeUnretainedValue().head(status: Int(status), headers: headerList(headers, count))
}

private let httpBody: @convention(c) (UnsafeMutableRawPointer?, orion_str) -> Int32 = { ctx, chunk in
    let call = Unmanaged<HTTPCall>.fromOpaque(ctx!).takeUnretainedValue()
    let data = chunk.ptr.map { Data(bytes: $0, count: chunk.len) } ?? Data()
    return call.body(data) ? 0 : 1
}

private let httpComplete: @convention(c) (UnsafeMutableRawPointer?, orion_status, UnsafePointer<CChar>?) -> Void = {
    ctx, status, message in
    // complete() is the last callback of an exchange: it releases the call.
    let call = Unmanaged<HTTPCall>.fromOpaque(ctx!).takeRetainedValue()
    if status == ORION_OK {
        call.finish(nil)
    } else {
        call.finish(PluginError(PluginError.Code(rawValue: status), message.map { String(cString: $0) } ?? "the HTTP exchange failed"))
    }
}
