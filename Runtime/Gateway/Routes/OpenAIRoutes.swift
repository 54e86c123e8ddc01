import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// The OpenAI-compatible API: `POST /v1/chat/completions` (plain and `stream: true` as
/// server-sent events, usage in the last chunk), `POST /v1/embeddings` and `GET /v1/models`.
/// Model names route to engines through the caller's tier; errors carry OpenAI's
/// `{"error": {...}}` and Orion's `code` side by side.
struct OpenAIRoutes {
    let engines: ChatEngines
    let rbac: RuntimeConfig.RBAC

    static let sessionHeader = HTTPField.Name("X-Session-Id")!
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    func add(to router: Router<GatewayContext>) {
        let group = router.group("v1")
        group.post("chat/completions") { request, context in try await self.completions(request, context) }
        group.post("embeddings") { request, context in try await self.embeddings(request, context) }
        group.get("models") { _, context in try self.models(context) }
    }

    /// Who pays: the tenant, its user, and the session named by `X-Session-Id` (without one,
    /// each request is a session of its own, so only the tenant's cap spans requests).
    static func account(_ request: Request, _ context: GatewayContext, tenant: ResolvedTenant) throws -> EngineAccount {
        let requestID = request.headers[requestIDHeader].flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 } ?? UUID().uuidString.lowercased()
        let named = request.headers[sessionHeader]
        if let named, !(1...200).contains(named.count) {
            throw GatewayError.badRequest("X-Session-Id must be 1 to 200 characters")
        }
        return EngineAccount(
            tier: tenant.tier.name, tenant: tenant.tenant.id, user: context.identity?.userID ?? "anonymous", session: named ?? "request-\(requestID)",
            requestID: requestID, isSingleCallSession: named == nil, tenantCapUSD: tenant.tenant.costCapUSD)
    }

    static func readJSON(_ request: Request) async throws -> Data {
        let buffer = try await request.body.collect(upTo: .max)
        guard buffer.readableBytes > 0 else { throw GatewayError.badRequest("a JSON object body is required", field: "") }
        return Data(buffer.readableBytesView)
    }

    func completions(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let account = try Self.account(request, context, tenant: tenant)
        let payload: ChatPayload
        do {
            payload = try ChatPayload(json: try await Self.readJSON(request))
        } catch let error as EngineError {
            throw Self.gatewayError(error)
        }
        guard !payload.model.isEmpty else { throw GatewayError.badRequest("field 'model' is required; GET /v1/models lists yours", field: "/model") }
        let headers: HTTPFields = [Self.requestIDHeader: account.requestID]
        if payload.object["stream"] as? Bool == true {
            return try await stream(payload, account: account, headers: headers)
        }
        do {
            let answer = try await engines.complete(payload, for: account)
            var fields = headers
            fields[.contentType] = "application/json"
            return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        } catch {
            throw Self.gatewayError(error)
        }
    }

    /// Answers once the first chunk (or the failure) is known, so a refusal before any output is
    /// a plain HTTP error; a failure after it ends the stream with an error event.
    func stream(_ payload: ChatPayload, account: EngineAccount, headers: HTTPFields) async throws -> Response {
        let (events, sink) = AsyncStream<StreamEvent>.makeStream()
        let stopped = Atomic(false)
        // However the response ends (written, failed, the client gone), the engine stops at its next chunk.
        sink.onTermination = { _ in stopped.store(true, ordering: .relaxed) }
        let engines = self.engines
        let task = Task {
            do {
                let answer = try await engines.stream(payload, for: account) { chunk in
                    if case .terminated = sink.yield(.chunk(chunk)) { return false }
                    return !stopped.load(ordering: .relaxed)
                }
                sink.yield(.done(answer))
            } catch {
                sink.yield(.failed(error))
            }
            sink.finish()
        }
        var iterator = events.makeAsyncIterator()
        guard let first = await iterator.next() else { throw GatewayError(.internalServerError, code: "INTERNAL", "the stream ended without an outcome") }
        if case .failed(let error) = first { throw Self.gatewayError(error) }
        var fields = headers
        fields[.contentType] = "text/event-stream"
        fields[.cacheControl] = "no-cache"
        let model = payload.model
        let box = IteratorBox(first: first, iterator: iterator)
        return Response(status: .ok, headers: fields, body: ResponseBody { writer in
            var last: (id: String, created: Int)?
            do {
                while let event = await box.next() {
                    switch event {
                    case .chunk(let chunk):
                        if last == nil, let object = (try? JSONSerialization.jsonObject(with: chunk)) as? [String: Any] {
                            last = (object["id"] as? String ?? "chatcmpl-\(account.requestID)", object["created"] as? Int ?? Int(Date().timeIntervalSince1970))
                        }
                        try await writer.write(Self.event(chunk))
                    case .done(let answer):
                        let usage = (try? JSONSerialization.jsonObject(with: answer.body)) ?? [:]
                        let final: [String: Any] = [
                            "id": last?.id ?? "chatcmpl-\(account.requestID)", "object": "chat.completion.chunk",
                            "created": last?.created ?? Int(Date().timeIntervalSince1970), "model": answer.model.isEmpty ? model : answer.model,
                            "choices": [], "usage": usage,
                        ]
                        try await writer.write(Self.event(try JSONWriter.data(final)))
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    case .failed(let error):
                        try await writer.write(Self.event(try Self.gatewayError(error).body()))
                    }
                }
                try await writer.finish(nil)
            } catch {
                // The client went away: the engine is asked to stop at its next chunk.
                stopped.store(true, ordering: .relaxed)
                task.cancel()
                throw error
            }
        })
    }

    enum StreamEvent: Sendable {
        case chunk(Data)
        case done(EngineAnswer)
        case failed(any Error)
    }

    /// The stream's events, the first already taken.
    final class IteratorBox: @unchecked Sendable {
        // @unchecked: only the response body writer's task uses it, one call at a time.
        var first: StreamEvent?
        var iterator: AsyncStream<StreamEvent>.AsyncIterator
        init(first: StreamEvent, iterator: AsyncStream<StreamEvent>.AsyncIterator) {
            self.first = first
            self.iterator = iterator
        }
        func next() async -> StreamEvent? {
            if let first {
                self.first = nil
                return first
            }
            return await iterator.next()
        }
    }

    static func event(_ json: Data) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    static let embeddingsSchema = BodySchema([
        "model": .required(.string(1...200)), "input": .required(.any), "encoding_format": .optional(.oneOf(["float", "base64"])),
        "user": .optional(.string(1...200)), "dimensions": .optional(.integer(1...8192)),
    ])

    func embeddings(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let account = try Self.account(request, context, tenant: tenant)
        let body = try await Self.embeddingsSchema.parse(request)
        let texts: [String]
        switch body["input"] {
        case .string(let text)?: texts = [text]
        case .array(let items)?:
            texts = try items.map { item in
                guard case .string(let text) = item else { throw GatewayError.badRequest("'input' must be a string or an array of strings", field: "/input") }
                return text
            }
        default: throw GatewayError.badRequest("'input' must be a string or an array of strings", field: "/input")
        }
        guard (1...2048).contains(texts.count) else { throw GatewayError.badRequest("'input' must hold 1 to 2048 texts", field: "/input") }
        let model = body.string("model") ?? ""
        let answer: EmbeddingAnswer
        do {
            answer = try await engines.embed(model: model, texts: texts, for: account)
        } catch {
            throw Self.gatewayError(error)
        }
        if let dimensions = body.int("dimensions"), dimensions != answer.vectors.first?.count {
            throw GatewayError.badRequest("model '\(model)' makes vectors of \(answer.vectors.first?.count ?? 0) dimensions, not \(dimensions)", field: "/dimensions")
        }
        // base64 (what OpenAI's own clients ask for): the float32 values, little-endian.
        let base64 = body.string("encoding_format") == "base64"
        let data = answer.vectors.enumerated().map { index, vector -> [String: Any] in
            let embedding: Any = base64 ? vector.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString() : vector.map(Double.init)
            return ["object": "embedding", "index": index, "embedding": embedding]
        }
        let tokens = answer.usage.tokens.input
        return try JSONResponse.make(
            .ok, ["object": "list", "data": data, "model": model, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]],
            headers: [Self.requestIDHeader: account.requestID])
    }

    func models(_ context: GatewayContext) throws -> Response {
        try context.authorize("chat:create", rbac)
        let tenant = try context.requireTenant()
        let list = engines.models(tier: tenant.tier.name).map { ["id": $0, "object": "model", "created": 0, "owned_by": "orion"] as [String: Any] }
        return try JSONResponse.make(.ok, ["object": "list", "data": list], context: context)
    }

    /// An engine refusal as HTTP: OpenAI's error object plus Orion's `code` and `message`.
    static func gatewayError(_ error: any Error) -> GatewayError {
        var mapped = plainError(error)
        mapped.openAIShape = true
        return mapped
    }

    static func plainError(_ error: any Error) -> GatewayError {
        if let gateway = error as? GatewayError { return gateway }
        guard let engine = error as? EngineError else {
            return GatewayError(.internalServerError, code: "INTERNAL", "the call failed: \(error)")
        }
        switch engine.code {
        case .invalidRequest: return GatewayError.badRequest(engine.message)
        case .unknownModel: return GatewayError(.notFound, code: "MODEL_NOT_FOUND", engine.message, field: "/model")
        case .budgetExceeded:
            return GatewayError(
                .init(code: 402), code: "BUDGET_EXCEEDED", engine.message,
                extra: ["capNanoUsd": engine.budget?.capNanoUSD ?? 0, "requestedNanoUsd": engine.budget?.requestedNanoUSD ?? 0])
        case .rateLimited: return GatewayError(.tooManyRequests, code: "UPSTREAM_RATE_LIMITED", engine.message, headers: [.retryAfter: "5"])
        case .unavailable: return GatewayError(.serviceUnavailable, code: "ENGINE_UNAVAILABLE", engine.message, headers: [.retryAfter: "5"])
        }
    }
}
