import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// embed-local through the C ABI, on the real ONNX Runtime library and model that
/// scripts/embed-setup.sh installs.
@Suite struct EmbedLocalTests {
    /// Loaded once; a plugin that does not load fails each test that needs it, never the process.
    static let loaded = Result { () throws(PluginLoadError) in try PluginImage(path: TestPlugins.path("embed-local")) }

    static func instance(_ overrides: [String: Any] = [:]) throws(PluginLoadError) -> PluginInstance {
        try PluginInstance(image: loaded.get(), config: Data(EmbedFiles.config(overrides).utf8), services: RecordingHost())
    }

    /// The refusal message for `overrides`, or nil when the instance was created.
    static func refusal(_ overrides: [String: Any]) -> String? {
        do {
            _ = try instance(overrides)
            return nil
        } catch {
            return error.message
        }
    }

    static func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    @Test(
        "the 300 SciFact queries match sentence-transformers' vectors",
        .enabled(if: EmbedFiles.scifact != nil, "BEIR SciFact is not next to the repository; set ORION_SCIFACT"))
    func scifactQueriesMatchSentenceTransformers() async throws {
        let dir = try #require(EmbedFiles.scifact)
        let queries = try String(contentsOfFile: dir + "/queries.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["text"] as? String)
        }
        let reference = try Data(contentsOf: URL(fileURLWithPath: dir + "/queries.f32")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(queries.count == 300 && reference.count == 300 * 384)
        let instance = try Self.instance()
        defer { withExtendedLifetime(instance) {} }  // the caller holds no reference to the instance
        let engine = try #require(instance.engine)
        var worst = 1.0
        for start in stride(from: 0, to: queries.count, by: 32) {
            let batch = Array(queries[start..<min(start + 32, queries.count)])
            let result = try await engine.embed(model: "", texts: batch)
            #expect(result.dimensions == 384 && result.count == batch.count)
            for i in batch.indices {
                let row = start + i
                let similarity = Self.cosine(result.vectors[i * 384..<(i + 1) * 384], reference[row * 384..<(row + 1) * 384])
                #expect(similarity >= 0.999, "query \(row): cosine \(similarity)")
                worst = min(worst, similarity)
            }
        }
        #expect(worst >= 0.999)
    }

    @Test func vectorsAreUnitLengthAndIndependentOfBatching() async throws {
        let instance = try Self.instance(["maxBatch": 2])
        defer { withExtendedLifetime(instance) {} }
        let engine = try #require(instance.engine)
        let texts = [
            String(repeating: "a long text about protein folding and heat ", count: 20), "short", "",
            "a medium sentence about cells", "Café 東京 🍕",
        ]
        let together = try await engine.embed(model: "all-MiniLM-L6-v2", texts: texts)
        #expect(together.count == texts.count && together.dimensions == 384)
        for (i, text) in texts.enumerated() {
            let alone = try await engine.embed(model: "", texts: [text])
            let row = together.vectors[i * 384..<(i + 1) * 384]
            #expect(abs(Self.cosine(row, row) - 1) < 1e-5, "text \(i) is not unit length")
            // Batched with longer texts (padding) and reordered by length, each vector is the same.
            #expect(Self.cosine(row, alone.vectors[0..<384]) > 0.99999, "text \(i) changed when batched")
        }
        let usage = try JSONValue.parse(together.usage)
        #expect((usage["prompt_tokens"]?.numberValue ?? 0) > Double(texts.count * 2))
        let empty = try await engine.embed(model: "", texts: [])
        #expect(empty.count == 0)
    }

    @Test func wrongCallsAreRefusedWithTheirReason() async throws {
        let instance = try Self.instance(["maxTexts": 3])
        defer { withExtendedLifetime(instance) {} }
        let engine = try #require(instance.engine)
        await #expect {
            _ = try await engine.embed(model: "text-embedding-3-small", texts: ["x"])
        } throws: { error in
            (error as? PluginError)?.code == .notFound && (error as? PluginError)?.message.contains("all-MiniLM-L6-v2") == true
        }
        await #expect {
            _ = try await engine.embed(model: "", texts: ["a", "b", "c", "d"])
        } throws: { error in
            (error as? PluginError)?.code == .invalidArgument && (error as? PluginError)?.message.contains("maxTexts") == true
        }
        await #expect(throws: PluginError.self) { _ = try await engine.chat(request: Data("{}".utf8)) }
    }

    @Test func callsPastTheQueueAreRefusedNotDropped() async throws {
        let instance = try Self.instance(["concurrency": 1, "queueLimit": 1])
        defer { withExtendedLifetime(instance) {} }
        let engine = try #require(instance.engine)
        // Each call takes well over a second, so all four overlap: one runs, one waits, two are refused.
        let texts = Array(repeating: String(repeating: "crowded queue of long texts ", count: 60), count: 48)
        let outcomes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    do {
                        let result = try await engine.embed(model: "", texts: texts)
                        return result.count == texts.count ? "ok" : "short"
                    } catch let error as PluginError {
                        return error.code == .resourceExhausted ? "busy" : "error: \(error)"
                    } catch {
                        return "error: \(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == "ok" }.count == 2, "\(outcomes)")
        #expect(outcomes.filter { $0 == "busy" }.count == 2, "\(outcomes)")
    }

    @Test func missingFilesAreRefusedWithTheSetUpCommand() throws {
        let missing = TestPlugins.temporaryDirectory() + "/absent"
        for key in ["runtimeLibrary", "model", "vocabulary"] {
            let message = try #require(Self.refusal([key: missing]), "\(key) pointing nowhere was accepted")
            #expect(message.contains(missing) && message.contains("scripts/embed-setup.sh"), "\(key): \(message)")
        }
        let directory = try #require(Self.refusal(["model": TestPlugins.temporaryDirectory()]))
        #expect(directory.contains("directory"))
    }

    @Test func aFileWithAnotherHashIsRefused() throws {
        let wrong = String(repeating: "0", count: 64)
        let model = try #require(Self.refusal(["modelSha256": wrong]))
        #expect(model.contains(EmbedFiles.modelSha256) && model.contains("modelSha256"), "\(model)")
        let runtime = try #require(Self.refusal(["runtimeSha256": wrong]))
        #expect(runtime.contains("runtimeSha256"), "\(runtime)")
        let malformed = try #require(Self.refusal(["modelSha256": String(repeating: "z", count: 64)]))
        #expect(malformed.contains("hexadecimal"), "\(malformed)")
        #expect(Self.refusal(["modelSha256": EmbedFiles.modelSha256.uppercased()]) == nil, "the hash is not case-sensitive")
    }

    @Test func aLibraryThatIsNotOnnxRuntimeIsRefused() throws {
        let message = try #require(Self.refusal(["runtimeLibrary": TestPlugins.path("fixture-no-entry")]))
        #expect(message.contains("OrtGetApiBase"), "\(message)")
    }

    @Test func aFileThatIsNotAModelIsRefused() throws {
        let path = TestPlugins.temporaryDirectory() + "/model.onnx"
        let bytes = Data("not an onnx model".utf8)
        try bytes.write(to: URL(fileURLWithPath: path))
        let sha = try #require(Self.refusal(["model": path, "modelSha256": String(repeating: "0", count: 64)]))
        // The refusal names the file's actual hash: pin that one.
        let actual = try #require(sha.split(whereSeparator: { !$0.isHexDigit }).first { $0.count == 64 && $0 != String(repeating: "0", count: 64) })
        let message = try #require(Self.refusal(["model": path, "modelSha256": String(actual)]))
        #expect(message.contains("loading the model"), "\(message)")
    }

    @Test func theConformanceKitPasses() async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("embed-local"), config: EmbedFiles.config())
        #expect(!reports.isEmpty)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }
}
