import Foundation
import OrionPluginABI

/// The C entry points behind every Swift plugin. They are non-generic: each reaches the plugin
/// through the existential stored in its ``InstanceBox``, borrowed without retain/release.
enum Thunks {
    typealias Err = UnsafeMutablePointer<orion_error>?

    /// Turns any thrown error into a status and message.
    @inline(__always)
    static func report(_ error: any Error, _ err: Err) -> orion_status {
        if let pluginError = error as? PluginError { return pluginError.write(to: err) }
        return PluginError(.internal, String(describing: error)).write(to: err)
    }

    static let create: @convention(c) (OpaquePointer?, orion_str, UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Err) -> orion_status = {
        context, config, out, err in
        out?.pointee = nil
        guard let factory = ExportState.factory else {
            return PluginError(.internal, "create() was called before the entry point").write(to: err)
        }
        do {
            let box = try factory(context, PluginString(config).withBytes { Data($0) })
            out?.pointee = Unmanaged.passRetained(box).toOpaque()
            return ORION_OK
        } catch {
            return report(error, err)
        }
    }

    static let destroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { instance in
        guard let instance else { return }
        Unmanaged<InstanceBox>.fromOpaque(instance).release()
    }

    // MARK: Rate limiter

    static let rateLimiterTable = orion_rate_limiter_v1(
        struct_size: UInt32(MemoryLayout<orion_rate_limiter_v1>.size),
        acquire: { instance, key, cost, out, err in
            InstanceBox.with(instance) { box in
                box.rateLimiterRef.unsafelyUnwrapped._withUnsafeGuaranteedRef {
                    $0.acquire(key: key, cost: cost, out: out, err: err)
                }
            }
        })

    // MARK: Retriever

