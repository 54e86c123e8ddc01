import Foundation
import Logging
import OrionCore
import OrionTestSupport

/// A deployment with one real full-text retriever (fts-sqlite) behind tier `free`, a document
/// store file, and memory over it.
struct MemoryHarness {
    let dir: String
    let runtime: PluginRuntime
    let documents: DocumentIndex
    let memory: MemoryBank
    let runs: RunRunner
    let events: EventHub

    /// With `embeddings`, tier `free` also maps embed-local (on the files scripts/embed-setup.sh
    /// installs) and searches with a hybrid of exact vector search and fts first.
    static func pluginsD(in dir: String, embeddings: Bool = false) throws -> String {
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws { try text.write(toFile: pluginsD + "/" + name, atomically: true, encoding: .utf8) }
        try write("fts.yaml", "id: fts\nplugin: fts-sqlite\n")
        guard embeddings else {
            try write("tiers.yaml", "tiers:\n  free:\n    capabilities: { retrieval: fts }\n")
            return pluginsD
        }
        try write("embed.yaml", EmbedFiles.instanceYAML())
        try write("vector.yaml", "id: vector\nplugin: vector-flat\n")
        try write("hybrid.yaml", "id: hybrid\nplugin: hybrid-rrf\nconfig: { sources: [{ id: vector }, { id: fts }] }\n")
        try write("tiers.yaml", "tiers:\n  free:\n    capabilities: { retrieval: [hybrid, fts], embeddings: embed }\n")
        return pluginsD
    }

    /// Starts (or restarts, on the same `dir`) the deployment.
    static func start(
        dir: String = TestPlugins.temporaryDirectory("orion-memory"), policy: MemoryPolicy = .standard, learns: Bool = true,
        random: any RandomNumberGenerator & Sendable = SeededGenerator(seed: 7), embeddings: Bool = false
    ) async throws -> MemoryHarness {
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: try pluginsD(in: dir, embeddings: embeddings))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let documents = DocumentIndex(store: try DocumentStore(path: dir + "/documents.sqlite"), registry: runtime.registry, logger: logger)
        await runtime.addPreparer(documents)
        try await runtime.reload()
        let memory = MemoryBank(documents: documents, policy: policy, learns: learns, random: random)
        var config = RuntimeConfig()
        config.dataDirectory = dir
        let events = EventHub(registry: runtime.registry, config: config, logger: logger)
        return MemoryHarness(
            dir: dir, runtime: runtime, documents: documents, memory: memory, runs: RunRunner(memory: memory, events: events, logger: logger), events: events)
    }

    /// The same store, searched with another policy.
    func bank(_ policy: MemoryPolicy, random: any RandomNumberGenerator & Sendable = SeededGenerator(seed: 7)) -> (MemoryBank, RunRunner) {
        let bank = MemoryBank(documents: documents, policy: policy, random: random)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return (bank, RunRunner(memory: bank, logger: logger))
    }

    func stop() async { await runtime.shutdown() }
}
