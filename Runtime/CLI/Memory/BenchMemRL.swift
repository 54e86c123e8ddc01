import ArgumentParser
import Foundation
import Logging
import OrionCore

/// `orion bench memrl`: learning curves of memory on a scripted environment (``LearningScenario``)
/// for plain similarity, the default policy and the MemRL paper's preset, on one retriever from
/// plugins.d, in a temporary store.
struct BenchMemRL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memrl", abstract: "Learning curves: the share of runs that rank the good memory first, per episode and strategy.")

    @Option(help: "The retriever instance id from plugins.d that serves phase A (fts, xapian, hybrid, …).") var retriever = "fts"
    @Option(help: "Recurring tasks, each with a good memory and a near-duplicate bad one.") var intents = 20
    @Option(help: "Episodes; each runs every task once.") var episodes = 15
    @Option(help: "Memories handed to each run.") var topK = 3
    @Option(help: "Seed of the paper preset's exploration draws.") var seed: UInt64 = 1
    @Flag(help: "End with one JSON object.") var json = false
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        guard (1...84).contains(intents) else { throw ValidationError("--intents must be 1 to 84 (distinct scripted tasks)") }
        guard episodes >= 1, topK >= 1 else { throw ValidationError("--episodes and --top-k must be at least 1") }
    }

    func run() async throws {
        let (config, logger, scratch) = try options.benchDeployment()
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        var spec = try BenchRetrieval.deployment(for: retriever, in: config)
        spec.tiers = [TierSpec(name: "bench", requestsPerHour: 1, costCapUSD: 0, capabilities: ["retrieval": [retriever]])]
        let runtime = PluginRuntime(config: config, logger: logger)
        let documents = DocumentIndex(store: try DocumentStore(path: config.resolvedDocumentStorePath), registry: runtime.registry, logger: logger)
        await runtime.addPreparer(documents)
        let report = try await runtime.apply(spec, reason: "bench")
        if let refusal = report.refusals.first { throw ValidationError("instance refused: \(refusal)") }

        let scenario = LearningScenario(intents: intents, episodes: episodes, topK: topK)
        let strategies: [(name: String, policy: MemoryPolicy)] = [("similarity", .similarityOnly), ("default", .standard), ("paper", .paper)]
        var curves: [String: [Double]] = [:]
        for strategy in strategies {
            let bank = MemoryBank(documents: documents, policy: strategy.policy, random: SeededGenerator(seed: seed))
            let runner = RunRunner(memory: bank, logger: logger)
            let namespace = Namespace.forTenant("bench_\(strategy.name)")
            try await scenario.seed(bank, namespace: namespace)
            curves[strategy.name] = try await scenario.run(runner, namespace: namespace, tier: "bench")
        }
        await runtime.shutdown()

        print("memrl: \(intents) recurring tasks × \(episodes) episodes, top \(topK), retriever \(retriever)")
        print("share of runs whose first memory is the good one")
        print("episode  " + strategies.map { $0.name.padding(toLength: 11, withPad: " ", startingAt: 0) }.joined())
        for episode in 0..<episodes {
            let cells = strategies.map { String(format: "%-11.2f", curves[$0.name]![episode]) }
            print(String(format: "%7d  ", episode + 1) + cells.joined())
        }
        if json {
            var object: [String: Any] = [:]
            for strategy in strategies {
                let curve = curves[strategy.name]!
                object[strategy.name] = ["final_good_first_share": curve.last ?? 0, "curve": curve]
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
