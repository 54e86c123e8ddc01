import Foundation
import Logging
import Metrics
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// Clocks the runtime hands to plugins; tests substitute a manual one.
public protocol RuntimeClock: Sendable {
    func monotonicNanoseconds() -> Int64
    func nowNanoseconds() -> Int64
}

/// The system clocks.
public struct SystemRuntimeClock: RuntimeClock {
    public init() {}
    public func monotonicNanoseconds() -> Int64 { SystemClock.monotonicNanoseconds() }
    public func nowNanoseconds() -> Int64 { SystemClock.nowNanoseconds() }
}

/// What one instance gets from the runtime: a logger with its ids, metrics labelled with its
/// plugin id, the runtime's clock and leases on other instances through the registry.
final class RuntimeHostServices: HostServices {
    let logger: Logger
    let pluginID: String
    let clock: any RuntimeClock
    weak let registry: Registry?
    let metrics: any MetricsFactory
    let egress: HTTPEgress
    let directory: HostServiceDirectory
    private let counters = Mutex<[String: Counter]>([:])
    private let recorders = Mutex<[String: Recorder]>([:])

    init(
        instanceID: String, pluginID: String, logger: Logger, clock: any RuntimeClock, registry: Registry, metrics: any MetricsFactory,
        egress: HTTPEgress, directory: HostServiceDirectory
    ) {
        self.directory = directory
        var logger = logger
        logger[metadataKey: "orion.plugin.id"] = "\(pluginID)"
        logger[metadataKey: "orion.plugin.instance"] = "\(instanceID)"
        self.logger = logger
        self.pluginID = pluginID
        self.clock = clock
        self.registry = registry
        self.metrics = metrics
        self.egress = egress
    }

    func log(level: PluginHost.LogLevel, message: String) {
        let mapped: Logger.Level = switch level {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
        logger.log(level: mapped, "\(message)")
    }

    /// Plugin metrics become `orion_plugin_<name>` with a `plugin` label, plus the labels the name
    /// carries (`name{key="value",…}`).
    func addCounter(name: String, delta: Int64) {
        let counter = counters.withLock { cache in
            if let existing = cache[name] { return existing }
            let (base, labels) = Self.split(name)
            let created = Counter(label: "orion_plugin_\(Self.sanitize(base))", dimensions: [("plugin", pluginID)] + labels, factory: metrics)
            cache[name] = created
            return created
        }
        counter.increment(by: delta)
    }

    func recordHistogram(name: String, value: Double) {
        let recorder = recorders.withLock { cache in
            if let existing = cache[name] { return existing }
            let (base, labels) = Self.split(name)
            let created = Recorder(label: "orion_plugin_\(Self.sanitize(base))", dimensions: [("plugin", pluginID)] + labels, factory: metrics)
            cache[name] = created
            return created
        }
        recorder.record(value)
    }

    func nowNanoseconds() -> Int64 { clock.nowNanoseconds() }
    func monotonicNanoseconds() -> Int64 { clock.monotonicNanoseconds() }

    func acquire(kind: PluginKind, id: String) throws(PluginError) -> HostLease {
        guard let registry else { throw PluginError(.unavailable, "the runtime is shutting down") }
        let lease: Lease
        do {
            lease = try registry.lease(kind: kind, id: id)
        } catch {
            throw PluginError(error.code == .unknownInstance ? .notFound : .invalidArgument, error.message)
        }
        guard let table = lease.instance.table(for: kind) else {
            throw PluginError(.invalidArgument, "instance '\(id)' provides no \(kind) table")
        }
        return HostLease(instance: lease.instance.pointer, table: table, kind: kind) { lease.release() }
    }

    func send(_ request: HostHTTPRequest, to handler: HostHTTPHandler) throws(PluginError) {
        try egress.start(request, handler: handler, pluginID: pluginID)
    }

    func callService(
        scope: UnsafeRawPointer?, service: String, request: Data, completion: @escaping @Sendable (Result<Data, PluginError>) -> Void
    ) throws(PluginError) {
        try directory.call(token: scope, service: service, request: request, completion: completion)
    }

    /// `name{key="value",…}` → the name and its labels (keys sanitized; `plugin` is the host's own
    /// and is dropped; a malformed label part is ignored).
    static func split(_ name: String) -> (String, [(String, String)]) {
        guard let open = name.firstIndex(of: "{"), name.hasSuffix("}") else { return (name, []) }
        let base = String(name[..<open])
        var labels: [(String, String)] = []
        var rest = Substring(name[name.index(after: open)..<name.index(before: name.endIndex)])
        while let equals = rest.firstIndex(of: "=") {
            let key = sanitize(rest[..<equals].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: ""))
            rest = rest[rest.index(after: equals)...]
            guard rest.first == "\"" else { break }
            rest = rest.dropFirst()
            var value = ""
            var escaped = false
            while let character = rest.first {
                rest = rest.dropFirst()
                if escaped {
                    value.append(character == "n" ? "\n" : character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    break
                } else {
                    value.append(character)
                }
            }
            if !key.isEmpty, key != "plugin" { labels.append((key, value)) }
            rest = rest.drop { $0 == "," || $0 == " " }
        }
        return (base, labels)
    }

    /// Keeps metric names Prometheus-valid: `[a-zA-Z0-9_]`.
    static func sanitize(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }
}
