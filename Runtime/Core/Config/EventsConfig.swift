import Foundation

/// The `events`, `tools` and `health` sections of `orion.yaml`: how run lifecycle events reach
/// connectors and live subscribers (docs/connectors.md), how tool calls are bounded (docs/tools.md)
/// and how often the system health is sampled.
///
/// - Configuration keys (YAML key — environment variable — type, default):
///   - `events.connectorQueueCapacity` — `ORION_CONNECTOR_QUEUE_CAPACITY` — integer ≥ 1, `1024`:
///     events waiting for one connector instance. When it is full, a new event for that connector
///     is dropped and counted (`orion_connector_events_dropped_total`); a request never waits.
///   - `events.deliveryTimeoutSeconds` — `ORION_CONNECTOR_DELIVERY_TIMEOUT` — number in [0.01, 3600],
///     `300`: the longest one delivery may take, the connector's own retries included. A connector
///     that has not answered by then has the event dead-lettered, and its queue moves on.
///   - `events.deadLetterDirectory` — `ORION_DEAD_LETTER_DIR` — path, `<dataDirectory>/dead-letter`:
///     one `<instance>.jsonl` per connector, holding the events it failed to deliver;
///     `orion connectors replay` resends them.
///   - `events.subscriberQueueCapacity` — `ORION_EVENT_SUBSCRIBER_QUEUE` — integer ≥ 1, `256`:
///     events waiting for one `/v1/events` client. A client that lets it fill is disconnected.
///   - `events.subscriberEventsPerSecond` — `ORION_EVENT_SUBSCRIBER_RATE` — integer ≥ 1, `200`:
///     events sent per second to the clients of one tenant and user, together; faster events wait
///     in the subscribers' queues.
///   - `tools.timeoutSeconds` — `ORION_TOOL_TIMEOUT` — number in [0.01, 3600], `30`: the limit of
///     one tool call.
///   - `tools.breakerFailures` — `ORION_TOOL_BREAKER_FAILURES` — integer ≥ 1, `5`: consecutive
///     failures of one tool instance that open its circuit breaker (a refused input is no failure).
///   - `tools.breakerOpenSeconds` — `ORION_TOOL_BREAKER_OPEN_SECONDS` — number in [0.1, 3600], `30`:
///     how long an open breaker refuses calls before letting one trial call through.
///   - `health.snapshotIntervalSeconds` — `ORION_HEALTH_INTERVAL` — number in [1, 3600], `60`:
///     how often the system health is sampled for `/api/health/history`.
///   - `health.retentionHours` — `ORION_HEALTH_RETENTION_HOURS` — number in [1, 720], `24`: how
///     long samples are kept.
extension RuntimeConfig {
    public struct Events: Sendable, Equatable {
        public var connectorQueueCapacity = 1024
        public var deliveryTimeoutSeconds = 300.0
        /// nil: `<dataDirectory>/dead-letter` (see ``RuntimeConfig/resolvedDeadLetterDirectory``).
        public var deadLetterDirectory: String?
        public var subscriberQueueCapacity = 256
        public var subscriberEventsPerSecond = 200
    }

    public struct Tools: Sendable, Equatable {
        public var timeoutSeconds = 30.0
        public var breakerFailures = 5
        public var breakerOpenSeconds = 30.0
    }

    public struct Health: Sendable, Equatable {
        public var snapshotIntervalSeconds = 60.0
        public var retentionHours = 24.0
    }

    /// Where connectors' undelivered events are kept.
    public var resolvedDeadLetterDirectory: String {
        events.deadLetterDirectory ?? (dataDirectory as NSString).appendingPathComponent("dead-letter")
    }

    static let eventKeyNames: Set<String> = ["connectorQueueCapacity", "deliveryTimeoutSeconds", "deadLetterDirectory", "subscriberQueueCapacity", "subscriberEventsPerSecond"]
    static let toolKeyNames: Set<String> = ["timeoutSeconds", "breakerFailures", "breakerOpenSeconds"]
    static let healthKeyNames: Set<String> = ["snapshotIntervalSeconds", "retentionHours"]

    static let eventKeys: [Key] = [
        Key(path: "events.connectorQueueCapacity", env: "ORION_CONNECTOR_QUEUE_CAPACITY", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.events.connectorQueueCapacity = try n.integer(atLeast: 1)
        },
        Key(path: "events.deliveryTimeoutSeconds", env: "ORION_CONNECTOR_DELIVERY_TIMEOUT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.events.deliveryTimeoutSeconds = try n.number(in: 0.01...3600, "seconds in [0.01, 3600]")
        },
        Key(path: "events.deadLetterDirectory", env: "ORION_DEAD_LETTER_DIR", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.events.deadLetterDirectory = try n.nonEmptyString()
        },
        Key(path: "events.subscriberQueueCapacity", env: "ORION_EVENT_SUBSCRIBER_QUEUE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.events.subscriberQueueCapacity = try n.integer(atLeast: 1)
        },
        Key(path: "events.subscriberEventsPerSecond", env: "ORION_EVENT_SUBSCRIBER_RATE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.events.subscriberEventsPerSecond = try n.integer(atLeast: 1)
        },
        Key(path: "tools.timeoutSeconds", env: "ORION_TOOL_TIMEOUT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.tools.timeoutSeconds = try n.number(in: 0.01...3600, "seconds in [0.01, 3600]")
        },
        Key(path: "tools.breakerFailures", env: "ORION_TOOL_BREAKER_FAILURES", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.tools.breakerFailures = try n.integer(atLeast: 1)
        },
        Key(path: "tools.breakerOpenSeconds", env: "ORION_TOOL_BREAKER_OPEN_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.tools.breakerOpenSeconds = try n.number(in: 0.1...3600, "seconds in [0.1, 3600]")
        },
        Key(path: "health.snapshotIntervalSeconds", env: "ORION_HEALTH_INTERVAL", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.health.snapshotIntervalSeconds = try n.number(in: 1...3600, "seconds in [1, 3600]")
        },
        Key(path: "health.retentionHours", env: "ORION_HEALTH_RETENTION_HOURS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.health.retentionHours = try n.number(in: 1...720, "hours in [1, 720]")
        },
    ]
}
