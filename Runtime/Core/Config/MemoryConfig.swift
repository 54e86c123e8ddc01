/// The `memory` section of `orion.yaml`: how agent memory ranks and learns (docs/memory.md).
///
/// - Configuration keys (YAML key — environment variable — type, default):
///   - `memory.memrlEnabled` — `MEMRL_ENABLED` — bool, `true`. Off: memory ranks by similarity
///     alone and outcomes are recorded without changing utilities.
///   - `memory.preset` — `MEMRL_PRESET` — `default` | `paper`, `default`. The constants below start
///     from the preset; each key set here overrides one of them.
///   - `memory.learningRate` — `MEMRL_LEARNING_RATE` — number in (0, 1], `0.1` (α).
///   - `memory.discount` — `MEMRL_DISCOUNT` — number in [0, 1], preset (γ: 0.9 default, 0 paper).
///   - `memory.similarityWeight` — `MEMRL_SIMILARITY_WEIGHT` — number in [0, 1], preset (0.4 / 0.5).
///   - `memory.utilityWeight` — `MEMRL_UTILITY_WEIGHT` — number in [0, 1], preset (0.6 / 0.5).
///   - `memory.failureReward` — `MEMRL_FAILURE_REWARD` — number in [-1, 0], preset (−0.5 / −1).
///   - `memory.explorationRate` — `MEMRL_EXPLORATION_RATE` — number in [0, 1), preset (0 / 0.1).
///   - `memory.similarityFloor` — `MEMRL_SIMILARITY_FLOOR` — number in [0, 1), preset (0 / 0.5);
///     compared with the normalised similarity.
///   - `memory.candidateMultiplier` — `MEMRL_CANDIDATE_MULTIPLIER` — integer ≥ 1, `3`: phase A
///     takes this many × top-k candidates.
///   - `memory.hybridSearchEnabled` — `MEMORY_HYBRID_SEARCH_ENABLED` — bool, `true`. Off: memory
///     skips the tier's fusion (hybrid) retrievers and uses its first single-source one.
///   - `memory.queryExpansionEnabled` — `MEMORY_QUERY_EXPANSION_ENABLED` — bool, `false`. On: a
///     memory query over 50 characters is rephrased twice by the engines a tier maps to
///     `query_expansion`, and each rephrasing's full-text hits are fused in (EngineQueryExpander).
extension RuntimeConfig {
    public struct Memory: Sendable, Equatable {
        public var hybridSearchEnabled = true
        public var queryExpansionEnabled = false
        public var memrlEnabled = true
        public var preset = "default"
        public var learningRate = 0.1
        public var discount: Double?
        public var similarityWeight: Double?
        public var utilityWeight: Double?
        public var failureReward: Double?
        public var explorationRate: Double?
        public var similarityFloor: Double?
        public var candidateMultiplier: Int?

        /// The preset with every override applied.
        public var policy: MemoryPolicy {
            var policy = MemoryPolicy.preset(named: preset) ?? .standard
            policy.learningRate = learningRate
            if let discount { policy.discount = discount }
            if let similarityWeight { policy.similarityWeight = similarityWeight }
            if let utilityWeight { policy.utilityWeight = utilityWeight }
            if let failureReward { policy.failureReward = failureReward }
            if let explorationRate { policy.explorationRate = explorationRate }
            if let similarityFloor { policy.similarityFloor = similarityFloor }
            if let candidateMultiplier { policy.candidateMultiplier = candidateMultiplier }
            if !memrlEnabled {
                policy.similarityWeight = 1
                policy.utilityWeight = 0
                policy.explorationRate = 0
            }
            return policy
        }
    }

    static let memoryKeyNames: Set<String> = [
        "hybridSearchEnabled", "queryExpansionEnabled", "memrlEnabled", "preset", "learningRate", "discount",
        "similarityWeight", "utilityWeight", "failureReward", "explorationRate", "similarityFloor", "candidateMultiplier",
    ]

    static let memoryKeys: [Key] = [
        Key(path: "memory.hybridSearchEnabled", env: "MEMORY_HYBRID_SEARCH_ENABLED", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.hybridSearchEnabled = try n.boolValue()
        },
        Key(path: "memory.queryExpansionEnabled", env: "MEMORY_QUERY_EXPANSION_ENABLED", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.queryExpansionEnabled = try n.boolValue()
        },
        Key(path: "memory.memrlEnabled", env: "MEMRL_ENABLED", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.memrlEnabled = try n.boolValue()
        },
        Key(path: "memory.preset", env: "MEMRL_PRESET", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let name = try n.nonEmptyString()
            guard MemoryPolicy.preset(named: name) != nil else { throw n.error("must be default or paper, got '\(name)'") }
            c.memory.preset = name
        },
        Key(path: "memory.learningRate", env: "MEMRL_LEARNING_RATE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.learningRate = try n.number(in: 0.000_001...1, "a rate in (0, 1], e.g. 0.1")
        },
        Key(path: "memory.discount", env: "MEMRL_DISCOUNT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.discount = try n.number(in: 0...1, "a discount γ in [0, 1], e.g. 0.9")
        },
        Key(path: "memory.similarityWeight", env: "MEMRL_SIMILARITY_WEIGHT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.similarityWeight = try n.number(in: 0...1, "a weight in [0, 1], e.g. 0.4")
        },
        Key(path: "memory.utilityWeight", env: "MEMRL_UTILITY_WEIGHT", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.utilityWeight = try n.number(in: 0...1, "a weight in [0, 1], e.g. 0.6")
        },
        Key(path: "memory.failureReward", env: "MEMRL_FAILURE_REWARD", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.failureReward = try n.number(in: -1...0, "a reward in [-1, 0], e.g. -0.5")
        },
        Key(path: "memory.explorationRate", env: "MEMRL_EXPLORATION_RATE", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let rate = try n.number(in: 0...1, "a probability in [0, 1), e.g. 0.1")
            guard rate < 1 else { throw n.error("must be below 1: at 1 every retrieval would be random") }
            c.memory.explorationRate = rate
        },
        Key(path: "memory.similarityFloor", env: "MEMRL_SIMILARITY_FLOOR", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            let floor = try n.number(in: 0...1, "a normalised similarity in [0, 1), e.g. 0.5")
            guard floor < 1 else { throw n.error("must be below 1: at 1 only the single best candidate would pass") }
            c.memory.similarityFloor = floor
        },
        Key(path: "memory.candidateMultiplier", env: "MEMRL_CANDIDATE_MULTIPLIER", requiredInProduction: false) { c, n, _ throws(ConfigError) in
            c.memory.candidateMultiplier = try n.integer(atLeast: 1)
        },
    ]

    /// Checks across memory keys, after each key is valid on its own.
    func memoryErrors() -> [ConfigError] {
        let policy = memory.policy
        guard policy.similarityWeight + policy.utilityWeight > 0 else {
            return [ConfigError(
                file: source, key: "memory.similarityWeight",
                message: "memory.similarityWeight and memory.utilityWeight are both 0; at least one must be above 0 for memory to rank")]
        }
        return []
    }
}
