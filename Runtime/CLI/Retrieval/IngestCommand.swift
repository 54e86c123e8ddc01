import ArgumentParser
import Foundation
import Logging
import OrionCore
import OrionPluginSDK

/// `orion ingest FILE.jsonl [--vectors FILE.f32] --tenant T`: documents into the document store.
///
/// Each line is `{"_id", "title", "text", "metadata"}` (BEIR's corpus format). With `--vectors`,
/// row i of the float32 file is the embedding of line i; without it, the engine `--tier` maps to
/// `embeddings` embeds each document's text fields (joined by a space), unless `--no-embed`.
/// A running server picks the documents up on its next reload (`kill -HUP`), when its retrievers
/// catch up with the store.
struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Store documents from a JSONL file for a tenant.")

    @Argument(help: "A JSONL file: one {\"_id\", \"title\", \"text\", \"metadata\"} object per line.") var file: String
    @Option(help: "Little-endian float32 embeddings, one row per line of FILE.") var vectors: String?
    @Option(help: "The tenant whose namespace receives the documents.") var tenant: String
    @Option(help: "Documents per transaction.") var batch = 500
    @Option(help: "The tier whose embeddings engine embeds documents given without --vectors (default: plugins.defaultTier).")
    var tier: String?
    @Flag(help: "Store documents without vectors when no --vectors file is given.") var noEmbed = false
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.loadConfig()
        var documents = try Dataset.readDocuments(file)
        var embeddedBy: String?
        if let vectors {
            let size = (try FileManager.default.attributesOfItem(atPath: vectors)[.size] as? NSNumber)?.intValue ?? 0
            guard !documents.isEmpty, size % (4 * documents.count) == 0 else {
                throw ValidationError("\(vectors) holds \(size / 4) floats, which is not a whole number of rows for \(documents.count) documents")
            }
            let rows = try Dataset.readVectors(vectors, dimensions: size / 4 / documents.count, rows: documents.count) ?? []
            for i in documents.indices { documents[i].embedding = rows[i] }
        } else if !noEmbed, let spec = try StandaloneEmbedder.spec(tier: tier ?? config.plugins.defaultTier, config: config) {
            let embedder = try StandaloneEmbedder(spec: spec, config: config)
            var progress = Progress(total: documents.count, label: "embed")
            let texts = documents.map { $0.fields.map(\.value).joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines) }
            let rows = try await embedder.embed(texts) { progress.update($0) }
            progress.finish()
            for i in documents.indices { documents[i].embedding = rows[i] }
            embeddedBy = spec.id
        }
        let store = try DocumentStore(path: config.resolvedDocumentStorePath)
        let namespace = Namespace.forTenant(tenant)
        var progress = Progress(total: documents.count, label: "ingest")
        for start in stride(from: 0, to: documents.count, by: max(1, batch)) {
            let slice = Array(documents[start..<min(start + max(1, batch), documents.count)])
            _ = try store.upsert(slice, namespace: namespace)
            progress.update(start + slice.count)
        }
        progress.update(documents.count, force: true)
        progress.finish()
        let seconds = Date().timeIntervalSince(progress.start)
        let how = vectors != nil ? "with vectors from \(vectors!)" : embeddedBy.map { "embedded by '\($0)'" } ?? "without vectors"
        print("stored \(documents.count) documents for tenant '\(tenant)' (namespace \(namespace)) in \(String(format: "%.2f", seconds)) s, \(how)")
        print("store: \(store.path), \(try store.count()) documents in all, revision \(try store.revision())")
    }
}

/// `orion search "text" --tenant T --retriever ID`: ranked results with each source's rank.
struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Search a tenant's documents with one retriever instance.")

    @Argument(help: "The query text.") var text: String
    @Option(help: "The tenant to search.") var tenant: String
    @Option(help: "A retriever instance id from plugins.d (e.g. fts, vector, hybrid).") var retriever: String
    @Option(name: .customLong("top-k"), help: "Results to show.") var topK = 10
    @Option(help: "Metadata equality filter key=value; repeat for more.") var filter: [String] = []
    @Option(help: "The tier whose embeddings engine embeds the query for a vector or hybrid retriever (default: plugins.defaultTier).")
    var tier: String?
    @Flag(help: "Search by text only, even with a vector or hybrid retriever.") var noEmbed = false
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let (config, logger, runtime) = try options.makeRuntime(logLevel: .error)
        let index = DocumentIndex(store: try DocumentStore(path: config.resolvedDocumentStorePath), registry: runtime.registry, logger: logger)
        await runtime.addPreparer(index)
        try await runtime.reload(reason: "search")
        var filters: [String: String] = [:]
        for item in filter {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--filter takes key=value, got '\(item)'") }
            filters[parts[0]] = parts[1]
        }
        var vector: [Float]?
        if !noEmbed, index.usesQueryVector(instanceID: retriever) {
            do {
                vector = try await Embedder(registry: runtime.registry).embed(tier: tier ?? config.plugins.defaultTier, texts: [text])?.first
            } catch {
                // As the server does: the search goes on by text, and says why.
                print("degraded: the query was not embedded (\(error)); searching by text only")
            }
        }
        let answer = try index.search(
            instanceID: retriever, namespace: Namespace.forTenant(tenant), text: text, vector: vector, topK: topK, filters: filters)
        if let reason = answer.degradedReason { print("degraded: \(reason)") }
        for (rank, hit) in answer.hits.enumerated() {
            let title = hit.document.fields.first { $0.name == "title" }?.value ?? hit.document.fields.first?.value ?? ""
            let sources = hit.details.map { "\($0.source)#\($0.sourceIndex):\($0.rank == 0 ? "-" : String($0.rank))" }.joined(separator: " ")
            print(String(format: "%3d  %9.4f  %@  %@  %@", rank + 1, hit.score, hit.document.id as NSString, String(title.prefix(70)) as NSString, sources as NSString))
        }
        if answer.hits.isEmpty { print("no results") }
        await runtime.shutdown()
    }
}
