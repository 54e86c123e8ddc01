import ArgumentParser
import Foundation
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionWordPiece

/// `orion bench embed`: the default tier's embeddings engine (embed-local in the default
/// deployment) at batch 1 and 32, on 1 and 2 threads, against the same model, token ids and
/// threads through the Python pipeline (scripts/embed_baseline.py: Hugging Face `tokenizers`,
/// ONNX Runtime's Python API, numpy pooling) in the same run.
///
/// Each figure is the fastest of `--rounds` passes over the texts, one call at a time, text in and
/// normalised vector out on both sides.
struct BenchEmbed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed", abstract: "Embeddings per second, model load time and memory of the embeddings engine, against Python.")

    @Option(help: "JSON lines with a \"text\" each (BEIR queries.jsonl or corpus.jsonl).")
    var texts = "../shared/bench/scifact/queries.jsonl"
    @Option(help: "Texts used (the first N).") var count = 300
    @Option(help: "Passes per figure; the fastest counts.") var rounds = 3
    @Option(help: "The engine instance id (default: the one the default tier maps to 'embeddings').") var instance: String?
    @Flag(help: "Skip the Python baseline.") var noBaseline = false
    @Flag(help: "End with one JSON object.") var json = false
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        guard count >= 1, rounds >= 1 else { throw ValidationError("--count and --rounds must be at least 1") }
    }

    func run() async throws {
        #if DEBUG
        print("note: this is a debug build; run `swift build -c release` and .build/release/orion for meaningful figures")
        #endif
        let (config, _, scratch) = try options.benchDeployment()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let inputs = try Self.loadTexts(texts, count: count)
        guard let spec = try StandaloneEmbedder.spec(id: instance, tier: config.plugins.defaultTier, config: config) else {
            throw ValidationError(
                "no embeddings engine: give --instance ID, or map 'embeddings' in tier '\(config.plugins.defaultTier)' of \(config.plugins.directory)")
        }

        var figures: [String: Double] = [:]
        var rows: [(label: String, orion: Double, python: Double?)] = []
        var baseline: Baseline?
        if !noBaseline {
            do {
                baseline = try Self.baselineInputs(spec: spec, texts: inputs, scratch: scratch)
            } catch {
                print("baseline unavailable: \(error)")
            }
        }
        for threads in [1, 2] {
            let started = ContinuousClock.now
            let embedder = try StandaloneEmbedder(
                spec: spec, config: config, overrides: ["threads": .number(Double(threads)), "concurrency": .number(1)])
            if threads == 1 { figures["load_s"] = BenchRetrieval.seconds(ContinuousClock.now - started) }
            let engine = embedder.engine
            var python: [String: Double] = [:]
            if let baseline {
                do {
                    python = try Self.runBaseline(baseline, threads: threads, rounds: rounds)
                } catch {
                    print("baseline unavailable: \(error)")
                }
            }
            for batch in [1, 32] {
                let batches = stride(from: 0, to: inputs.count, by: batch).map { Array(inputs[$0..<min($0 + batch, inputs.count)]) }
                _ = try await engine.embed(model: "", texts: batches[0])  // warm-up
                var best = Double.infinity
                for _ in 0..<rounds {
                    let start = ContinuousClock.now
                    for texts in batches { _ = try await engine.embed(model: "", texts: texts) }
                    best = min(best, BenchRetrieval.seconds(ContinuousClock.now - start))
                }
                let eps = Double(inputs.count) / best
                figures["eps_batch\(batch)_t\(threads)"] = eps
                if let reference = python[String(batch)] { figures["python_eps_batch\(batch)_t\(threads)"] = reference }
                rows.append(("batch \(batch), \(threads) thread\(threads == 1 ? "" : "s")", eps, python[String(batch)]))
            }
            withExtendedLifetime(embedder) {}
        }
        figures["rss_mb"] = BenchRetrieval.residentMegabytes()

        print("engine '\(spec.id)' (\(spec.plugin)): \(inputs.count) texts from \(texts)")
        print("  configuration         embeddings/s   python/s   ratio")
        for row in rows {
            let python = row.python.map { String(format: "%8.1f   %5.2f×", $0, row.orion / $0) } ?? "       —       —"
            print(String(format: "  %-20@ %12.1f   %@", row.label as NSString, row.orion, python))
        }
        if let baseline { print(String(format: "  tokenising            %.0f µs per text (the engine's WordPiece, part of its figures)", baseline.tokenizeMicroseconds)) }
        print(String(format: "  model load            %.2f s (library, hash check, session, probe)", figures["load_s"] ?? 0))
        print(String(format: "  resident              %.0f MB (the whole process, read at the end)", figures["rss_mb"] ?? 0))
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// The first `count` texts of a JSON-lines file.
    static func loadTexts(_ path: String, count: Int) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read '\(path)'; give --texts FILE (JSON lines with a \"text\" each)")
        }
        var texts: [String] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where texts.count < count {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let text = object["text"] as? String else {
                throw ValidationError("'\(path)': line \(texts.count + 1) is not a JSON object with a \"text\" string")
            }
            texts.append(text)
        }
        guard !texts.isEmpty else { throw ValidationError("'\(path)' has no texts") }
        return texts
    }

    struct Baseline {
        var model: String
        var tokenizer: String
        var texts: String
        var maxTokens: Int
        /// The engine's tokenisation alone, per text (part of both sides' figures).
        var tokenizeMicroseconds: Double
    }

    /// The baseline's inputs: the model, the `tokenizer.json` beside the engine's vocabulary, and
    /// the texts written to a scratch file.
    static func baselineInputs(spec: InstanceSpec, texts: [String], scratch: String) throws -> Baseline {
        guard let model = spec.config["model"]?.stringValue, let vocabulary = spec.config["vocabulary"]?.stringValue else {
            throw ValidationError("instance '\(spec.id)' names no 'model' and 'vocabulary' file")
        }
        let maxTokens = spec.config["maxTokens"]?.numberValue.map(Int.init) ?? 256
        let tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary, maxTokens: maxTokens)
        let tokenizeSeconds = BenchRetrieval.fastestPass(of: 5) {
            for text in texts { _ = tokenizer.encode(text) }
        }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let path = (scratch as NSString).appendingPathComponent("texts.json")
        try JSONSerialization.data(withJSONObject: texts).write(to: URL(fileURLWithPath: path))
        return Baseline(
            model: model, tokenizer: ((vocabulary as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer.json"),
            texts: path, maxTokens: maxTokens, tokenizeMicroseconds: tokenizeSeconds * 1e6 / Double(texts.count))
    }

    /// Runs scripts/embed_baseline.py with the packages scripts/embed-setup.sh installed.
    static func runBaseline(_ baseline: Baseline, threads: Int, rounds: Int) throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "scripts/embed_baseline.py", "--model", baseline.model, "--tokenizer", baseline.tokenizer, "--texts", baseline.texts,
            "--max-tokens", "\(baseline.maxTokens)", "--threads", "\(threads)", "--batches", "1,32", "--rounds", "\(rounds)",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = ".deps/python:.deps/tools"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = data.split(separator: UInt8(ascii: "\n")).last,
            let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Double]
        else {
            throw ValidationError("scripts/embed_baseline.py failed (run from the repository after scripts/embed-setup.sh): \(String(decoding: data.suffix(400), as: UTF8.self))")
        }
        return object
    }
}
