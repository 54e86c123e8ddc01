import Foundation
import HTTPTypes
import Hummingbird
import OrionCore
import OrionPluginHost

/// `/api/memory`: store, search, feedback, get, delete — always within the caller's tenant.
struct MemoryRoutes {
    let memory: MemoryBank
    let rbac: RuntimeConfig.RBAC

    static let storeSchema = BodySchema([
        "id": .optional(.string(1...200)), "session": .optional(.string(1...200)),
        "intent": .required(.string(1...10_000)), "experience": .required(.string(1...100_000)),
        "embedding": .optional(.numbers(1...8192)),
    ])
    static let searchSchema = BodySchema([
        "intent": .required(.string(1...10_000)), "vector": .optional(.numbers(1...8192)),
        "topK": .optional(.integer(1...100)), "retriever": .optional(.string(1...200)),
    ])
    static let feedbackSchema = BodySchema([
        "runId": .required(.string(1...200)), "memoryIds": .required(.strings(1...100)),
        "outcome": .optional(.oneOf(["success", "partial", "failure", "thumbs_up", "thumbs_down"])),
        "reward": .optional(.number(-1...1)),
    ])

    func add(to router: Router<GatewayContext>) {
        let group = router.group("api/memory")
        group.post { request, context in try await self.store(request, context) }
        group.post("search") { request, context in try await self.search(request, context) }
        group.post("feedback") { request, context in try await self.feedback(request, context) }
        group.get("{id}") { _, context in try await self.get(context) }
        group.delete("{id}") { _, context in try await self.delete(context) }
    }

    func store(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("memory:write", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.storeSchema.parse(request)
        let input = MemoryInput(
            id: body.string("id"), session: body.string("session") ?? "default", intent: body.string("intent") ?? "",
            experience: body.string("experience") ?? "", embedding: body.floats("embedding"))
        let stored = try await Self.mapping { try await memory.store([input], namespace: tenant.namespace, tier: tenant.tier.name) }
        guard let memory = stored.first else { throw GatewayError(.internalServerError, code: "INTERNAL", "the memory was not stored") }
        return try JSONResponse.encode(.created, MemoryBody(memory), context: context)
    }

    func search(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("memory:read", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.searchSchema.parse(request)
        let memory = self.memory
        let intent = body.string("intent") ?? ""
        // Without a vector, the tier's embeddings engine makes one (when its retrievers use vectors).
        let query = await memory.queryVector(
            tier: tenant.tier.name, retriever: body.string("retriever"), intent: intent, given: body.floats("vector"), namespace: tenant.namespace,
            tenantCapUSD: tenant.tenant.costCapUSD)
        let answer = try await Self.mapping {
            try await Blocking.run {
                try memory.retrieve(
                    namespace: tenant.namespace, tier: tenant.tier.name, retriever: body.string("retriever"), intent: intent,
                    query: query, topK: body.int("topK") ?? 5)
            }
        }
        let hits = answer.hits.map {
            SearchBody.Hit(
                memory: MemoryBody($0.memory), similarity: $0.similarity, rawSimilarity: $0.rawSimilarity, utility: $0.utility, score: $0.score,
                explored: $0.explored)
        }
        return try JSONResponse.encode(
            .ok, SearchBody(
                retriever: answer.retriever, candidates: answer.candidates, degraded: answer.degradedReason,
                embedded: query.isEngineMade, hits: hits), context: context)
    }

    func feedback(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("memory:write", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.feedbackSchema.parse(request)
        let outcome = try Self.outcome(body)
        let memory = self.memory
        let results = try await Self.mapping {
            try await Blocking.run {
                try memory.feedback(namespace: tenant.namespace, runID: body.string("runId") ?? "", memoryIDs: body.strings("memoryIds") ?? [], outcome: outcome)
            }
        }
        let list = results.map {
            FeedbackBody.Result(
                id: $0.id, effect: $0.effect.rawValue, reward: $0.reward, previousUtility: $0.previousUtility, utility: $0.utility, outcomes: $0.outcomes)
        }
        return try JSONResponse.encode(.ok, FeedbackBody(results: list), context: context)
    }

    func get(_ context: GatewayContext) async throws -> Response {
        try context.authorize("memory:read", rbac)
        let tenant = try context.requireTenant()
        let id = context.parameters.get("id") ?? ""
        let memory = self.memory
        guard let found = try await Blocking.run({ try memory.memory(id: id, namespace: tenant.namespace) }) else { throw GatewayError.notFound("no memory '\(id)' in your tenant") }
        return try JSONResponse.encode(.ok, MemoryBody(found), context: context)
    }

    func delete(_ context: GatewayContext) async throws -> Response {
        try context.authorize("memory:write", rbac)
        let tenant = try context.requireTenant()
        let id = context.parameters.get("id") ?? ""
        guard try await memory.delete(ids: [id], namespace: tenant.namespace) == 1 else { throw GatewayError.notFound("no memory '\(id)' in your tenant") }
        return Response(status: .noContent)
    }

    /// The outcome a feedback body gives: exactly one of `outcome` (a name) and `reward`.
    static func outcome(_ body: [String: JSONValue]) throws -> Outcome {
        switch (body.string("outcome"), body.double("reward")) {
        case (let name?, nil): Outcome(name: name) ?? .success  // the schema admits only known names
        case (nil, let reward?): .reward(reward)
        default: throw GatewayError.badRequest("give exactly one of 'outcome' and 'reward'", field: "/outcome")
        }
    }

    /// Runs `body`, turning memory's refusals into HTTP errors.
    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as MemoryError {
            switch error.code {
            case .invalidArgument: throw GatewayError.badRequest(error.message)
            case .notFound: throw GatewayError.notFound(error.message)
            case .conflict: throw GatewayError(.conflict, code: "CONFLICT", error.message)
            case .unavailable: throw GatewayError(.serviceUnavailable, code: "UNAVAILABLE", error.message, headers: [.retryAfter: "5"])
            }
        }
    }
}

/// The JSON of a memory (schema `Memory` in openapi.json).
struct MemoryBody: Encodable {
    var id, session, intent, experience: String
    var utility: Double
    var outcomes: Int
    var lastUsed: Int64?
    var createdAt, updatedAt: Int64
    var hasEmbedding: Bool

    init(_ memory: Memory) {
        id = memory.id
        session = memory.session
        intent = memory.intent
        experience = memory.experience
        utility = memory.utility
        outcomes = memory.outcomes
        lastUsed = memory.lastUsed
        createdAt = memory.createdAt
        updatedAt = memory.updatedAt
        hasEmbedding = memory.embedding != nil
    }
}

/// Schema `SearchResult`.
struct SearchBody: Encodable {
    struct Hit: Encodable {
        var memory: MemoryBody
        var similarity, rawSimilarity, utility, score: Double
        var explored: Bool
    }
    var retriever: String
    var candidates: Int
    var degraded: String?
    /// True when the tier's embeddings engine made the query vector.
    var embedded: Bool
    var hits: [Hit]
}

/// Schema `FeedbackResult`.
struct FeedbackBody: Encodable {
    struct Result: Encodable {
        var id, effect: String
        var reward, previousUtility, utility: Double
        var outcomes: Int
    }
    var results: [Result]
}
