import Foundation
import HTTPTypes
import Hummingbird
import OrionCore
import Synchronization

/// `POST /v1/chat`: one chat turn through the run runner — the tenant's memories retrieved
/// two-phase, handed to the tier's engine as context, the call priced, recorded and settled against
/// the budgets, the outcome fed back to the memories used. `POST /v1/chat/feedback` replaces a
/// chat's implied success with the user's rating.
struct ChatRoutes {
    let runs: RunRunner
    let engines: ChatEngines
    let rbac: RuntimeConfig.RBAC

    static let chatSchema = BodySchema([
        "session": .optional(.string(1...200)), "message": .required(.string(1...100_000)), "model": .optional(.string(1...200)),
        "topK": .optional(.integer(0...20)), "maxTokens": .optional(.integer(1...1_000_000)), "remember": .optional(.bool),
        "runId": .optional(.string(1...200)),
    ])
    static let feedbackSchema = BodySchema([
        "runId": .required(.string(1...200)),
        "outcome": .optional(.oneOf(["success", "partial", "failure", "thumbs_up", "thumbs_down"])), "reward": .optional(.number(-1...1)),
    ])

    func add(to router: Router<GatewayContext>) {
        router.post("v1/chat") { request, context in try await self.chat(request, context) }
        router.post("v1/chat/feedback") { request, context in try await self.feedback(request, context) }
    }

    /// The system prompt that hands the memories to the engine, most useful first.
    static func systemPrompt(_ memories: [MemoryHit]) -> String {
        guard !memories.isEmpty else { return "You are a helpful assistant." }
        let lines = memories.enumerated().map { "\($0.offset + 1). When: \($0.element.memory.intent)\n   What worked: \($0.element.memory.experience)" }
        return "You are a helpful assistant. Experience from earlier runs that may help, most useful first:\n" + lines.joined(separator: "\n")
    }

    func chat(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.chatSchema.parse(request)
        // A chat that names no session is its run's memory session "default" and, for the budget, a
        // session of its own (only the tenant's cap spans such chats).
        let session = body.string("session") ?? "default"
        var account = try OpenAIRoutes.account(request, context, tenant: tenant)
        if let named = body.string("session") {
            account.session = named
            account.isSingleCallSession = false
        }
        let message = body.string("message") ?? ""
        let model = body.string("model") ?? ""
        let remember = body.bool("remember") ?? false
        let answered = Mutex<EngineAnswer?>(nil)
        let engines = self.engines
        let maxTokens = body.int("maxTokens")
        let record: RunRecord
        do {
            record = try await MemoryRoutes.mapping {
                try await runs.run(
                    RunRequest(
                        namespace: tenant.namespace, tier: tenant.tier.name, session: session, kind: .chat, intent: message,
                        topK: body.int("topK") ?? 5, id: body.string("runId"))
                ) { run in
                    var object: [String: Any] = [
                        "messages": [["role": "system", "content": Self.systemPrompt(run.memories)], ["role": "user", "content": message]],
                    ]
                    if !model.isEmpty { object["model"] = model }
                    if let maxTokens { object["max_tokens"] = maxTokens }
                    let answer = try await engines.complete(ChatPayload(object: object), for: account)
                    answered.withLock { $0 = answer }
                    return .chat(newExperience: remember ? Self.text(of: answer) : nil)
                }
            }
        } catch let error as EngineError {
            throw OpenAIRoutes.plainError(error)
        }
        guard let answer = answered.withLock({ $0 }) else { throw GatewayError(.internalServerError, code: "INTERNAL", "the chat ended without an answer") }
        let memories = try await Blocking.run { [memory = runs.memory] in
            try record.retrievedMemoryIDs.compactMap { try memory.memory(id: $0, namespace: tenant.namespace) }
        }
        var object: [String: Any] = [
            "runId": record.id, "session": session, "answer": Self.text(of: answer), "engine": answer.engine, "model": answer.model,
            "usage": answer.usage.json, "estimated": answer.usage.estimated, "fallbacks": answer.fallbacks,
            "memories": memories.map { ["id": $0.id, "intent": $0.intent, "experience": $0.experience, "utility": $0.utility] as [String: Any] },
        ]
        switch answer.cost {
        case .priced(let nano):
            object["costNanoUsd"] = nano
            object["costUsd"] = Double(nano) / 1e9
        case .unpriced(let reason):
            object["unpriced"] = reason
        }
        if let degraded = record.degradedReason { object["degraded"] = degraded }
        if let newMemory = record.newMemoryID { object["newMemoryId"] = newMemory }
        return try JSONResponse.make(.ok, object, headers: [OpenAIRoutes.requestIDHeader: account.requestID], context: context)
    }

    func feedback(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.feedbackSchema.parse(request)
        let outcome = try MemoryRoutes.outcome(body)
        let runs = self.runs
        let (record, results) = try await MemoryRoutes.mapping {
            try await Blocking.run { try runs.feedback(namespace: tenant.namespace, runID: body.string("runId") ?? "", outcome: outcome) }
        }
        let object: [String: Any] = [
            "runId": record.id, "outcome": record.outcome ?? NSNull(), "reward": record.reward ?? NSNull(),
            "memories": results.map { ["id": $0.id, "effect": $0.effect.rawValue, "utility": $0.utility] as [String: Any] },
        ]
        return try JSONResponse.make(.ok, object, context: context)
    }

    /// The answer's text (the first choice's message content).
    static func text(of answer: EngineAnswer) -> String {
        let object = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
        let message = (object?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
        return message?["content"] as? String ?? ""
    }
}
