import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrionCore
import OrionPluginSDK
import Synchronization

/// `POST /v1/chat`: one chat turn through the run runner — the tenant's memories retrieved
/// two-phase, handed to the tier's engine as context, the call priced, recorded and settled against
/// the budgets, the outcome fed back to the memories used. With `stream: true` the answer comes as
/// Server-Sent Events and the run can be cancelled while it streams (`POST /v1/runs/{id}/cancel`).
/// `POST /v1/chat/feedback` replaces a chat's implied success with the user's rating.
struct ChatRoutes {
    let runs: RunRunner
    let engines: ChatEngines
    let rbac: RuntimeConfig.RBAC

    static let chatSchema = BodySchema([
        "session": .optional(.string(1...200)), "message": .required(.string(1...100_000)), "model": .optional(.string(1...200)),
        "topK": .optional(.integer(0...20)), "maxTokens": .optional(.integer(1...1_000_000)), "remember": .optional(.bool),
        "runId": .optional(.string(1...200)), "stream": .optional(.bool),
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

    /// One chat turn as asked.
    struct Turn: Sendable {
        var runID: String
        var session: String
        var account: EngineAccount
        var message: String
        var model: String
        var remember: Bool
        var maxTokens: Int?
        var topK: Int
    }

    func chat(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.chatSchema.parse(request)
        // A chat that names no session is its run's memory session "default" and, for the budget, a
        // session of its own (only the tenant's cap spans such chats).
        var account = try OpenAIRoutes.account(request, context, tenant: tenant)
        if let named = body.string("session") {
            account.session = named
            account.isSingleCallSession = false
        }
        let turn = Turn(
            runID: body.string("runId") ?? UUID().uuidString.lowercased(), session: body.string("session") ?? "default", account: account,
            message: body.string("message") ?? "", model: body.string("model") ?? "", remember: body.bool("remember") ?? false,
            maxTokens: body.int("maxTokens"), topK: body.int("topK") ?? 5)
        if body.bool("stream") == true { return try await stream(turn, tenant: tenant) }
        let (record, answer, text) = try await perform(turn, tenant: tenant, onChunk: nil)
        let object = try await result(record, answer, text: text, turn: turn, tenant: tenant)
        return try JSONResponse.make(.ok, object, headers: [OpenAIRoutes.requestIDHeader: account.requestID], context: context)
    }

    /// Runs the turn through the run runner; `onChunk` (streamed turns) gets each chunk and says
    /// whether to go on. Returns the run, the engine's answer and the answer's text.
    func perform(
        _ turn: Turn, tenant: ResolvedTenant, onStart: (@Sendable (String) -> Void)? = nil, onChunk: (@Sendable (Data) -> Bool)?
    ) async throws -> (RunRecord, EngineAnswer, String) {
        let answered = Mutex<(EngineAnswer, String)?>(nil)
        let engines = self.engines
        let record: RunRecord
        do {
            record = try await MemoryRoutes.mapping {
                try await runs.run(
                    RunRequest(
                        namespace: tenant.namespace, tier: tenant.tier.name, session: turn.session, kind: .chat, intent: turn.message, topK: turn.topK,
                        id: turn.runID, user: turn.account.user, tenantCapUSD: turn.account.tenantCapUSD)
                ) { run in
                    onStart?(run.runID)
                    var object: [String: Any] = [
                        "messages": [["role": "system", "content": Self.systemPrompt(run.memories)], ["role": "user", "content": turn.message]],
                    ]
                    if !turn.model.isEmpty { object["model"] = turn.model }
                    if let maxTokens = turn.maxTokens { object["max_tokens"] = maxTokens }
                    let payload = ChatPayload(object: object)
                    let streamed = Mutex("")
                    let trace = run.trace
                    let answer = try await trace.measure("generate", name: turn.model.isEmpty ? "default" : turn.model) {
                        let answer: EngineAnswer
                        if let onChunk {
                            answer = try await engines.stream(payload, for: turn.account) { chunk in
                                if let delta = Self.delta(chunk) { streamed.withLock { $0 += delta } }
                                // A cancelled run's stream stops here, at its next chunk.
                                return onChunk(chunk) && !trace.isCancelled
                            }
                        } else {
                            answer = try await engines.complete(payload, for: turn.account)
                        }
                        return (answer, Self.detail(answer))
                    }
                    let text = onChunk == nil ? Self.text(of: answer) : streamed.withLock { $0 }
                    answered.withLock { $0 = (answer, text) }
                    return .chat(newExperience: turn.remember ? text : nil)
                }
            }
        } catch let error as EngineError {
            throw OpenAIRoutes.plainError(error)
        } catch let cancelled as RunCancelled where onChunk == nil {
            // A streamed turn reports the cancel as its last event; a plain one answers with it.
            throw GatewayError(.conflict, code: "RUN_CANCELLED", cancelled.description)
        }
        guard let (answer, text) = answered.withLock({ $0 }) else { throw GatewayError(.internalServerError, code: "INTERNAL", "the chat ended without an answer") }
        return (record, answer, text)
    }

    /// A step's facts: engine, model, tokens, cost.
    static func detail(_ answer: EngineAnswer) -> [String: String] {
        var detail = [
            "engine": answer.engine, "model": answer.model, "inputTokens": "\(answer.usage.tokens.input)",
            "outputTokens": "\(answer.usage.tokens.output)", "estimated": "\(answer.usage.estimated)", "fallbacks": "\(answer.fallbacks)",
        ]
        if let nano = answer.cost.nanoUSD { detail["costNanoUsd"] = "\(nano)" }
        return detail
    }

    /// The JSON answer of a chat turn (also the `done` event of a streamed one).
    func result(_ record: RunRecord, _ answer: EngineAnswer, text: String, turn: Turn, tenant: ResolvedTenant) async throws -> [String: Any] {
        let memories = try await Blocking.run { [memory = runs.memory] in
            try record.retrievedMemoryIDs.compactMap { try memory.memory(id: $0, namespace: tenant.namespace) }
        }
        var object: [String: Any] = [
            "runId": record.id, "session": turn.session, "answer": text, "engine": answer.engine, "model": answer.model,
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
        return object
    }

    /// `stream: true`: Server-Sent Events — `run` (`{"runId"}`, first, so the client can cancel),
    /// `chunk` per `chat.completion.chunk`, then `done` (the same object as a plain answer),
    /// `cancelled` (`{"runId","reason"}`) or `error` (`{"code","message"}`). A refusal before the
    /// run starts is a plain HTTP error.
    func stream(_ turn: Turn, tenant: ResolvedTenant) async throws -> Response {
        let (events, sink) = AsyncStream<(String, Data)>.makeStream()
        let gone = Atomic(false)
        sink.onTermination = { _ in gone.store(true, ordering: .relaxed) }
        Task {
            do {
                let (record, answer, text) = try await perform(turn, tenant: tenant, onStart: { id in
                    sink.yield(("run", (try? JSONWriter.data(["runId": id])) ?? Data()))
                }, onChunk: { chunk in
                    if case .terminated = sink.yield(("chunk", chunk)) { return false }
                    return !gone.load(ordering: .relaxed)
                })
                let object = try await result(record, answer, text: text, turn: turn, tenant: tenant)
                sink.yield(("done", try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])))
            } catch let cancelled as RunCancelled {
                sink.yield(("cancelled", (try? JSONWriter.data(["runId": cancelled.runID, "reason": cancelled.reason])) ?? Data()))
            } catch {
                let mapped = (error as? GatewayError) ?? OpenAIRoutes.plainError(error)
                sink.yield(("error", (try? mapped.body()) ?? Data()))
            }
            sink.finish()
        }
        var iterator = events.makeAsyncIterator()
        guard let first = await iterator.next() else { throw GatewayError(.internalServerError, code: "INTERNAL", "the chat ended without an outcome") }
        if first.0 == "error", let object = (try? JSONSerialization.jsonObject(with: first.1)) as? [String: Any] {
            // Nothing was sent yet: the refusal is the HTTP answer itself.
            throw Self.refusal(object)
        }
        let box = EventIterator(first: first, iterator: iterator)
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", OpenAIRoutes.requestIDHeader: turn.account.requestID],
            body: ResponseBody { writer in
                do {
                    while let (name, data) = await box.next() {
                        var buffer = ByteBuffer(string: "event: \(name)\ndata: ")
                        buffer.writeBytes(data)
                        buffer.writeString("\n\n")
                        try await writer.write(buffer)
                    }
                    try await writer.finish(nil)
                } catch {
                    // The client went away: the engine stops at its next chunk.
                    gone.store(true, ordering: .relaxed)
                    throw error
                }
            })
    }

