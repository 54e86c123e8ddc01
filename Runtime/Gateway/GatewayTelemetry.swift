import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// The gateway's measurements: Prometheus metrics (labels never carry a tenant, an IP or a user
/// agent), p95/p99 per route over a sliding window, and one stored record per request (tenant,
/// route, status, duration) that the analytics endpoint reads. Records are buffered and written
/// in batches by ``run()``, which flushes what is left on shutdown.
public final class GatewayTelemetry: Service, Sendable {
    public let registry: PrometheusCollectorRegistry
    let store: GatewayStore
    let logger: Logger
    /// Latency samples per route within the window: (monotonic seconds, duration seconds).
    private let window = Mutex<[String: [(Double, Double)]]>([:])
    private let pending = Mutex<[RequestRecord]>([])
    let windowSeconds: Double
    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init(registry: PrometheusCollectorRegistry, store: GatewayStore, logger: Logger, windowSeconds: Double = 60) {
        self.registry = registry
        self.store = store
        self.logger = logger
        self.windowSeconds = windowSeconds
    }

    struct RequestRecord: Sendable {
        var at: Int64
        var tenantID: String?
        var route: String
        var method: String
        var status: Int
        var milliseconds: Double
    }

    func record(route: String, method: String, status: Int, seconds: Double, violation: String?, tenantID: String?, tier: String?) {
        registry.makeDurationHistogram(
            descriptor: Self.name("http_request_duration", unit: "seconds", help: "Request duration by route, method and status."),
            labels: [("route", route), ("method", method), ("status", String(status))], buckets: Self.buckets
        ).record(.nanoseconds(Int64(seconds * 1e9)))
        if let violation {
            registry.makeCounter(
                descriptor: Self.name("violations", unit: "total", help: "Refused requests by kind: auth, rbac, rate, size, schema."),
                labels: [("kind", violation)]
            ).increment()
        }
        if status == 429 || status == 503 {
            registry.makeCounter(
                descriptor: Self.name("http_refusals", unit: "total", help: "429 and 503 responses by tier."),
                labels: [("status", String(status)), ("tier", tier ?? "none")]
            ).increment()
        }
        let now = Self.monotonic()
        window.withLock { samples in
            var list = samples[route, default: []]
            list.append((now, seconds))
            if let first = list.first, now - first.0 > windowSeconds { list.removeAll { now - $0.0 > windowSeconds } }
            if list.count > 4096 { list.removeFirst(list.count - 4096) }
            samples[route] = list
        }
        let record = RequestRecord(
            at: Int64(Date().timeIntervalSince1970 * 1000), tenantID: tenantID, route: route, method: method, status: status,
            milliseconds: seconds * 1000)
        pending.withLock { $0.append(record) }
    }

    /// The Prometheus exposition, with the sliding-window p95/p99 gauges brought up to date.
    public func exposition() -> String {
        let now = Self.monotonic()
        let snapshot = window.withLock { samples in
            for route in samples.keys { samples[route]?.removeAll { now - $0.0 > windowSeconds } }
            return samples.mapValues { $0.map(\.1) }
        }
        for (route, durations) in snapshot {
            // A route with no request in the window reads 0, not its last figure.
            let sorted = durations.sorted()
            for (quantile, label) in [(0.95, "0.95"), (0.99, "0.99")] {
                registry.makeGauge(
                    descriptor: Self.name("http_request_duration_window", unit: "seconds", help: "Request duration quantiles per route over the last window."),
                    labels: [("route", route), ("quantile", label)]
                ).set(to: Self.quantile(sorted, quantile))
            }
        }
        return registry.emitToString()
    }

    /// The q-quantile of sorted values (nearest rank).
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    static func name(_ metric: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "orion", metricName: metric, unitName: unit, helpText: help)
    }

    static func monotonic() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Writes buffered request records now.
    public func flush() {
        let batch = pending.withLock { records -> [RequestRecord] in
            defer { records.removeAll(keepingCapacity: true) }
            return records
        }
        guard !batch.isEmpty else { return }
        do {
            try store.insert(batch)
        } catch {
            logger.error("request records not written", metadata: ["orion.records": "\(batch.count)", "orion.error": "\(error)"])
        }
    }

    /// Flushes every second until shutdown, then once more; deletes expired keys and records
    /// once a minute.
    public func run() async throws {
        var tick = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            flush()
            if tick % 60 == 0 { await store.expire() }
            tick += 1
        }
        flush()
    }
}
