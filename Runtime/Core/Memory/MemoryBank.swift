import Foundation
import GRDB
import Synchronization

/// One remembered Intent–Experience–Utility triplet.
public struct Memory: Sendable, Hashable {
    public var id: String
    /// The tenant namespace, e.g. `tenant_acme`.
    public var namespace: String
    public var session: String
    /// What the user tried to do: the text retrievers index.
    public var intent: String
    /// What the agent did and what happened.
    public var experience: String
    /// The Q-value, in [-1, 1]; 0 until the first outcome.
    public var utility: Double
    /// How many outcomes have updated the utility.
    public var outcomes: Int
    /// Unix epoch milliseconds of the last outcome, nil before the first.
    public var lastUsed: Int64?
    /// The intent's embedding, when one was given.
    public var embedding: [Float]?
    public var createdAt: Int64
    public var updatedAt: Int64
}

/// A memory to store.
public struct MemoryInput: Sendable, Hashable {
    /// Nil: a new random id.
    public var id: String?
    public var session: String
    public var intent: String
    public var experience: String
    public var embedding: [Float]?
    public init(id: String? = nil, session: String, intent: String, experience: String, embedding: [Float]? = nil) {
        self.id = id
        self.session = session
        self.intent = intent
        self.experience = experience
        self.embedding = embedding
    }
}

/// Why memory refused a call. `code` lets the gateway choose the HTTP status.
public struct MemoryError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable { case invalidArgument, notFound, conflict, unavailable }
    public var code: Code
    public var message: String
    public var description: String { message }
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Agent memory that learns (MemRL): triplets on the document store, two-phase retrieval
/// (``retrieve(namespace:tier:retriever:intent:vector:topK:)``) and Q-value updates from outcomes
/// (``feedback(namespace:runID:memoryIDs:outcome:isDefault:maxNext:now:)``).
///
/// A memory is a document of the store whose one text field is its intent, tagged with the
/// metadata `orion.kind = memory`, plus a row of the `memories` table (experience, utility,
/// outcome count, last use) written in the same transaction. Every retriever therefore indexes
/// memories like any document, and a utility update never touches the indexes.
public final class MemoryBank: Sendable {
    public let documents: DocumentIndex
    public let policy: MemoryPolicy
    /// False when `memory.memrlEnabled` is off: outcomes are not applied.
    public let learns: Bool
    /// Whether phase A may use the tier's fusion (hybrid) retrievers.
    public let allowsFusion: Bool
    /// The tier's `embeddings` engine: vectors for memories stored and intents searched as text.
    public let embedder: Embedder
    /// Rephrases long queries (`memory.queryExpansionEnabled`); nil: queries are searched as given.
    public let expander: (any QueryExpanding)?
    /// A uniform draw in [0, 1) for ε-greedy exploration.
    let draw: Mutex<any RandomNumberGenerator & Sendable>

    /// The metadata every memory document carries, and the filter phase A searches with.
    public static let kindKey = "orion.kind"
    public static let kindValue = "memory"
    static let intentField = "intent"

    public init(
        documents: DocumentIndex, policy: MemoryPolicy = .standard, learns: Bool = true, allowsFusion: Bool = true,
        expander: (any QueryExpanding)? = nil, random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()
    ) {
        self.expander = expander
        self.documents = documents
        self.policy = policy
        self.learns = learns
        self.allowsFusion = allowsFusion
        self.embedder = Embedder(registry: documents.registry)
        self.draw = Mutex(random)
    }

    var store: DocumentStore { documents.store }

    /// Unix epoch milliseconds.
    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Store, get, delete

