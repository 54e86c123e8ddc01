import Foundation
import OrionONNXRuntime
import OrionPluginABI
import OrionPluginSDK
import OrionWordPiece

/// `embed-local`: sentence embeddings on the CPU, offline — a BERT-family encoder in ONNX format
/// run by ONNX Runtime, with BERT's WordPiece tokenizer, mean pooling over the attention mask and
/// L2 normalisation. An engine that offers embeddings only.
final class EmbedLocal: OrionPlugin, EnginePlugin {
    /// - Configuration keys (paths absolute, or relative to the server's working directory):
    ///   - `runtimeLibrary` (path, required): `libonnxruntime.so` (the `onnxruntime` wheel's
    ///     `onnxruntime/capi/libonnxruntime.so.<version>`). Loaded once per process, never unloaded.
    ///   - `runtimeSha256` (hex, optional): the library's sha256; a different file is refused (the
    ///     wheel's library differs per platform, so the default deployment does not pin it).
    ///   - `model` (path, required): the ONNX encoder (inputs `input_ids`, `attention_mask`,
    ///     optionally `token_type_ids`; first output `[batch, sequence, hidden]`).
    ///   - `modelSha256` (hex, required): the model file's sha256; a different file is refused.
    ///   - `vocabulary` (path, required): the WordPiece `vocab.txt` the model was trained with.
    ///   - `modelName` (string, default `all-MiniLM-L6-v2`): the name callers may ask for; an empty
    ///     model name in a call means this one.
    ///   - `maxTokens` (integer 3…512, default 256): tokens per text, `[CLS]` and `[SEP]` included;
    ///     longer texts are cut.
    ///   - `threads` (integer 1…64, default 1): the session's intra-op threads. With 1, each
    ///     inference runs on its own thread; with more, concurrent inferences share that pool.
    ///   - `concurrency` (integer 1…64, default 2): inferences running at once.
    ///   - `queueLimit` (integer 0…100000, default 256): calls waiting for a free slot; one more is
    ///     refused as resource-exhausted.
    ///   - `maxBatch` (integer 1…1024, default 32): texts per inference; a longer call is split
    ///     (texts of similar length are batched together to spare padding).
    ///   - `maxTexts` (integer 1…100000, default 2048): texts per call.
    ///   - `spinning` (bool, default false): let idle intra-op threads spin-wait (lower latency
    ///     with `threads` > 1, at the cost of burnt CPU).
    struct Configuration: Decodable, Sendable {
        var runtimeLibrary = ""
        var runtimeSha256: String?
        var model = ""
        var modelSha256 = ""
        var vocabulary = ""
        var modelName = "all-MiniLM-L6-v2"
        var maxTokens = 256
        var threads = 1
        var concurrency = 2
        var queueLimit = 256
        var maxBatch = 32
        var maxTexts = 2048
        var spinning = false

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            runtimeLibrary = try c.decodeIfPresent(String.self, forKey: .runtimeLibrary) ?? runtimeLibrary
            runtimeSha256 = try c.decodeIfPresent(String.self, forKey: .runtimeSha256)
            model = try c.decodeIfPresent(String.self, forKey: .model) ?? model
            modelSha256 = try c.decodeIfPresent(String.self, forKey: .modelSha256) ?? modelSha256
            vocabulary = try c.decodeIfPresent(String.self, forKey: .vocabulary) ?? vocabulary
            modelName = try c.decodeIfPresent(String.self, forKey: .modelName) ?? modelName
            maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? maxTokens
            threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? threads
            concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? concurrency
            queueLimit = try c.decodeIfPresent(Int.self, forKey: .queueLimit) ?? queueLimit
            maxBatch = try c.decodeIfPresent(Int.self, forKey: .maxBatch) ?? maxBatch
            maxTexts = try c.decodeIfPresent(Int.self, forKey: .maxTexts) ?? maxTexts
            spinning = try c.decodeIfPresent(Bool.self, forKey: .spinning) ?? spinning
        }
        enum CodingKeys: String, CodingKey {
            case runtimeLibrary, runtimeSha256, model, modelSha256, vocabulary, modelName, maxTokens, threads, concurrency
            case queueLimit, maxBatch, maxTexts, spinning
        }
    }

    static let descriptor = PluginDescriptor(
        id: "embed-local", version: "1.0.0", capabilities: ["embeddings"],
        configSchema: """
            {"type":"object","additionalProperties":false,"required":["runtimeLibrary","model","modelSha256","vocabulary"],
            "properties":{
            "runtimeLibrary":{"type":"string","minLength":1},
            "runtimeSha256":{"type":"string","minLength":64,"maxLength":64},
            "model":{"type":"string","minLength":1},
            "modelSha256":{"type":"string","minLength":64,"maxLength":64},
            "vocabulary":{"type":"string","minLength":1},
            "modelName":{"type":"string","minLength":1},
            "maxTokens":{"type":"integer","minimum":3,"maximum":512},
            "threads":{"type":"integer","minimum":1,"maximum":64},
            "concurrency":{"type":"integer","minimum":1,"maximum":64},
            "queueLimit":{"type":"integer","minimum":0,"maximum":100000},
            "maxBatch":{"type":"integer","minimum":1,"maximum":1024},
            "maxTexts":{"type":"integer","minimum":1,"maximum":100000},
            "spinning":{"type":"boolean"}}}
            """,
        summary: "Sentence embeddings on the CPU with ONNX Runtime (all-MiniLM-L6-v2 by default), offline")

    let configuration: Configuration
    let tokenizer: WordPieceTokenizer
    let encoder: Encoder
    let gate: Gate
    let host: PluginHost

    init(configuration: Configuration, host: PluginHost) throws {
        do throws(EmbedError) {
            let runtime = try Paths.file(configuration.runtimeLibrary, role: "ONNX Runtime library", key: "runtimeLibrary")
            if let pinned = configuration.runtimeSha256 {
                try Paths.verify(runtime, sha256: pinned, role: "ONNX Runtime library", key: "runtimeSha256")
            }
            let model = try Paths.file(configuration.model, role: "model", key: "model")
            try Paths.verify(model, sha256: configuration.modelSha256, role: "model", key: "modelSha256")
            let vocabulary = try Paths.file(configuration.vocabulary, role: "vocabulary", key: "vocabulary")
            do {
                tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary, maxTokens: configuration.maxTokens)
            } catch {
                throw EmbedError.config(error.message)
            }
            encoder = try Encoder(
                runtime: runtime, model: model, threads: configuration.threads, spinning: configuration.spinning,
                padding: tokenizer.padding)
        } catch {
            throw PluginError(.config, error.message)
        }
        self.configuration = configuration
        self.host = host
        gate = Gate(slots: configuration.concurrency, queueLimit: configuration.queueLimit)
    }

    func embed(model: String, texts: [String]) async throws -> Embeddings {
        guard model.isEmpty || model == configuration.modelName else {
            throw PluginError(.notFound, "this instance embeds with '\(configuration.modelName)', not '\(model)'")
        }
        guard texts.count <= configuration.maxTexts else {
            throw PluginError(.invalidArgument, "\(texts.count) texts in one call; at most \(configuration.maxTexts) (maxTexts)")
        }
        guard !texts.isEmpty else { return Embeddings(vectors: [], dimensions: encoder.dimensions) }
        try await gate.enter()
        defer { gate.leave() }
        let tokenizer = self.tokenizer, encoder = self.encoder, maxBatch = configuration.maxBatch
        let started = host.monotonicNanoseconds()
        let result: Result<(vectors: [Float], tokens: Int), EmbedError> = await withCheckedContinuation { continuation in
            // Inference blocks its thread for milliseconds: off the cooperative pool.
            DispatchQueue.global().async {
                continuation.resume(returning: Result { () throws(EmbedError) in
                    let ids = texts.map(tokenizer.encode)
                    return (try encoder.embed(ids, maxBatch: maxBatch), ids.reduce(0) { $0 + $1.count })
                })
            }
        }
        switch result {
        case .success(let (vectors, tokens)):
            host.record(histogram: "embed_local_seconds", Double(host.monotonicNanoseconds() - started) / 1e9)
            host.increment(counter: "embed_local_texts_total", by: Int64(texts.count))
            let usage = #"{"prompt_tokens":\#(tokens),"total_tokens":\#(tokens)}"#
            return Embeddings(vectors: vectors, dimensions: encoder.dimensions, usage: Data(usage.utf8))
        case .failure(let error):
            throw PluginError(.internal, error.message)
        }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(EmbedLocal.self, host: host)
}
