import OrionPluginABI

/// The host's services as a plugin instance sees them: logging, metrics, clocks and leases on other
/// instances. Passed to ``OrionPlugin/init(configuration:host:)``; keep it for the instance's life.
public struct PluginHost: @unchecked Sendable {
    // @unchecked: the host API table is immutable and lives for the whole process; the context
    // is owned by the host until the instance is destroyed, and every host function is documented
    // as callable from any thread.
    public let api: UnsafePointer<orion_host_api>
    public let context: OpaquePointer?

    public init(api: UnsafePointer<orion_host_api>, context: OpaquePointer?) {
        self.api = api
        self.context = context
    }

    /// Log levels, mirroring `ORION_LOG_*`.
    public enum LogLevel: Int32, Sendable {
        case trace = 0, debug, info, notice, warning, error
    }

    /// Logs `message` under this instance's id. Never log secrets or user content.
    public func log(_ level: LogLevel, _ message: String) {
        message.withOrionStr { api.pointee.log(context, level.rawValue, $0) }
    }

    /// Monotonic nanoseconds (only differences are meaningful). Tests may drive this clock.
    @inlinable public func monotonicNanoseconds() -> Int64 { api.pointee.monotonic_ns(context) }

    /// Wall-clock nanoseconds since the Unix epoch.
    @inlinable public func nowNanoseconds() -> Int64 { api.pointee.now_ns(context) }

    /// A metric name with labels, as ``increment(counter:by:)`` and ``record(histogram:_:)`` take
    /// it: `name{key="value",…}` (keys sorted; `\` and `"` in values escaped).
    public static func metricName(_ name: String, labels: [String: String]) -> String {
        guard !labels.isEmpty else { return name }
        let pairs = labels.sorted { $0.key < $1.key }.map { key, value in
            var escaped = ""
            for character in value {
                if character == "\\" || character == "\"" { escaped.append("\\") }
                escaped.append(character)
            }
            return "\(key)=\"\(escaped)\""
        }
        return name + "{" + pairs.joined(separator: ",") + "}"
    }

    /// Adds `delta` to a counter, labelled by the host with this plugin's id. `name` may carry
    /// labels of its own (``metricName(_:labels:)``).
    public func increment(counter name: String, by delta: Int64 = 1) {
        name.withOrionStr { api.pointee.counter_add(context, $0, delta) }
    }

    /// Records one observation (seconds for durations) in a histogram; `name` may carry labels.
    public func record(histogram name: String, value: Double) {
        record(histogram: name, value)
    }

    /// Records one observation (seconds for durations) in a histogram.
    public func record(histogram name: String, _ value: Double) {
        name.withOrionStr { api.pointee.histogram_record(context, $0, value) }
    }

    /// Leases the current instance `id` of `kind`. Hold the lease for one operation only: when the
    /// operator swaps that instance, the old one is destroyed after its last lease ends.
    public func lease(_ kind: PluginKind, id: String) throws(PluginError) -> InstanceLease {
        var ref = orion_instance_ref()
        ref.struct_size = UInt32(MemoryLayout<orion_instance_ref>.size)
        var error = ErrorBuffer.make()
        let status = id.withOrionStr { api.pointee.registry_acquire(context, kind.rawValue, $0, &ref, &error) }
        guard status == ORION_OK else { throw PluginError(status: status, error: &error) }
        return InstanceLease(ref: ref, host: self)
    }
}

/// The kinds of plugin, as the bit flags of the ABI.
public struct PluginKind: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let retriever = PluginKind(rawValue: ORION_KIND_RETRIEVER)
    public static let rateLimiter = PluginKind(rawValue: ORION_KIND_RATE_LIMITER)
    public static let engine = PluginKind(rawValue: ORION_KIND_ENGINE)
    public static let pricing = PluginKind(rawValue: ORION_KIND_PRICING)
    public static let connector = PluginKind(rawValue: ORION_KIND_CONNECTOR)
    public static let tool = PluginKind(rawValue: ORION_KIND_TOOL)

    /// Every kind, in a stable order.
    public static let all: [PluginKind] = [.retriever, .rateLimiter, .engine, .pricing, .connector, .tool]

    /// The configuration name of a single kind, e.g. `rate_limiter`.
    public var name: String {
        switch self {
        case .retriever: "retriever"
        case .rateLimiter: "rate_limiter"
        case .engine: "engine"
        case .pricing: "pricing"
        case .connector: "connector"
        case .tool: "tool"
        default: PluginKind.all.filter { contains($0) }.map(\.name).joined(separator: ",")
        }
    }

    /// Parses a single kind name.
    public init?(name: String) {
        guard let kind = PluginKind.all.first(where: { $0.name == name }) else { return nil }
        self = kind
    }

    public var description: String { name }
}

/// A lease on another instance; released when it goes out of scope.
public struct InstanceLease: ~Copyable {
    public let ref: orion_instance_ref
    let host: PluginHost

    init(ref: orion_instance_ref, host: PluginHost) {
        self.ref = ref
        self.host = host
    }

    deinit {
        var ref = ref
        host.api.pointee.registry_release(host.context, &ref)
    }

    /// The retriever behind the lease, if a retriever was leased.
    public var retriever: RetrieverCaller? {
        guard ref.kind == ORION_KIND_RETRIEVER, let instance = ref.instance, let table = ref.table else { return nil }
        return RetrieverCaller(instance: instance, table: table.assumingMemoryBound(to: orion_retriever_v1.self))
    }

    /// The rate limiter behind the lease, if a rate limiter was leased.
    public var rateLimiter: RateLimiterCaller? {
        guard ref.kind == ORION_KIND_RATE_LIMITER, let instance = ref.instance, let table = ref.table else {
            return nil
        }
        return RateLimiterCaller(instance: instance, table: table.assumingMemoryBound(to: orion_rate_limiter_v1.self))
    }

    /// The engine behind the lease, if an engine was leased.
    public var engine: EngineCaller? {
        guard ref.kind == ORION_KIND_ENGINE, let instance = ref.instance, let table = ref.table else { return nil }
        return EngineCaller(instance: instance, table: table.assumingMemoryBound(to: orion_engine_v1.self))
    }
}