    static let retrieverTable = orion_retriever_v1(
        struct_size: UInt32(MemoryLayout<orion_retriever_v1>.size),
        add: { instance, docs, count, err in
            InstanceBox.with(instance) { box in
                do throws(PluginError) {
                    try box.retriever.unsafelyUnwrapped.add(DocumentBatch(UnsafeBufferPointer(start: docs, count: docs == nil ? 0 : count)))
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        },
        remove: { instance, ns, ids, count, err in
            InstanceBox.with(instance) { box in
                do throws(PluginError) {
                    try box.retriever.unsafelyUnwrapped.remove(
                        namespace: PluginString(ns), ids: UnsafeBufferPointer(start: ids, count: ids == nil ? 0 : count))
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        },
        search: { instance, query, out, err in
            InstanceBox.with(instance) { box in
                guard let query, let out else {
                    return PluginError(.invalidArgument, "search() needs a query and an output buffer").write(to: err)
                }
                var results = SearchResults(out)
                do throws(PluginError) {
                    try box.retriever.unsafelyUnwrapped.search(SearchQuery(query.pointee), into: &results)
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        },
        clear: { instance, err in
            InstanceBox.with(instance) { box in
                do throws(PluginError) {
                    try box.retriever.unsafelyUnwrapped.clear()
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        },
        checkpoint: { instance, value, err in
            InstanceBox.with(instance) { box in
                do throws(PluginError) {
                    try box.retriever.unsafelyUnwrapped.checkpoint(value)
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        },
        stats: { instance, out, err in
            InstanceBox.with(instance) { box in
                do throws(PluginError) {
                    let stats = try box.retriever.unsafelyUnwrapped.stats()
                    out?.pointee.document_count = stats.documentCount
                    out?.pointee.checkpoint = stats.checkpoint
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        })

    // MARK: Pricing

    static let pricingTable = orion_pricing_v1(
        struct_size: UInt32(MemoryLayout<orion_pricing_v1>.size),
        price: { instance, model, out, err in
            InstanceBox.with(instance) { box in
                do throws(PluginError) {
                    out?.pointee = try box.pricing.unsafelyUnwrapped.price(model: PluginString(model)).raw
                    return ORION_OK
                } catch { return error.write(to: err) }
            }
        })

    // MARK: Engine (asynchronous: completion through the host's callbacks)

    static let engineTable = orion_engine_v1(
        struct_size: UInt32(MemoryLayout<orion_engine_v1>.size),
        chat: { instance, request, done, err in
            let engine = InstanceBox.with(instance) { $0.engine.unsafelyUnwrapped }
            let body = PluginString(request).withBytes { Data($0) }
            let completion = SendableCompletion(done)
            Task {
                do {
                    let response = try await engine.chat(request: body)
                    completion.succeed(response)
                } catch {
                    completion.fail(error)
                }
            }
            return ORION_OK
        },
        chat_stream: { instance, request, stream, err in
            let engine = InstanceBox.with(instance) { $0.engine.unsafelyUnwrapped }
            let body = PluginString(request).withBytes { Data($0) }
            let sink = SendableStream(stream)
            Task {
                do {
                    let usage = try await engine.chatStream(request: body) { sink.emit($0) }
                    sink.succeed(usage)
                } catch {
                    sink.fail(error)
                }
            }
            return ORION_OK
        },
        embed: { instance, model, texts, count, done, err in
            let engine = InstanceBox.with(instance) { $0.engine.unsafelyUnwrapped }
            let modelName = PluginString(model).string
            let inputs = UnsafeBufferPointer(start: texts, count: texts == nil ? 0 : count).map { PluginString($0).string }
            let completion = SendableEmbedCompletion(done)
            Task {
                do {
                    completion.succeed(try await engine.embed(model: modelName, texts: inputs))
                } catch {
                    completion.fail(error)
                }
            }
            return ORION_OK
        })

    // MARK: Connector

    static let connectorTable = orion_connector_v1(
        struct_size: UInt32(MemoryLayout<orion_connector_v1>.size),
        deliver: { instance, event, done, err in
            guard let event else { return PluginError(.invalidArgument, "deliver() needs an event").write(to: err) }
            let connector = InstanceBox.with(instance) { $0.connector.unsafelyUnwrapped }
            let copy = PluginEvent(event.pointee)
            let completion = SendableCompletion(done)
            Task {
                do {
                    try await connector.deliver(copy)
                    completion.succeed(Data())
                } catch {
                    completion.fail(error)
                }
            }
            return ORION_OK
        })
}

extension Thunks {
    // MARK: Tool

    static let toolTable = orion_tool_v1(
        struct_size: UInt32(MemoryLayout<orion_tool_v1>.size),
        call: { instance, call, done, err in
            guard let call else { return PluginError(.invalidArgument, "call() needs a tool call").write(to: err) }
            let (tool, host) = InstanceBox.with(instance) { ($0.tool.unsafelyUnwrapped, $0.host.unsafelyUnwrapped) }
            let copy = ToolCall(call.pointee, host: host)
            let completion = SendableCompletion(done)
            Task {
                do {
                    completion.succeed(try await tool.call(copy))
                } catch {
                    completion.fail(error)
                }
            }
            return ORION_OK
        })
}

extension PluginError {
    /// Status and message for an arbitrary error thrown by plugin code.
    static func from(_ error: any Error) -> PluginError {
        error as? PluginError ?? PluginError(.internal, String(describing: error))
    }
}

/// The host's completion callback, carried into a Task.
struct SendableCompletion: @unchecked Sendable {
    // @unchecked: the ABI makes completion callbacks callable from any thread, exactly once.
    let raw: orion_completion
    init(_ raw: orion_completion) { self.raw = raw }

    func succeed(_ body: Data) {
        Array(body).withOrionStr { raw.complete(raw.ctx, ORION_OK, $0, nil) }
    }

    func fail(_ error: any Error) {
        let failure = PluginError.from(error)
        failure.message.withCString { raw.complete(raw.ctx, failure.code.rawValue, orion_str(ptr: nil, len: 0), $0) }
    }
}

/// The host's stream callbacks, carried into a Task.
struct SendableStream: @unchecked Sendable {
    // @unchecked: the SDK calls chunk() and complete() sequentially from one task, as the ABI asks.
    let raw: orion_stream
    init(_ raw: orion_stream) { self.raw = raw }

    func emit(_ chunk: Data) -> Bool {
        Array(chunk).withOrionStr { raw.chunk(raw.ctx, $0) } == 0
    }

    func succeed(_ usage: Data) {
        Array(usage).withOrionStr { raw.complete(raw.ctx, ORION_OK, $0, nil) }
    }

    func fail(_ error: any Error) {
        let failure = PluginError.from(error)
        failure.message.withCString { raw.complete(raw.ctx, failure.code.rawValue, orion_str(ptr: nil, len: 0), $0) }
    }
}

/// The host's embedding callback, carried into a Task.
struct SendableEmbedCompletion: @unchecked Sendable {
    // @unchecked: callable from any thread, exactly once (ABI).
    let raw: orion_embed_completion
    init(_ raw: orion_embed_completion) { self.raw = raw }

    func succeed(_ embeddings: Embeddings) {
        embeddings.vectors.withUnsafeBufferPointer { vectors in
            Array(embeddings.usage).withOrionStr { usage in
                raw.complete(raw.ctx, ORION_OK, vectors.baseAddress, embeddings.count, UInt32(embeddings.dimensions), usage, nil)
            }
        }
    }

    func fail(_ error: any Error) {
        let failure = PluginError.from(error)
        failure.message.withCString { raw.complete(raw.ctx, failure.code.rawValue, nil, 0, 0, orion_str(ptr: nil, len: 0), $0) }
    }
}
