import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// A small in-memory retriever written with the SDK, used to test the SDK's retriever bridging,
/// the conformance kit and the Swift-side refusals (a rejected configuration).
///
/// Scoring: the number of query terms that occur in the document's fields (case-insensitive).
final class SwiftRetriever: OrionPlugin, RetrieverPlugin {
    struct Configuration: Decodable, Sendable {
        /// Creating fails when true, so the host's handling of a throwing init can be tested.
        var failCreate: Bool?
    }

    static let descriptor = PluginDescriptor(
        id: "fixture-swift-retriever", version: "1.0.0", capabilities: ["retrieval", "retrieval.fts"],
        configSchema: #"{"type":"object","additionalProperties":false,"properties":{"failCreate":{"type":"boolean"}}}"#,
        summary: "in-memory term-match retriever (test fixture)")

    struct Entry {
        var terms: Set<String>
        var metadata: [String: String]
    }

    struct State {
        var namespaces: [String: [Int64: Entry]] = [:]
        var checkpoint: UInt64 = 0
    }

    private let state = Mutex(State())

    init(configuration: Configuration, host: PluginHost) throws {
        if configuration.failCreate == true {
            throw PluginError(.config, "'failCreate' is true; set it to false")
        }
    }

    static func terms(_ text: String) -> Set<String> {
        Set(text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init))
    }

    func add(_ documents: DocumentBatch) throws(PluginError) {
        var prepared: [(String, Int64, Entry)] = []
        for document in documents {
            var terms = Set<String>()
            for field in document.fields { terms.formUnion(Self.terms(field.value.string)) }
            var metadata: [String: String] = [:]
            for pair in document.metadata { metadata[pair.key.string] = pair.value.string }
            prepared.append((document.namespace.string, document.id, Entry(terms: terms, metadata: metadata)))
        }
        state.withLock { state in
            for (ns, id, entry) in prepared { state.namespaces[ns, default: [:]][id] = entry }
        }
    }

    func remove(namespace: PluginString, ids: UnsafeBufferPointer<Int64>) throws(PluginError) {
        let ns = namespace.string
        let doomed = Array(ids)
        state.withLock { state in
            for id in doomed { state.namespaces[ns]?[id] = nil }
        }
    }

    func search(_ query: SearchQuery, into results: inout SearchResults) throws(PluginError) {
        let wanted = Self.terms(query.text.string)
        var filters: [String: String] = [:]
        for pair in query.filters { filters[pair.key.string] = pair.value.string }
        let ns = query.namespace.string
        let ranked: [(Int64, Int)] = state.withLock { state in
            (state.namespaces[ns] ?? [:]).compactMap { id, entry in
                guard filters.allSatisfy({ entry.metadata[$0.key] == $0.value }) else { return nil }
                let score = entry.terms.intersection(wanted).count
                return score > 0 ? (id, score) : nil
            }
        }
        for (id, score) in ranked.sorted(by: { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }).prefix(query.topK) {
            results.append(id: id, score: Float(score), source: .fts)
        }
    }

    func clear() throws(PluginError) {
        state.withLock { $0.namespaces = [:] }
    }

    func checkpoint(_ checkpoint: UInt64) throws(PluginError) {
        state.withLock { $0.checkpoint = checkpoint }
    }

    func stats() throws(PluginError) -> RetrieverStats {
        state.withLock { state in
            RetrieverStats(documentCount: UInt64(state.namespaces.values.reduce(0) { $0 + $1.count }), checkpoint: state.checkpoint)
        }
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(SwiftRetriever.self, host: host)
}