    /// Stores (or replaces, by id) memories in `namespace`. A replaced memory keeps its utility
    /// and outcome count.
    ///
    /// With `tier`, a memory given without an embedding gets one from the tier's embeddings engine
    /// (of its intent), when the tier maps one. If that engine fails, nothing is stored.
    @discardableResult
    public func store(_ inputs: [MemoryInput], namespace: String, tier: String? = nil) async throws -> [Memory] {
        var inputs = inputs
        var experiences: [String: (session: String, experience: String)] = [:]
        for index in inputs.indices {
            let id = inputs[index].id ?? UUID().uuidString.lowercased()
            inputs[index].id = id
            let input = inputs[index]
            for (name, value) in [("session", input.session), ("intent", input.intent), ("experience", input.experience)] {
                guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw MemoryError(.invalidArgument, "memory \(id): '\(name)' is empty; every memory needs a session, an intent and an experience")
                }
            }
            guard experiences[id] == nil else { throw MemoryError(.invalidArgument, "memory id '\(id)' appears twice in one request") }
            experiences[id] = (input.session, input.experience)
        }
        // A memory id must not name a document that is not a memory (the two share a namespace).
        let ids = inputs.map { $0.id ?? "" }  // every id was set above
        let plainDocuments: [String] = try await store.pool.read { db in
            let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
            return try String.fetchAll(
                db,
                sql: "SELECT d.id FROM documents d LEFT JOIN memories m ON m.key = d.key WHERE d.namespace = ? AND d.id IN (\(placeholders)) AND m.key IS NULL",
                arguments: StatementArguments([namespace as any DatabaseValueConvertible] + ids.map { $0 as any DatabaseValueConvertible }))
        }
        if let taken = plainDocuments.first {
            throw MemoryError(.conflict, "id '\(taken)' names a document of this tenant that is not a memory; choose another id")
        }
        // Embedding comes after every check: a wrong request is refused as such, and costs no inference.
        if let tier {
            try await embedMissing(&inputs, tier: tier)
        }
        let documentInputs = zip(ids, inputs).map { id, input in
            DocumentInput(
                id: id, fields: [DocumentField(name: Self.intentField, value: input.intent)],
                metadata: [Self.kindKey: Self.kindValue, "orion.session": input.session], embedding: input.embedding)
        }
        let stored: [StoredDocument]
        do {
            stored = try await documents.add(documentInputs, namespace: namespace) { db, stored in
                for document in stored {
                    // Every stored document came from `documentInputs`, whose ids are keys of `experiences`.
                    let entry = experiences[document.id]!
                    try db.execute(
                        sql: """
                            INSERT INTO memories (key, session, experience) VALUES (?, ?, ?)
                            ON CONFLICT (key) DO UPDATE SET session = excluded.session, experience = excluded.experience
                            """,
                        arguments: [document.key, entry.session, entry.experience])
                }
            }
        } catch let error as DocumentStoreError {
            throw MemoryError(.invalidArgument, error.message)
        }
        return try memories(keys: stored.map(\.key), namespace: namespace)
    }

    /// Gives every input without an embedding the tier engine's vector of its intent.
    func embedMissing(_ inputs: inout [MemoryInput], tier: String) async throws {
        let missing = inputs.indices.filter { inputs[$0].embedding == nil }
        guard !missing.isEmpty else { return }
        let vectors: [[Float]]?
        do {
            vectors = try await embedder.embed(tier: tier, texts: missing.map { inputs[$0].intent })
        } catch {
            throw MemoryError(
                error.isInvalidInput ? .invalidArgument : .unavailable, "\(error.message); nothing was stored, retry or send an embedding")
        }
        guard let vectors else { return }
        for (index, vector) in zip(missing, vectors) { inputs[index].embedding = vector }
    }

    /// One memory of `namespace`, or nil.
    public func memory(id: String, namespace: String) throws -> Memory? {
        try store.pool.read { db in
            try Row.fetchOne(db, sql: Self.selectMemories + " WHERE d.namespace = ? AND d.id = ?", arguments: [namespace, id]).map(Self.memory)
        }
    }

    /// Memories by store key, restricted to `namespace`, in key order.
    func memories(keys: [Int64], namespace: String) throws -> [Memory] {
        guard !keys.isEmpty else { return [] }
        return try store.pool.read { db in
            try Self.memories(db, keys: keys, namespace: namespace).values.sorted { $0.createdAt < $1.createdAt }
        }
    }

    static func memories(_ db: Database, keys: [Int64], namespace: String) throws -> [Int64: Memory] {
        let placeholders = Array(repeating: "?", count: keys.count).joined(separator: ",")
        let rows = try Row.fetchAll(
            db, sql: selectMemories + " WHERE d.namespace = ? AND d.key IN (\(placeholders))",
            arguments: StatementArguments([namespace as any DatabaseValueConvertible] + keys.map { $0 as any DatabaseValueConvertible }))
        var out: [Int64: Memory] = [:]
        for row in rows { out[row["key"]] = try memory(row) }
        return out
    }

    /// Deletes memories by id from `namespace`; ids of other namespaces, unknown ids and documents
    /// that are not memories are left alone. Returns how many were deleted.
    @discardableResult
    public func delete(ids: [String], namespace: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let memoryIDs: [String] = try await store.pool.read { db in
            let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
            return try String.fetchAll(
                db, sql: "SELECT d.id FROM memories m JOIN documents d ON d.key = m.key WHERE d.namespace = ? AND d.id IN (\(placeholders))",
                arguments: StatementArguments([namespace as any DatabaseValueConvertible] + ids.map { $0 as any DatabaseValueConvertible }))
        }
        guard !memoryIDs.isEmpty else { return 0 }
        return try await documents.delete(ids: memoryIDs, namespace: namespace)
    }

    static let selectMemories = """
        SELECT d.key, d.id, d.namespace, d.fields, d.embedding, d.created_at, d.updated_at,
               m.session, m.experience, m.utility, m.outcomes, m.last_used
        FROM memories m JOIN documents d ON d.key = m.key
        """

    static func memory(_ row: Row) throws -> Memory {
        let fieldsText: String = row["fields"]
        let fields = try JSONDecoder().decode([DocumentField].self, from: Data(fieldsText.utf8))
        let embedding: Data? = row["embedding"]
        return Memory(
            id: row["id"], namespace: row["namespace"], session: row["session"],
            intent: fields.first { $0.name == intentField }?.value ?? "", experience: row["experience"],
            utility: row["utility"], outcomes: row["outcomes"], lastUsed: row["last_used"],
            embedding: embedding.map(DocumentStore.floats), createdAt: row["created_at"], updatedAt: row["updated_at"])
    }
}
