import Foundation
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// One plugin calling another through the host's registry lookup, as a hybrid retriever does.
@Suite struct RegistryLookupTests {
    @Test func aPluginLeasesAnotherInstanceByID() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: words\nplugin: fixture-swift-retriever\n".write(toFile: pluginsD + "/words.yaml", atomically: true, encoding: .utf8)
        try "id: fused\nplugin: fixture-swift-multi\nconfig: { sources: [words, gone, limiter] }\n".write(toFile: pluginsD + "/fused.yaml", atomically: true, encoding: .utf8)
        try "id: limiter\nplugin: ratelimit-gcra\n".write(toFile: pluginsD + "/limiter.yaml", atomically: true, encoding: .utf8)
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        try await runtime.reload()

        let words = try runtime.registry.lease(kind: .retriever, id: "words")
        try #require(words.retriever).add([
            RetrieverDocument(id: 1, namespace: "tenant_a", fields: [("text", "orion nebula")], metadata: ["lang": "en"]),
            RetrieverDocument(id: 2, namespace: "tenant_a", fields: [("text", "orion")], metadata: ["lang": "de"]),
            RetrieverDocument(id: 3, namespace: "tenant_b", fields: [("text", "orion nebula")]),
        ])
        words.release()

        let fused = try runtime.registry.lease(kind: .retriever, id: "fused")
        let answer = try #require(fused.retriever).search(namespace: "tenant_a", text: "orion nebula", topK: 5)
        #expect(answer.hits.map(\.id) == [1, 2])
        #expect(answer.hits.allSatisfy { $0.source == .hybrid })
        #expect(answer.hits.first?.details == [HitSource(sourceIndex: 0, rank: 1, score: 2, source: .fts)])
        let reason = try #require(answer.degradedReason)
        #expect(reason.contains("gone: no instance 'gone' is loaded"))
        #expect(reason.contains("limiter: instance 'limiter' is a rate_limiter, not a retriever"))

        let filtered = try #require(fused.retriever).search(namespace: "tenant_a", text: "orion", topK: 5, filters: ["lang": "de"])
        #expect(filtered.hits.map(\.id) == [2])
        fused.release()

        // Leases taken through the host are released: swapping the source destroys the old one.
        try "id: words\nplugin: fixture-swift-retriever\nconfig: { failCreate: false }\n".write(toFile: pluginsD + "/words.yaml", atomically: true, encoding: .utf8)
        let old = runtime.registry.snapshot.instances["words"]
        try await runtime.reload()
        #expect(old?.isDestroyed == true)
        await runtime.shutdown()
    }
}
