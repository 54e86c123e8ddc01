import Foundation
import OrionPluginHost
import OrionPluginSDK

/// Conformance checks every retriever must pass: namespaces, filters, top-k, removal, clear,
/// checkpoint, and FTS syntax in user text.
public struct RetrieverConformance: Sendable {
    public let instance: PluginInstance
    /// Dimensions of the vectors the kit sends; documents and queries carry vectors so vector
    /// retrievers can answer too.
    public var dimensions: Int

    public init(instance: PluginInstance, dimensions: Int = 8) {
        self.instance = instance
        self.dimensions = dimensions
    }

    func vector(_ seed: Int) -> [Float] {
        var v = (0..<dimensions).map { Float(sin(Double(seed * 31 + $0))) }
        let norm = sqrt(v.reduce(0) { $0 + $1 * $1 })
        for i in v.indices { v[i] /= max(norm, 1e-6) }
        return v
    }

    public func run() -> ConformanceReport {
        var list = CheckList()
        guard let retriever = instance.retriever else {
            list.check("provides a retriever table", false, "the plugin declares no retriever")
            return ConformanceReport(pluginID: instance.image.info.id, kind: .retriever, checks: list.checks)
        }
        if instance.image.info.manifest.capabilities.contains("retrieval.fusion") {
            return runFusion(retriever, list: &list)
        }
        let words = ["orion", "nebula", "galaxy", "comet", "quasar", "pulsar"]
        var docs: [RetrieverDocument] = []
        for (n, ns) in ["tenant_a", "tenant_b"].enumerated() {
            for i in 0..<12 {
                let id = Int64(n * 100 + i)
                docs.append(RetrieverDocument(
                    id: id, namespace: ns,
                    fields: [("title", "\(words[i % words.count]) report \(i)"), ("text", "\(words[(i + 1) % words.count]) notes about \(words[i % words.count])")],
                    metadata: ["parity": i % 2 == 0 ? "even" : "odd"], vector: vector(Int(id))))
            }
        }
        _ = list.expectNoThrow("adds a batch of 24 documents in two namespaces") { try retriever.add(docs) }
        let idsA = Set(docs.filter { $0.namespace == "tenant_a" }.map(\.id))
        if let answer = list.expectNoThrow("searches a namespace", {
            try retriever.search(namespace: "tenant_a", text: "orion nebula galaxy", vector: vector(0), topK: 5)
        }) {
            list.check("returns hits", !answer.hits.isEmpty, "no hits for terms present in the namespace")
            list.check("respects top-k", answer.hits.count <= 5, "\(answer.hits.count) hits for top-k 5")
            list.check("returns only the namespace's ids", answer.hits.allSatisfy { idsA.contains($0.id) }, "ids \(answer.hits.map(\.id)) leak from another namespace")
            list.check("ranks best first", zip(answer.hits, answer.hits.dropFirst()).allSatisfy { $0.score >= $1.score }, "scores are not descending")
        }
        if let filtered = list.expectNoThrow("searches with a metadata filter", {
            try retriever.search(namespace: "tenant_a", text: "orion nebula galaxy comet quasar pulsar report", vector: vector(3), topK: 4, filters: ["parity": "odd"])
        }) {
            let odd = Set(docs.filter { $0.namespace == "tenant_a" && $0.metadata["parity"] == "odd" }.map(\.id))
            list.check("filters before ranking (returns k when k match)", filtered.hits.count == 4, "\(filtered.hits.count) hits for 6 matching documents and top-k 4")
            list.check("every filtered hit matches", filtered.hits.allSatisfy { odd.contains($0.id) }, "ids \(filtered.hits.map(\.id)) do not match parity=odd")
        }
        let hostile = #"" * : ^ - ( ) NEAR AND OR NOT {x} [y] 'z' \ / ; -- % _"#
        _ = list.expectNoThrow("searches text full of query syntax without error") {
            try retriever.search(namespace: "tenant_a", text: hostile, vector: vector(5), topK: 3)
        }
        _ = list.expectNoThrow("searches an unknown namespace") {
            let answer = try retriever.search(namespace: "tenant_unknown", text: "orion", vector: vector(1), topK: 3)
            if !answer.hits.isEmpty { throw PluginError(.internal, "hits from an empty namespace") }
        }
        let removed = docs.first { $0.namespace == "tenant_a" }!.id  // docs is non-empty by construction
        _ = list.expectNoThrow("removes documents") { try retriever.remove(namespace: "tenant_a", ids: [removed]) }
        if let after = try? retriever.search(namespace: "tenant_a", text: "orion nebula galaxy comet quasar pulsar report", vector: vector(Int(removed)), topK: 24) {
            list.check("a removed document is gone", !after.hits.contains { $0.id == removed }, "id \(removed) still returned")
        }
        _ = list.expectNoThrow("records a checkpoint") { try retriever.checkpoint(42) }
        if let stats = list.expectNoThrow("reports stats", { try retriever.stats() }) {
            list.check("stats count the documents", stats.documentCount == 23, "document_count = \(stats.documentCount), expected 23")
            list.check("stats return the checkpoint", stats.checkpoint == 42, "checkpoint = \(stats.checkpoint)")
        }
        _ = list.expectNoThrow("clears") { try retriever.clear() }
        if let empty = try? retriever.search(namespace: "tenant_b", text: "orion nebula", vector: vector(100), topK: 5) {
            list.check("clear drops every document", empty.hits.isEmpty, "\(empty.hits.count) hits after clear")
        }
        return ConformanceReport(pluginID: instance.image.info.id, kind: .retriever, checks: list.checks)
    }

    /// A fusing retriever indexes nothing and answers from other instances: with no registry
    /// behind it, a search must fail cleanly (or come back degraded), and index calls must be
    /// accepted without effect.
    func runFusion(_ retriever: RetrieverCaller, list: inout CheckList) -> ConformanceReport {
        _ = list.expectNoThrow("accepts documents without indexing them") {
            try retriever.add([RetrieverDocument(id: 1, namespace: "tenant_a", fields: [("text", "orion")], vector: vector(1))])
        }
        do {
            let answer = try retriever.search(namespace: "tenant_a", text: "orion", vector: vector(1), topK: 3)
            list.check("without sources, an answer is empty and degraded", answer.hits.isEmpty && answer.degradedReason != nil, "hits \(answer.hits.count), degraded: \(answer.degradedReason ?? "no")")
        } catch {
            list.check("without sources, a search fails with a message", !error.message.isEmpty, "error without message")
        }
        _ = list.expectNoThrow("reports stats") { try retriever.stats() }
        return ConformanceReport(pluginID: instance.image.info.id, kind: .retriever, checks: list.checks)
    }
}
