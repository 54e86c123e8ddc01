/// How memory ranks and learns: the weights of the two-phase retrieval and the constants of the
/// Q-value update. One policy holds for a deployment (`memory.preset` and the keys beside it in
/// `orion.yaml`, see ``RuntimeConfig/Memory``).
public struct MemoryPolicy: Sendable, Equatable {
    /// Phase B: final = similarityWeight × normalised similarity + utilityWeight × Q.
    public var similarityWeight: Double
    public var utilityWeight: Double
    /// α in Q ← Q + α (r + γ·maxQnext − Q).
    public var learningRate: Double
    /// γ in the same update. Runs are terminal, so maxQnext is 0 unless a caller passes one.
    public var discount: Double
    /// r for each outcome; an explicit reward in [-1, 1] replaces these.
    public var successReward: Double
    public var partialReward: Double
    public var failureReward: Double
    /// ε: the share of retrievals whose first result is a random candidate (ε-greedy exploration).
    public var explorationRate: Double
    /// Candidates whose normalised similarity is below this are dropped before phase B (0 keeps all).
    public var similarityFloor: Double
    /// Phase A asks the retriever for this many × top-k candidates.
    public var candidateMultiplier: Int

    public init(
        similarityWeight: Double, utilityWeight: Double, learningRate: Double, discount: Double,
        successReward: Double, partialReward: Double, failureReward: Double,
        explorationRate: Double, similarityFloor: Double, candidateMultiplier: Int
    ) {
        self.similarityWeight = similarityWeight
        self.utilityWeight = utilityWeight
        self.learningRate = learningRate
        self.discount = discount
        self.successReward = successReward
        self.partialReward = partialReward
        self.failureReward = failureReward
        self.explorationRate = explorationRate
        self.similarityFloor = similarityFloor
        self.candidateMultiplier = candidateMultiplier
    }

    /// The default: utility weighs more than similarity once outcomes are known; no exploration.
    public static let standard = MemoryPolicy(
        similarityWeight: 0.4, utilityWeight: 0.6, learningRate: 0.1, discount: 0.9,
        successReward: 1.0, partialReward: 0.1, failureReward: -0.5,
        explorationRate: 0, similarityFloor: 0, candidateMultiplier: 3)

    /// The constants of the MemRL paper's reference code: equal weights, a harsher failure, no
    /// discount, ε-greedy exploration and a similarity floor.
    public static let paper = MemoryPolicy(
        similarityWeight: 0.5, utilityWeight: 0.5, learningRate: 0.1, discount: 0,
        successReward: 1.0, partialReward: 0.1, failureReward: -1.0,
        explorationRate: 0.1, similarityFloor: 0.5, candidateMultiplier: 3)

    /// Ranking by similarity alone, for comparison (the bench's baseline): no utility, no learning.
    public static let similarityOnly = MemoryPolicy(
        similarityWeight: 1, utilityWeight: 0, learningRate: 0.1, discount: 0,
        successReward: 1.0, partialReward: 0.1, failureReward: -0.5,
        explorationRate: 0, similarityFloor: 0, candidateMultiplier: 3)

    /// A named preset: `default` or `paper`.
    public static func preset(named name: String) -> MemoryPolicy? {
        switch name {
        case "default": .standard
        case "paper": .paper
        default: nil
        }
    }

    /// The reward for `outcome`.
    public func reward(for outcome: Outcome) -> Double {
        switch outcome {
        case .success: successReward
        case .partial: partialReward
        case .failure: failureReward
        case .reward(let value): value
        }
    }

    /// One Q-learning step, clamped to [-1, 1].
    public func updated(utility q: Double, reward r: Double, maxNext: Double = 0) -> Double {
        Self.clamp(q + learningRate * (r + discount * maxNext - q))
    }

    static func clamp(_ value: Double) -> Double { min(1, max(-1, value)) }
}

/// How a run or chat ended, for the memories it used.
public enum Outcome: Sendable, Hashable, CustomStringConvertible {
    case success
    case partial
    case failure
    /// An explicit reward in [-1, 1] (a thumbs-up is 1, a thumbs-down −1).
    case reward(Double)

    /// Parses `success`, `partial`, `failure`, `thumbs_up`, `thumbs_down`.
    public init?(name: String) {
        switch name {
        case "success": self = .success
        case "partial": self = .partial
        case "failure": self = .failure
        case "thumbs_up": self = .reward(1)
        case "thumbs_down": self = .reward(-1)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .success: "success"
        case .partial: "partial"
        case .failure: "failure"
        case .reward(let value): "reward \(value)"
        }
    }
}
