import Foundation
import OrionPluginABI
import OrionPluginSDK

/// A plugin's outbound HTTP request, copied out of its borrowed buffers.
public struct HostHTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// Nanoseconds; 0 means the host's default.
    public var timeoutNanoseconds: Int64

    public init(method: String, url: String, headers: [(name: String, value: String)], body: Data, timeoutNanoseconds: Int64) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutNanoseconds = timeoutNanoseconds
    }

    init(_ raw: orion_http_request) {
        let headers = raw.headers.map { pointer in
            UnsafeBufferPointer(start: pointer, count: raw.header_count).map { (PluginString($0.name).string, PluginString($0.value).string) }
        } ?? []
        self.init(
            method: PluginString(raw.method).string, url: PluginString(raw.url).string, headers: headers,
            body: PluginString(raw.body).withBytes { Data($0) }, timeoutNanoseconds: raw.timeout_ns)
    }
}

/// The plugin's response handler: ``head(status:headers:)`` once, ``body(_:)`` zero or more
/// times, ``complete(_:)`` exactly once — never concurrently.
public struct HostHTTPHandler: @unchecked Sendable {
    // @unchecked: the ABI lets the host call the handler from any thread, one call at a time;
    // the host drives one exchange from one task.
    let raw: orion_http_response_handler

    public init(_ raw: orion_http_response_handler) { self.raw = raw }

    public func head(status: Int, headers: [(name: String, value: String)]) {
        let arena = StringArena()
        let list = headers.map { orion_http_header(name: arena.str($0.name), value: arena.str($0.value)) }
        withExtendedLifetime(arena) {
            list.withUnsafeBufferPointer { raw.head(raw.ctx, Int32(clamping: status), $0.baseAddress, $0.count) }
        }
    }

    /// Hands over one chunk; false when the plugin asked to abort.
    public func body(_ chunk: Data) -> Bool {
        Array(chunk).withOrionStr { raw.body(raw.ctx, $0) } == 0
    }

    /// Ends the exchange: nil for success, or why it failed.
    public func complete(_ error: PluginError?) {
        guard let error else {
            raw.complete(raw.ctx, ORION_OK, nil)
            return
        }
        error.message.withCString { raw.complete(raw.ctx, error.code.rawValue, $0) }
    }
}
