import Foundation

/// The `engines` section of `orion.yaml`: outbound HTTP for engine plugins, and how the core calls
/// engines (docs/engines.md).
///
/// - Configuration keys (YAML key — environment variable — type, default):
///   - `engines.egressAllowedHosts` — `ORION_EGRESS_ALLOWED_HOSTS` (comma-separated) — list of
///     hosts, `[api.openai.com, api.anthropic.com, api.groq.com, api.together.xyz, localhost,
///     127.0.0.1, ::1]`. The only hosts plugins may reach through the host's HTTP callout. An entry
///     is `host`, `host:port` (that port only) or `*.domain` (any subdomain). `[]` allows none.
///   - `engines.timeoutSeconds` — `ORION_ENGINE_TIMEOUT` — number in [1, 3600], `120`: the limit of
///     one engine call (retries included), and of an HTTP exchange that names no timeout.
///   - `engines.defaultMaxTokens` — `ORION_ENGINE_DEFAULT_MAX_TOKENS` — integer ≥ 1, `1024`: set as
///     `max_tokens` on chat requests that name none, so the reserved cost bounds the call.
///   - `engines.breakerFailures` — `ORION_ENGINE_BREAKER_FAILURES` — integer ≥ 1, `5`: consecutive
///     failures of one engine instance that open its circuit breaker.
///   - `engines.breakerOpenSeconds` — `ORION_ENGINE_BREAKER_OPEN_SECONDS` — number in [0.1, 3600],
///     `30`: how long an open breaker refuses calls before letting one trial call through.
extension RuntimeConfig {
    public struct Engines: Sendable, Equatable {
        public var egressAllowedHosts = [
            "api.openai.com", "api.anthropic.com", "api.groq.com", "api.together.xyz", "localhost", "127.0.0.1", "::1",
        ]
        public var timeoutSeconds = 120.0
        public var defaultMaxTokens = 1024
        public var breakerFailures = 5
        public var breakerOpenSeconds = 30.0
    }

    static let engineKeyNames: Set<String> = ["egressAllowedHosts", "timeoutSeconds", "defaultMaxTokens", "breakerFailures", "breakerOpenSeconds"]

    static let engineKeys: [Key] = [
        Key(path: "engines.egressAllowedHosts", env: "ORION_EGRESS_ALLOWED_HOSTS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let hosts: [String]
            if let text = n.scalarText {
                hosts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            } else {
                hosts = try n.stringList()
            }
            for host in hosts where EgressAllowlist.Pattern(host) == nil {
                throw n.error("has '\(host)', which is not a host, host:port or *.domain")
            }
            c.engines.egressAllowedHosts = hosts
        },
        Key(path: "engines.timeoutSeconds", env: "ORION_ENGINE_TIMEOUT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.engines.timeoutSeconds = try n.number(in: 1...3600, "seconds in [1, 3600]")
        },
        Key(path: "engines.defaultMaxTokens", env: "ORION_ENGINE_DEFAULT_MAX_TOKENS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.engines.defaultMaxTokens = try n.integer(atLeast: 1)
        },
        Key(path: "engines.breakerFailures", env: "ORION_ENGINE_BREAKER_FAILURES", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.engines.breakerFailures = try n.integer(atLeast: 1)
        },
        Key(path: "engines.breakerOpenSeconds", env: "ORION_ENGINE_BREAKER_OPEN_SECONDS", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.engines.breakerOpenSeconds = try n.number(in: 0.1...3600, "seconds in [0.1, 3600]")
        },
    ]
}
