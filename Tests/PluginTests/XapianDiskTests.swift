import Foundation
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// `fts-xapian` with `path`: the index on disk — kept across instances with its checkpoint, read
/// by concurrent searches while a writer commits, shared by two instances of one deployment, and
/// cleared whole.
@Suite struct XapianDiskTests {
    let dir = TestPlugins.temporaryDirectory("orion-xapian")
    var config: String { #"{"path": "\#(dir)/index"}"# }

    func retriever(_ config: String) throws -> (PluginInstance, RetrieverCaller) {
        let image = try PluginImage(path: TestPlugins.path("fts-xapian"))
        let instance = try PluginInstance(image: image, config: Data(config.utf8), services: RecordingHost())
        return (instance, try #require(instance.retriever))
    }

    static let words = ["orion", "nebula", "galaxy", "comet", "quasar", "pulsar", "meteor", "aurora"]

    static func documents(_ range: Range<Int>, namespace: String = "ns") -> [RetrieverDocument] {
        range.map { i in
            RetrieverDocument(
                id: Int64(i), namespace: namespace, fields: [("text", "\(words[i % 8]) \(words[(i / 8) % 8]) survey")],
                metadata: ["shelf": i % 4 == 0 ? "rare" : "common"])
        }
    }

    @Test func anIndexOnDiskOutlivesItsInstanceWithItsCheckpoint() throws {
        let before: [Int64]
        do {
            let (instance, xapian) = try retriever(config)
            try xapian.add(Self.documents(0..<200))
            try xapian.remove(namespace: "ns", ids: [0, 8])
            try xapian.checkpoint(9)
            before = try xapian.search(namespace: "ns", text: "orion comet", topK: 20).hits.map(\.id)
            instance.destroy()
        }
        let (instance, xapian) = try retriever(config)
        defer { instance.destroy() }
        #expect(try xapian.stats() == RetrieverStats(documentCount: 198, checkpoint: 9))
        #expect(try xapian.search(namespace: "ns", text: "orion comet", topK: 20).hits.map(\.id) == before)
        let rare = try xapian.search(namespace: "ns", text: "orion", topK: 50, filters: ["shelf": "rare"]).hits
        #expect(!rare.isEmpty && rare.allSatisfy { $0.id % 4 == 0 } && !rare.contains { $0.id == 0 || $0.id == 8 })
        // Clearing empties the files too, and forgets the checkpoint.
        try xapian.clear()
        #expect(try xapian.stats() == RetrieverStats(documentCount: 0, checkpoint: 0))
        #expect(try xapian.search(namespace: "ns", text: "orion", topK: 5).hits.isEmpty)
    }

    /// Searches run on their own readers while a writer commits batch after batch: none fails,
    /// and each sees a whole batch or none of it.
    @Test func searchesReadWhileAWriterCommits() async throws {
        let (instance, xapian) = try retriever(config)
        defer { instance.destroy() }
        try xapian.add(Self.documents(0..<64))
        let failures = SharedCounter()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for batch in 1...20 {
                    do { try xapian.add(Self.documents((batch * 64)..<(batch * 64 + 64))) } catch { failures.increment() }
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    for _ in 0..<200 {
                        do {
                            let count = try xapian.search(namespace: "ns", text: "survey", topK: 2_000).hits.count
                            if count % 64 != 0 { failures.increment() }  // a batch is committed whole
                        } catch {
                            failures.increment()
                        }
                    }
                }
            }
        }
        #expect(failures.count == 0)
        #expect(try xapian.stats().documentCount == 21 * 64)
    }

    /// Two instances naming one directory (an old and a new build during a swap) share the open
    /// database instead of failing on Xapian's write lock.
    @Test func twoInstancesOfOnePathShareTheIndex() throws {
        let (first, one) = try retriever(config)
        let (second, two) = try retriever(config)
        try one.add(Self.documents(0..<10))
        #expect(try two.search(namespace: "ns", text: "quasar", topK: 5).hits.map(\.id) == [4])
        first.destroy()
        #expect(try two.stats().documentCount == 10, "the index stays open while an instance uses it")
        second.destroy()
    }

    @Test func aPathThatCannotHoldAnIndexIsRefused() throws {
        do throws(PluginLoadError) {
            let image = try PluginImage(path: TestPlugins.path("fts-xapian"))
            try PluginInstance(image: image, config: Data(#"{"path": "/proc/orion/none/index"}"#.utf8), services: RecordingHost()).destroy()
            Issue.record("an index under /proc was accepted")
        } catch {
            #expect(error.message.contains("cannot open or create the index"), "\(error.message)")
        }
        do throws(PluginLoadError) {
            let image = try PluginImage(path: TestPlugins.path("fts-xapian"))
            try PluginInstance(image: image, config: Data(#"{"path": ""}"#.utf8), services: RecordingHost()).destroy()
            Issue.record("an empty path was accepted")
        } catch {
            #expect(error.message.contains("'path' is empty"), "\(error.message)")
        }
    }
}
