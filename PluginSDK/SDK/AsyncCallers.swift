import Foundation
import OrionPluginABI

/// A one-shot continuation passed through a C `void *ctx`.
final class ContinuationBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: the continuation is resumed exactly once, by whichever thread the plugin
    // completes on; the ABI guarantees a single completion per call.
    let continuation: CheckedContinuation<Value, any Error>
    init(_ continuation: CheckedContinuation<Value, any Error>) { self.continuation = continuation }

    /// Retained pointer for the C side; balanced by `take(_:)`.
    var retainedPointer: UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }
    static func take(_ pointer: UnsafeMutableRawPointer?) -> ContinuationBox {
        // The pointer was made by `retainedPointer` for exactly one completion.
        Unmanaged<ContinuationBox>.fromOpaque(pointer!).takeRetainedValue()
    }
}

/// Streamed chunks from a plugin, passed through a C `void *ctx`.
final class StreamBox: @unchecked Sendable {
    // @unchecked: the ABI says chunk() and complete() for one stream are never concurrent; the
    // continuation is resumed once, from complete().
    let onChunk: @Sendable (Data) -> Bool
    let continuation: CheckedContinuation<Data, any Error>
    init(onChunk: @escaping @Sendable (Data) -> Bool, continuation: CheckedContinuation<Data, any Error>) {
        self.onChunk = onChunk
        self.continuation = continuation
    }
}

private func bodyData(_ body: orion_str) -> Data {
    guard let ptr = body.ptr, body.len > 0 else { return Data() }
    return Data(bytes: ptr, count: body.len)
}

private func failure(_ status: orion_status, _ message: UnsafePointer<CChar>?) -> PluginError {
    PluginError(
        PluginError.Code(rawValue: status),
        message.map { String(cString: $0) } ?? "the plugin reported an error without a message")
}

let unaryComplete: @convention(c) (UnsafeMutableRawPointer?, orion_status, orion_str, UnsafePointer<CChar>?) -> Void = {
    ctx, status, body, message in
    let box = ContinuationBox<Data>.take(ctx)
    if status == ORION_OK {
        box.continuation.resume(returning: bodyData(body))
    } else {
        box.continuation.resume(throwing: failure(status, message))
    }
}

private let streamChunk: @convention(c) (UnsafeMutableRawPointer?, orion_str) -> Int32 = { ctx, chunk in
    // Unretained: the box is released by streamComplete, which always comes last.
    let box = Unmanaged<StreamBox>.fromOpaque(ctx!).takeUnretainedValue()
    return box.onChunk(bodyData(chunk)) ? 0 : 1
}

private let streamComplete: @convention(c) (UnsafeMutableRawPointer?, orion_status, orion_str, UnsafePointer<CChar>?) -> Void = {
    ctx, status, usage, message in
    let box = Unmanaged<StreamBox>.fromOpaque(ctx!).takeRetainedValue()
    if status == ORION_OK {
        box.continuation.resume(returning: bodyData(usage))
    } else {
        box.continuation.resume(throwing: failure(status, message))
    }
}

private let embedComplete: @convention(c) (
    UnsafeMutableRawPointer?, orion_status, UnsafePointer<Float>?, Int, UInt32, orion_str, UnsafePointer<CChar>?
) -> Void = { ctx, status, vectors, count, dimensions, usage, message in
    let box = ContinuationBox<Embeddings>.take(ctx)
    guard status == ORION_OK else {
        box.continuation.resume(throwing: failure(status, message))
        return
    }
    let total = count * Int(dimensions)
    let values = vectors.map { Array(UnsafeBufferPointer(start: $0, count: total)) } ?? []
    box.continuation.resume(returning: Embeddings(vectors: values, dimensions: Int(dimensions), usage: bodyData(usage)))
}

/// Calls into an engine.
public struct EngineCaller: @unchecked Sendable {
    // @unchecked: see Callers.swift.
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafePointer<orion_engine_v1>

