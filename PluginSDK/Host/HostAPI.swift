import Foundation
import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// The host side of the plugin ABI: the one `orion_host_api` table every plugin receives.
///
/// Each function finds the calling instance's ``HostServices`` through its `orion_host_ctx`,
/// which is an unretained pointer to a ``HostContext`` the instance's owner keeps alive.
public enum HostAPI {
    /// The table handed to every plugin entry point; lives for the whole process.
    // nonisolated(unsafe): written once by the lazy initializer, immutable afterwards.
    nonisolated(unsafe) public static let table: UnsafePointer<orion_host_api> = {
        let pointer = UnsafeMutablePointer<orion_host_api>.allocate(capacity: 1)
        pointer.initialize(to: orion_host_api(
            struct_size: UInt32(MemoryLayout<orion_host_api>.size),
            abi_major: UInt16(ORION_ABI_MAJOR), abi_minor: UInt16(ORION_ABI_MINOR),
            log: { ctx, level, message in
                let text = PluginString(message).string
                let logLevel = PluginHost.LogLevel(rawValue: level) ?? .info
                if let ctx {
                    HostContext.with(ctx) { $0.services.log(level: logLevel, message: text) }
                } else {
                    HostAPI.imageLog(logLevel, text)
                }
            },
            counter_add: { ctx, name, delta in
                guard let ctx else { return }
                HostContext.with(ctx) { $0.services.addCounter(name: PluginString(name).string, delta: delta) }
            },
            histogram_record: { ctx, name, value in
                guard let ctx else { return }
                HostContext.with(ctx) { $0.services.recordHistogram(name: PluginString(name).string, value: value) }
            },
            now_ns: { ctx in
                guard let ctx else { return SystemClock.nowNanoseconds() }
                return HostContext.with(ctx) { $0.services.nowNanoseconds() }
            },
            monotonic_ns: { ctx in
                guard let ctx else { return SystemClock.monotonicNanoseconds() }
                return HostContext.with(ctx) { $0.services.monotonicNanoseconds() }
            },
            http_request: { ctx, request, handler, err in
                guard let ctx, let request else {
                    return PluginError(.invalidArgument, "http_request needs a context and a request").write(to: err)
                }
                guard Int(request.pointee.struct_size) >= MemoryLayout<orion_http_request>.size else {
                    return PluginError(.invalidArgument, "set orion_http_request.struct_size = sizeof(orion_http_request)").write(to: err)
                }
                guard handler.head != nil, handler.body != nil, handler.complete != nil else {
                    return PluginError(.invalidArgument, "the response handler needs head, body and complete").write(to: err)
                }
                let copied = HostHTTPRequest(request.pointee)
                do throws(PluginError) {
                    try HostContext.with(ctx) { (context) throws(PluginError) in
                        try context.services.send(copied, to: HostHTTPHandler(handler))
                    }
                } catch {
                    return error.write(to: err)
                }
                return ORION_OK
            },
            registry_acquire: { ctx, kind, id, out, err in
                guard let ctx, let out else {
                    return PluginError(.invalidArgument, "registry_acquire needs a context and an output").write(to: err)
                }
                guard Int(out.pointee.struct_size) >= MemoryLayout<orion_instance_ref>.size else {
                    return PluginError(.invalidArgument, "set orion_instance_ref.struct_size = sizeof(orion_instance_ref) before registry_acquire").write(to: err)
                }
                let lease: HostLease
                do throws(PluginError) {
                    lease = try HostContext.with(ctx) { (context) throws(PluginError) in
                        try context.services.acquire(kind: PluginKind(rawValue: kind), id: PluginString(id).string)
                    }
                } catch {
                    return error.write(to: err)
                }
                out.pointee.struct_size = UInt32(MemoryLayout<orion_instance_ref>.size)
                out.pointee.instance = lease.instance
                out.pointee.kind = kind
                out.pointee.table = lease.table
                out.pointee.lease = Unmanaged.passRetained(lease).toOpaque()
                return ORION_OK
            },
            registry_release: { _, ref in
                guard let ref, let lease = ref.pointee.lease else { return }
                ref.pointee.lease = nil
                let object = Unmanaged<HostLease>.fromOpaque(lease).takeRetainedValue()
                object.release()
            },
            service_call: { ctx, scope, service, request, done, err in
                guard let ctx else { return PluginError(.invalidArgument, "service_call needs the instance's host context").write(to: err) }
                guard done.complete != nil else { return PluginError(.invalidArgument, "service_call needs a completion").write(to: err) }
                let completion = HostCompletion(done)
                let name = PluginString(service).string
                let body = request.ptr.map { Data(bytes: $0, count: request.len) } ?? Data()
                do throws(PluginError) {
                    try HostContext.with(ctx) { (context) throws(PluginError) in
                        try context.services.callService(scope: scope, service: name, request: body) { result in completion.finish(result) }
                    }
                } catch {
                    return error.write(to: err)
                }
                return ORION_OK
            }))
        return UnsafePointer(pointer)
    }()

    private static let imageLogSink = Mutex<(@Sendable (PluginHost.LogLevel, String) -> Void)?>(nil)

    /// Where log lines go that a plugin writes outside any instance (from its entry point).
    public static func setImageLogHandler(_ handler: (@Sendable (PluginHost.LogLevel, String) -> Void)?) {
        imageLogSink.withLock { $0 = handler }
    }

    static func imageLog(_ level: PluginHost.LogLevel, _ message: String) {
        if let sink = imageLogSink.withLock({ $0 }) {
            sink(level, message)
        } else {
            FileHandle.standardError.write(Data("plugin: \(message)\n".utf8))
        }
    }
}

/// The object behind an `orion_host_ctx` pointer.
public final class HostContext: Sendable {
    public let services: any HostServices

    public init(services: any HostServices) { self.services = services }

    /// An unretained pointer: whoever owns the instance keeps this context alive.
    public var pointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    @inline(__always)
    static func with<R, E: Error>(_ ctx: OpaquePointer, _ body: (HostContext) throws(E) -> R) throws(E) -> R {
        let unmanaged = Unmanaged<HostContext>.fromOpaque(UnsafeRawPointer(ctx))
        let result: Result<R, E> = unmanaged._withUnsafeGuaranteedRef { context in
            Result { () throws(E) -> R in try body(context) }
        }
        return try result.get()
    }
}

/// A plugin's completion callback, carried to wherever the host finishes the work.
struct HostCompletion: @unchecked Sendable {
    // @unchecked: the ABI makes completions callable from any thread, exactly once.
    let raw: orion_completion
    init(_ raw: orion_completion) { self.raw = raw }

    func finish(_ result: Result<Data, PluginError>) {
        switch result {
        case .success(let body):
            Array(body).withOrionStr { raw.complete(raw.ctx, ORION_OK, $0, nil) }
        case .failure(let error):
            error.message.withCString { raw.complete(raw.ctx, error.code.rawValue, orion_str(ptr: nil, len: 0), $0) }
        }
    }
}
