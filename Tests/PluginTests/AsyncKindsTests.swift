import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Synchronization
import Testing

/// Engine, pricing and connector bridging through a Swift fixture .so: every call completes
/// exactly once, with a value or with the plugin's status and message.
@Suite struct AsyncKindsTests {
    let host = RecordingHost()
    let instance: PluginInstance

    init() throws {
        let image = try PluginImage(path: TestPlugins.path("fixture-swift-multi"))
        #expect(image.info.kinds == [.retriever, .engine, .pricing, .connector])
        instance = try PluginInstance(image: image, config: Data("{}".utf8), services: host)
    }

    func request(model: String, _ text: String) -> Data {
        Data(#"{"model":"\#(model)","messages":[{"role":"user","content":"\#(text)"}]}"#.utf8)
    }

    @Test func chatReturnsTheCompletion() async throws {
        let engine = try #require(instance.engine)
        let body = try await engine.chat(request: request(model: "m1", "hello there"))
        let json = try JSONValue.parse(body)
        #expect(json["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "echo: hello there")
        #expect(host.logs.contains { $0.contains("created with 0 sources") }, "plugin logs reach the host")
    }

    @Test func chatFailuresCarryStatusAndMessage() async throws {
        let engine = try #require(instance.engine)
        await #expect {
            try await engine.chat(request: request(model: "fail", "x"))
        } throws: { error in
            (error as? PluginError)?.code == .unavailable && (error as? PluginError)?.message.contains("upstream is down") == true
        }
        await #expect(throws: PluginError.self) { try await engine.chat(request: Data("not json".utf8)) }
    }

    @Test func streamsChunksInOrderAndStopsWhenAsked() async throws {
        let engine = try #require(instance.engine)
        let chunks = Mutex<[String]>([])
        let usage = try await engine.chatStream(request: request(model: "m1", "one two three four")) { chunk in
            let delta = (try? JSONValue.parse(chunk))?["delta"]?.stringValue ?? "?"
            chunks.withLock { $0.append(delta) }
            return true
        }
        #expect(chunks.withLock { $0 } == ["one", "two", "three", "four"])
        #expect(String(decoding: usage, as: UTF8.self) == #"{"completion_tokens":4}"#)

        let stopped = Mutex(0)
        let partial = try await engine.chatStream(request: request(model: "m1", "a b c d e")) { _ in
            stopped.withLock { $0 += 1; return $0 < 2 }
        }
        #expect(stopped.withLock { $0 } == 2)
        #expect(String(decoding: partial, as: UTF8.self) == #"{"completion_tokens":2}"#)
    }

    @Test func embedsEveryText() async throws {
        let engine = try #require(instance.engine)
        let result = try await engine.embed(model: "", texts: ["a", "abcd"])
        #expect(result.dimensions == 4)
        #expect(result.count == 2)
        #expect(result.vectors == [1, 1, 0, 0, 4, 1, 0, 0])
        await #expect(throws: PluginError.self) { try await engine.embed(model: "fail", texts: ["a"]) }
    }

    @Test func manyConcurrentCallsEachCompleteOnce() async throws {
        let engine = try #require(instance.engine)
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<200 {
                group.addTask { try await engine.embed(model: "", texts: [String(repeating: "x", count: i)]).vectors.count }
            }
            var total = 0
            for try await count in group { total += count }
            return total
        }
        #expect(results == 800)
    }

    @Test func pricesKnownModelsAndRefusesUnknownOnes() throws {
        let pricing = try #require(instance.pricing)
        let price = try pricing.price(model: "m1")
        #expect(price.inputPerMillion == 1_000_000_000)
        #expect(price.outputPerMillion == 2_000_000_000)
        #expect(price.cacheReadPerMillion == nil)
        #expect(throws: PluginError.self) { try pricing.price(model: "m2") }
    }

    @Test func deliversEvents() async throws {
        let connector = try #require(instance.connector)
        let event = PluginEvent(type: "run_completed", tenantID: "t", workspaceID: "w", runID: "r", timestampNanoseconds: 1, sequence: 1, payload: Data("{}".utf8))
        try await connector.deliver(event)
        try await connector.deliver(event)
        #expect(host.counter("events_delivered_total") == 2)
        var failing = event
        failing.type = "fail"
        await #expect(throws: PluginError.self) { try await connector.deliver(failing) }
    }

    @Test func theConformanceKitCoversEveryKind() async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("fixture-swift-multi"))
        #expect(Set(reports.map(\.kind)) == [.retriever, .engine, .pricing, .connector])
        for report in reports where report.kind != .retriever {
            #expect(report.failures.isEmpty, "\(report.kind): \(report.failures)")
        }
        // A fusing retriever with no sources indexes nothing: the kit must say so.
        let retriever = try #require(reports.first { $0.kind == .retriever })
        #expect(!retriever.passed)
    }
}
