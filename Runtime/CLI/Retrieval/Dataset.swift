import Foundation
import OrionCore

/// A BEIR-format folder: corpus.jsonl, queries.jsonl, qrels.tsv, and optionally corpus.f32 /
/// queries.f32 (little-endian float32 rows, row i = line i) with meta.json giving `dim`.
struct Dataset {
    struct Query {
        var id: String
        var text: String
        var vector: [Float]?
    }

    var documents: [DocumentInput]
    var queries: [Query]
    /// query id → (document id → relevance).
    var qrels: [String: [String: Int]]
    var dimensions: Int?

    static func load(_ directory: String) throws -> Dataset {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let dims = try dimensions(metaAt: path("meta.json"))
        var documents = try readDocuments(path("corpus.jsonl"))
        if let dims, let vectors = try readVectors(path("corpus.f32"), dimensions: dims, rows: documents.count) {
            for i in documents.indices { documents[i].embedding = vectors[i] }
        }
        var queries: [Query] = []
        for (line, object) in try jsonLines(path("queries.jsonl")) {
            guard let id = object["_id"].map(stringValue), let text = object["text"] as? String else {
                throw DatasetError("queries.jsonl:\(line): each query needs \"_id\" and \"text\"")
            }
            queries.append(Query(id: id, text: text))
        }
        if let dims, let vectors = try readVectors(path("queries.f32"), dimensions: dims, rows: queries.count) {
            for i in queries.indices { queries[i].vector = vectors[i] }
        }
        return Dataset(documents: documents, queries: queries, qrels: try readQrels(path("qrels.tsv")), dimensions: dims)
    }

    static func dimensions(metaAt path: String) throws -> Int? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return (object?["dim"] as? Int) ?? (object?["dimensions"] as? Int)
    }

    /// corpus.jsonl: `{"_id", "title", "text", "metadata"}` per line.
    static func readDocuments(_ path: String) throws -> [DocumentInput] {
        try jsonLines(path).map { line, object in
            guard let id = object["_id"].map(stringValue) else { throw DatasetError("\((path as NSString).lastPathComponent):\(line): missing \"_id\"") }
            var fields: [DocumentField] = []
            if let title = object["title"] as? String, !title.isEmpty { fields.append(DocumentField(name: "title", value: title)) }
            if let text = object["text"] as? String { fields.append(DocumentField(name: "text", value: text)) }
            var metadata: [String: String] = [:]
            for (key, value) in object["metadata"] as? [String: Any] ?? [:] { metadata[key] = stringValue(value) }
            return DocumentInput(id: id, fields: fields, metadata: metadata)
        }
    }

    /// Rows of little-endian float32; nil when the file is absent.
    static func readVectors(_ path: String, dimensions: Int, rows: Int) throws -> [[Float]]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard data.count == rows * dimensions * 4 else {
            throw DatasetError("\((path as NSString).lastPathComponent) holds \(data.count / 4) floats; \(rows) rows of \(dimensions) need \(rows * dimensions)")
        }
        return data.withUnsafeBytes { raw in
            let floats = raw.bindMemory(to: Float.self)
            return (0..<rows).map { Array(floats[$0 * dimensions..<($0 + 1) * dimensions]) }
        }
    }

    static func readQrels(_ path: String) throws -> [String: [String: Int]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DatasetError("cannot read \(path)")
        }
        var qrels: [String: [String: Int]] = [:]
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let columns = line.split(separator: "\t").map(String.init)
            if n == 0, columns.first == "query-id" { continue }
            guard columns.count >= 3, let score = Int(columns[2]) else { throw DatasetError("qrels.tsv:\(n + 1): expected query-id, corpus-id, score") }
            qrels[columns[0], default: [:]][columns[1]] = score
        }
        return qrels
    }

    static func jsonLines(_ path: String) throws -> [(Int, [String: Any])] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DatasetError("cannot read \(path)") }
        var out: [(Int, [String: Any])] = []
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw DatasetError("\((path as NSString).lastPathComponent):\(n + 1): not a JSON object")
            }
            out.append((n + 1, object))
        }
        return out
    }

    static func stringValue(_ value: Any) -> String {
        switch value {
        case let string as String: string
        case let number as NSNumber: number.stringValue
        default: (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
        }
    }
}

struct DatasetError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A one-line progress report on standard error: count, rate, ETA.
struct Progress {
    let total: Int
    let label: String
    let start = Date()
    var lastPrint = Date.distantPast

    mutating func update(_ done: Int, force: Bool = false) {
        let now = Date()
        guard force || now.timeIntervalSince(lastPrint) >= 0.2 else { return }
        lastPrint = now
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %d/%d  %.0f/s  ETA %.0fs ", label, bar, done, total, rate, eta).utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}