    /// A refusal already turned into JSON, back as the HTTP error it was.
    static func refusal(_ object: [String: Any]) -> GatewayError {
        let code = object["code"] as? String ?? "INTERNAL"
        let message = object["message"] as? String ?? "the chat failed"
        let status: HTTPResponse.Status = switch code {
        case "INVALID_REQUEST": .badRequest
        case "NOT_FOUND", "MODEL_NOT_FOUND": .notFound
        case "CONFLICT": .conflict
        case "BUDGET_EXCEEDED": .init(code: 402)
        case "UPSTREAM_RATE_LIMITED": .tooManyRequests
        case "ENGINE_UNAVAILABLE", "UNAVAILABLE": .serviceUnavailable
        default: .internalServerError
        }
        var error = GatewayError(status, code: code, message, field: object["field"] as? String)
        for (key, value) in object where key != "code" && key != "message" && key != "field" {
            if let number = value as? NSNumber { error.extra[key] = number.int64Value }
        }
        if status == .serviceUnavailable || status == .tooManyRequests { error.headers[.retryAfter] = "5" }
        return error
    }

    /// The text a `chat.completion.chunk` adds.
    static func delta(_ chunk: Data) -> String? {
        let object = (try? JSONSerialization.jsonObject(with: chunk)) as? [String: Any]
        let delta = (object?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
        return delta?["content"] as? String
    }

    /// The events of a streamed chat, the first already taken.
    final class EventIterator: @unchecked Sendable {
        // @unchecked: only the response body writer's task uses it, one call at a time.
        var first: (String, Data)?
        var iterator: AsyncStream<(String, Data)>.AsyncIterator
        init(first: (String, Data), iterator: AsyncStream<(String, Data)>.AsyncIterator) {
            self.first = first
            self.iterator = iterator
        }
        func next() async -> (String, Data)? {
            if let first {
                self.first = nil
                return first
            }
            return await iterator.next()
        }
    }

    func feedback(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.feedbackSchema.parse(request)
        let outcome = try MemoryRoutes.outcome(body)
        let runs = self.runs
        let (record, results) = try await MemoryRoutes.mapping {
            try await runs.feedback(namespace: tenant.namespace, runID: body.string("runId") ?? "", outcome: outcome)
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
