import Foundation

/// A scripted environment that shows whether memory learns (`orion bench memrl` and the tests).
///
/// Each of `intents` recurring tasks has two remembered experiences: a good one, whose intent is
/// worded a little differently from the task, and a near-duplicate bad one, whose intent repeats
/// the task word for word, so plain similarity ranks the bad one first. Every episode runs every
/// task once through the ``RunRunner``: the agent follows the first memory it is given, the run
/// succeeds when that was the good one and fails otherwise, and the runner applies the outcome to
/// that memory. The learning curve is the share of runs, per episode, whose first memory was the
/// good one.
public struct LearningScenario: Sendable {
    public var intents: Int
    public var episodes: Int
    /// Memories handed to each run.
    public var topK: Int

    public init(intents: Int = 20, episodes: Int = 15, topK: Int = 3) {
        self.intents = intents
        self.episodes = episodes
        self.topK = topK
    }

    static let verbs = ["deploy", "rollback", "migrate", "backup", "restart", "scale", "audit", "rotate", "reindex", "archive", "patch", "profile"]
    static let objects = [
        "billing service", "search cluster", "user database", "payment gateway", "report pipeline", "auth proxy", "email queue",
        "cache layer", "log shipper", "metrics store", "image resizer", "feature flags", "ledger", "notification hub",
    ]
    static let places = ["staging", "production", "eu region", "us region", "canary pool", "disaster site", "test lab"]

    /// The text of task `n`: the query every run of it uses.
    public func task(_ n: Int) -> String {
        let verb = Self.verbs[n % Self.verbs.count]
        let object = Self.objects[(n / Self.verbs.count + n) % Self.objects.count]
        let place = Self.places[(n * 5 + n / 7) % Self.places.count]
        return "\(verb) the \(object) in \(place) tonight"
    }

    /// The two memories of task `n`: (good, bad).
    func memories(_ n: Int) -> (good: MemoryInput, bad: MemoryInput) {
        let task = task(n)
        let good = MemoryInput(
            id: "task\(n)-good", session: "seed", intent: task.replacingOccurrences(of: " tonight", with: " carefully"),
            experience: "ran the checked runbook for task \(n); it worked")
        let bad = MemoryInput(
            id: "task\(n)-bad", session: "seed", intent: task, experience: "ran the outdated script for task \(n); it broke things")
        return (good, bad)
    }

    /// Stores every task's two memories in `namespace`.
    public func seed(_ memory: MemoryBank, namespace: String) async throws {
        var inputs: [MemoryInput] = []
        for n in 0..<intents {
            let pair = memories(n)
            inputs += [pair.good, pair.bad]
        }
        try await memory.store(inputs, namespace: namespace)
    }

    /// Runs every episode; returns, per episode, the share of runs whose first memory was the good one.
    public func run(_ runner: RunRunner, namespace: String, tier: String) async throws -> [Double] {
        var curve: [Double] = []
        for episode in 0..<episodes {
            var goodFirst = 0
            for n in 0..<intents {
                let request = RunRequest(
                    namespace: namespace, tier: tier, session: "episode-\(episode)", intent: task(n), topK: topK,
                    id: "\(namespace)-episode\(episode)-task\(n)")
                try await runner.run(request) { context in
                    guard let first = context.memories.first else { return RunConclusion(outcome: .failure, usedMemoryIDs: []) }
                    let good = first.memory.id == "task\(n)-good"
                    if good { goodFirst += 1 }
                    return RunConclusion(outcome: good ? .success : .failure, usedMemoryIDs: [first.memory.id])
                }
            }
            curve.append(Double(goodFirst) / Double(max(intents, 1)))
        }
        return curve
    }
}

/// A small, fast, seedable generator (xorshift64*), so exploration in benches and tests repeats.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}
