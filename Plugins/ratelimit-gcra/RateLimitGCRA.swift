import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// `ratelimit-gcra`: an in-process, exact GCRA limiter. O(1) state per key (one 128-bit time),
/// cost-weighted, driven by the host's monotonic clock, with bounded memory.
final class RateLimitGCRA: OrionPlugin, RateLimiterPlugin {
    /// - Configuration keys:
    ///   - `limit` (integer ≥ 1, default 120): cost units admitted per period; also the burst.
    ///   - `periodSeconds` (number > 0, default 60): the period.
    ///   - `maxKeys` (integer ≥ 1024, default 100000): keys tracked at most, split evenly over 16
    ///     shards. Idle keys (back at full capacity) are evicted first; they carry no information, so
    ///     evicting them changes nothing. When a shard is full of keys that are still limited, a new
    ///     key hashing to it is refused until the earliest of them becomes idle.
    struct Configuration: Decodable, Sendable {
        var limit: Int64 = 120
        var periodSeconds: Double = 60
        var maxKeys: Int = 100_000

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            limit = try c.decodeIfPresent(Int64.self, forKey: .limit) ?? limit
            periodSeconds = try c.decodeIfPresent(Double.self, forKey: .periodSeconds) ?? periodSeconds
            maxKeys = try c.decodeIfPresent(Int.self, forKey: .maxKeys) ?? maxKeys
        }
        enum CodingKeys: String, CodingKey { case limit, periodSeconds, maxKeys }
    }

    static let descriptor = PluginDescriptor(
        id: "ratelimit-gcra", version: "1.0.0", capabilities: ["rate_limit", "quota"],
        configSchema: """
            {"type":"object","additionalProperties":false,"properties":{
            "limit":{"type":"integer","minimum":1},
            "periodSeconds":{"type":"number","exclusiveMinimum":0},
            "maxKeys":{"type":"integer","minimum":1024}}}
            """,
        summary: "Exact in-process GCRA rate limiter, cost-weighted, bounded memory")

    private static let shardCount = 16
    private let policy: GCRAPolicy
    private let host: PluginHost
    private let shards: [ShardLock]
    private let shardCapacity: Int

    /// Keys of one shard and their TATs (scaled units).
    struct Shard {
        var tats: [String: Int128] = [:]
        var operationsSinceSweep = 0
        /// After a sweep that freed nothing, no key can become idle before this TAT: sweeping
        /// again earlier would only cost time.
        var noIdleKeyBefore: Int128 = .min

        /// Drops every key whose TAT has passed: such a key is at full capacity, as if new.
        mutating func sweepIdle(now: Int128) {
            guard now >= noIdleKeyBefore else { return }
            tats = tats.filter { $0.value > now }
            operationsSinceSweep = 0
            noIdleKeyBefore = tats.values.min() ?? .min
        }
    }

    /// One shard's lock; a class because `Mutex` cannot live in an array.
    final class ShardLock: Sendable {
        let state = Mutex(Shard())
    }

    init(configuration: Configuration, host: PluginHost) throws {
        guard configuration.limit >= 1 else { throw PluginError(.config, "'limit' must be at least 1") }
        guard configuration.maxKeys >= 1024 else { throw PluginError(.config, "'maxKeys' must be at least 1024") }
        guard configuration.periodSeconds > 0, configuration.periodSeconds <= 86_400 * 366 else {
            throw PluginError(.config, "'periodSeconds' must be greater than 0 and at most a year")
        }
        let period = Int64((configuration.periodSeconds * 1e9).rounded())
        guard period >= 1 else { throw PluginError(.config, "'periodSeconds' is below one nanosecond") }
        policy = GCRAPolicy(limit: configuration.limit, periodNanoseconds: period)
        self.host = host
        shardCapacity = max(1, configuration.maxKeys / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in ShardLock() }
    }

    func acquire(key: PluginString, cost: Int64, decision: inout RateDecision) throws(PluginError) {
        guard cost >= 1 else { throw PluginError(.invalidArgument, "cost must be at least 1, got \(cost)") }
        guard cost <= policy.limit else {
            throw PluginError(
                .invalidArgument,
                "cost \(cost) exceeds the limit \(policy.limit) and could never be admitted; raise 'limit' or lower the cost")
        }
        let keyString = key.string
        let now = policy.scaled(host.monotonicNanoseconds())
        let shard = shards[Int(UInt(bitPattern: keyString.hashValue) % UInt(Self.shardCount))]
        let outcome: GCRAPolicy.Outcome = shard.state.withLock { state in
            state.operationsSinceSweep += 1
            if state.operationsSinceSweep >= 4096 { state.sweepIdle(now: now) }
            let stored = state.tats[keyString]
            if stored == nil, state.tats.count >= shardCapacity {
                state.sweepIdle(now: now)
                if state.tats.count >= shardCapacity {
                    // Every tracked key is still limited: admitting an untracked key would forget
                    // someone's debt, so refuse until the earliest key becomes idle.
                    let earliest = state.noIdleKeyBefore
                    return GCRAPolicy.Outcome(
                        allowed: false, tat: earliest, remaining: 0,
                        retryAfterNanoseconds: policy.nanoseconds(ceil: earliest - now), resetNanoseconds: 0)
                }
            }
            let outcome = policy.decide(storedTAT: stored, now: now, cost: cost)
            if outcome.allowed {
                state.tats[keyString] = outcome.tat
                state.noIdleKeyBefore = min(state.noIdleKeyBefore, outcome.tat)
            }
            return outcome
        }
        decision = RateDecision(
            allowed: outcome.allowed, limit: policy.limit, remaining: outcome.remaining,
            retryAfterNanoseconds: outcome.retryAfterNanoseconds, resetNanoseconds: outcome.resetNanoseconds,
            windowNanoseconds: policy.periodNanoseconds)
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(RateLimitGCRA.self, host: host)
}