    public init(instance: UnsafeMutableRawPointer, table: UnsafePointer<orion_engine_v1>) {
        self.instance = instance
        self.table = table
    }

    /// One chat completion: OpenAI-style request JSON in, `chat.completion` JSON out.
    public func chat(request: Data) async throws -> Data {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            let box = ContinuationBox(continuation)
            let ctx = box.retainedPointer
            var error = ErrorBuffer.make()
            let status = Array(request).withOrionStr {
                table.pointee.chat(instance, $0, orion_completion(ctx: ctx, complete: unaryComplete), &error)
            }
            if status != ORION_OK {
                // Not started: the callback will never run, so balance the retain here.
                ContinuationBox<Data>.take(ctx).continuation.resume(throwing: PluginError(status: status, error: &error))
            }
        }
    }

    /// A streamed chat: `onChunk` gets each `chat.completion.chunk` JSON and returns false to stop.
    /// Returns the final usage JSON (may be empty).
    public func chatStream(request: Data, onChunk: @escaping @Sendable (Data) -> Bool) async throws -> Data {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            let box = StreamBox(onChunk: onChunk, continuation: continuation)
            let ctx = Unmanaged.passRetained(box).toOpaque()
            var error = ErrorBuffer.make()
            let stream = orion_stream(ctx: ctx, chunk: streamChunk, complete: streamComplete)
            let status = Array(request).withOrionStr { table.pointee.chat_stream(instance, $0, stream, &error) }
            if status != ORION_OK {
                Unmanaged<StreamBox>.fromOpaque(ctx).release()
                continuation.resume(throwing: PluginError(status: status, error: &error))
            }
        }
    }

    /// Embeds `texts` with `model` (empty for the instance's default).
    public func embed(model: String, texts: [String]) async throws -> Embeddings {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Embeddings, any Error>) in
            let box = ContinuationBox(continuation)
            let ctx = box.retainedPointer
            var error = ErrorBuffer.make()
            let arena = StringArena()
            let strs = texts.map { arena.str($0) }
            let status = withExtendedLifetime(arena) {
                strs.withUnsafeBufferPointer { buffer in
                    model.withOrionStr { modelStr in
                        table.pointee.embed(
                            instance, modelStr, buffer.baseAddress, buffer.count,
                            orion_embed_completion(ctx: ctx, complete: embedComplete), &error)
                    }
                }
            }
            if status != ORION_OK {
                ContinuationBox<Embeddings>.take(ctx).continuation.resume(throwing: PluginError(status: status, error: &error))
            }
        }
    }
}

/// Calls into a connector.
public struct ConnectorCaller: @unchecked Sendable {
    // @unchecked: see Callers.swift.
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafePointer<orion_connector_v1>

    public init(instance: UnsafeMutableRawPointer, table: UnsafePointer<orion_connector_v1>) {
        self.instance = instance
        self.table = table
    }

    /// Delivers one event; returns when the connector has handled it.
    public func deliver(_ event: PluginEvent) async throws {
        _ = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            let box = ContinuationBox(continuation)
            let ctx = box.retainedPointer
            var error = ErrorBuffer.make()
            let arena = StringArena()
            var raw = orion_event(
                struct_size: UInt32(MemoryLayout<orion_event>.size), type: arena.str(event.type),
                tenant_id: arena.str(event.tenantID), workspace_id: arena.str(event.workspaceID),
                run_id: arena.str(event.runID), timestamp_ns: event.timestampNanoseconds, sequence: event.sequence,
                payload: arena.str(String(decoding: event.payload, as: UTF8.self)))
            let status = withExtendedLifetime(arena) {
                table.pointee.deliver(instance, &raw, orion_completion(ctx: ctx, complete: unaryComplete), &error)
            }
            if status != ORION_OK {
                ContinuationBox<Data>.take(ctx).continuation.resume(throwing: PluginError(status: status, error: &error))
            }
        }
    }
}
