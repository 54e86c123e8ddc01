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

    static func pluginsD(in dir: String) throws -> String {
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: fts\nplugin: fts-sqlite\n".write(toFile: pluginsD + "/fts.yaml", atomically: true, encoding: .utf8)
        try "tiers:\n  free:\n    capabilities: { retrieval: fts }\n".write(toFile: pluginsD + "/tiers.yaml", atomically: true, encoding: .utf8)
        return pluginsD
    }

    /// Starts (or restarts, on the same `dir`) the deployment.
    static func start(
        dir: String = TestPlugins.temporaryDirectory("orion-memory"), policy: MemoryPolicy = .standard, learns: Bool = true,
        random: any RandomNumberGenerator & Sendable = SeededGenerator(seed: 7)
    ) async throws -> MemoryHarness {
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: try pluginsD(in: dir))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let documents = DocumentIndex(store: try DocumentStore(path: dir + "/documents.sqlite"), registry: runtime.registry, logger: logger)
        await runtime.addPreparer(documents)
        try await runtime.reload()
        let memory = MemoryBank(documents: documents, policy: policy, learns: learns, random: random)
        return MemoryHarness(dir: dir, runtime: runtime, documents: documents, memory: memory, runs: RunRunner(memory: memory, logger: logger))
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
