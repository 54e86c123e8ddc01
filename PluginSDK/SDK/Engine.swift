import Foundation
import OrionPluginABI

/// An LLM engine: chat, streamed chat and embeddings. Work is asynchronous; the SDK bridges the
/// host's completion callbacks to `async`/`await`.
///
/// Each method has a default that throws ``PluginError/Code/unsupported``, so an embeddings-only
/// engine implements ``embed(model:texts:)`` alone.
public protocol EnginePlugin: AnyObject, Sendable {
    /// `request` is an OpenAI-style chat request (JSON); returns a `chat.completion` object (JSON).
    func chat(request: Data) async throws -> Data
    /// Streams `chat.completion.chunk` objects through `emit`; returns the final usage JSON (or
    /// empty). `emit` returns false when the client went away: stop then.
    func chatStream(request: Data, emit: @Sendable (Data) -> Bool) async throws -> Data
    /// Embeds `texts` with `model` (empty = the instance's default).
    func embed(model: String, texts: [String]) async throws -> Embeddings
}

/// Row-major vectors: `count` rows of `dimensions` floats.
public struct Embeddings: Sendable, Hashable {
    public var vectors: [Float]
    public var dimensions: Int
    /// Provider usage JSON, or empty.
    public var usage: Data
    public init(vectors: [Float], dimensions: Int, usage: Data = Data()) {
        self.vectors = vectors
        self.dimensions = dimensions
        self.usage = usage
    }
    public var count: Int { dimensions == 0 ? 0 : vectors.count / dimensions }
    /// One array per text.
    public var rows: [[Float]] { (0..<count).map { Array(vectors[$0 * dimensions..<($0 + 1) * dimensions]) } }
}

extension EnginePlugin {
    public func chat(request: Data) async throws -> Data {
        throw PluginError(.unsupported, "this engine does not offer chat")
    }
    public func chatStream(request: Data, emit: @Sendable (Data) -> Bool) async throws -> Data {
        throw PluginError(.unsupported, "this engine does not offer streamed chat")
    }
    public func embed(model: String, texts: [String]) async throws -> Embeddings {
        throw PluginError(.unsupported, "this engine does not offer embeddings")
    }
}

/// A connector: receives run lifecycle events, one at a time per run, in order.
public protocol ConnectorPlugin: AnyObject, Sendable {
    func deliver(_ event: PluginEvent) async throws
}

/// A run lifecycle event, copied out of the host's borrowed buffers.
public struct PluginEvent: Sendable, Hashable {
    public var type: String
    public var tenantID: String
    public var workspaceID: String
    public var runID: String
    public var timestampNanoseconds: Int64
    public var sequence: UInt64
    /// A JSON object.
    public var payload: Data

    public init(
        type: String, tenantID: String, workspaceID: String, runID: String, timestampNanoseconds: Int64,
        sequence: UInt64, payload: Data
    ) {
        self.type = type
        self.tenantID = tenantID
        self.workspaceID = workspaceID
        self.runID = runID
        self.timestampNanoseconds = timestampNanoseconds
        self.sequence = sequence
        self.payload = payload
    }

    public init(_ raw: orion_event) {
        self.init(
            type: PluginString(raw.type).string, tenantID: PluginString(raw.tenant_id).string,
            workspaceID: PluginString(raw.workspace_id).string, runID: PluginString(raw.run_id).string,
            timestampNanoseconds: raw.timestamp_ns, sequence: raw.sequence,
            payload: PluginString(raw.payload).withBytes { Data($0) })
    }
}
