import Metrics

/// Counts and times calls into plugin instances through swift-metrics (Prometheus under
/// `orion serve`): `orion_plugin_calls_total{instance, operation, outcome}` and
/// `orion_plugin_call_duration_seconds{instance, operation}`. Labels carry the instance id and the
/// operation (`search`, `acquire`, `add`, …), never a tenant.
public enum PluginCallMetrics {
    /// Runs `body` (one call into instance `instance`) and records it.
    @inlinable
    public static func measure<T, E: Error>(
        instance: String, operation: String, factory: any MetricsFactory = MetricsSystem.factory, _ body: () throws(E) -> T
    ) throws(E) -> T {
        let started = ContinuousClock.now
        do {
            let result = try body()
            record(instance: instance, operation: operation, outcome: "ok", since: started, factory: factory)
            return result
        } catch {
            record(instance: instance, operation: operation, outcome: "error", since: started, factory: factory)
            throw error
        }
    }

    /// ``measure(instance:operation:factory:_:)`` for an asynchronous call.
    public static func measure<T>(
        instance: String, operation: String, factory: any MetricsFactory = MetricsSystem.factory, _ body: () async throws -> T
    ) async rethrows -> T {
        let started = ContinuousClock.now
        do {
            let result = try await body()
            record(instance: instance, operation: operation, outcome: "ok", since: started, factory: factory)
            return result
        } catch {
            record(instance: instance, operation: operation, outcome: "error", since: started, factory: factory)
            throw error
        }
    }

    @usableFromInline
    static func record(instance: String, operation: String, outcome: String, since started: ContinuousClock.Instant, factory: any MetricsFactory) {
        let elapsed = ContinuousClock.now - started
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        Counter(label: "orion_plugin_calls_total", dimensions: [("instance", instance), ("operation", operation), ("outcome", outcome)], factory: factory)
            .increment()
        Timer(label: "orion_plugin_call_duration_seconds", dimensions: [("instance", instance), ("operation", operation)], factory: factory)
            .recordNanoseconds(nanoseconds)
    }
}
