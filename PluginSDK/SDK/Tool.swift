import Foundation
import OrionPluginABI

/// A tool (ABI 1.1): one named operation agents call with JSON input and get JSON output from.
/// Its name and schemas are in ``PluginDescriptor/tool``; the host validates the input before
/// ``call(_:)`` and the output after it.
public protocol ToolPlugin: AnyObject, Sendable {
    /// Runs the tool for `call`; returns the output JSON.
    func call(_ call: ToolCall) async throws -> Data
}

/// What a tool plugin declares about its tool.
public struct ToolDescriptor: Sendable {
    /// `[a-z0-9_-]+`, unique within a tier: the `{name}` of `POST /v1/tools/{name}/call` and of the
    /// permission `tool:<name>:call`.
    public var name: String
    public var description: String
    /// JSON Schemas (the subset the host checks: object, properties, required,
    /// additionalProperties, type, enum, minimum, maximum, minLength, maxLength, items).
    public var inputSchema: String
    public var outputSchema: String

    public init(name: String, description: String, inputSchema: String, outputSchema: String) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
    }

    var manifestJSON: String {
        #"{"name":\#(JSONText.quote(name)),"description":\#(JSONText.quote(description)),"input_schema":\#(inputSchema),"output_schema":\#(outputSchema)}"#
    }
}

/// One call of a tool, copied out of the host's borrowed buffers.
public struct ToolCall: @unchecked Sendable {
    // @unchecked: `scope` is an opaque token the host keeps valid until the call completes.
    public var tenantID: String
    public var workspaceID: String
    public var userID: String
    public var runID: String
    /// JSON, valid against the tool's input schema.
    public var input: Data
    let scope: UnsafeRawPointer?
    let host: PluginHost

    public init(_ raw: orion_tool_call, host: PluginHost) {
        tenantID = PluginString(raw.tenant_id).string
        workspaceID = PluginString(raw.workspace_id).string
        userID = PluginString(raw.user_id).string
        runID = PluginString(raw.run_id).string
        input = raw.input.ptr.map { Data(bytes: $0, count: raw.input.len) } ?? Data()
        scope = raw.scope
        self.host = host
    }

    /// The input as a JSON object.
    public var inputObject: [String: Any] { (try? JSONSerialization.jsonObject(with: input)) as? [String: Any] ?? [:] }

    /// Calls host service `name` (e.g. `memory.search`) for this call's tenant; returns its JSON
    /// response. Throws ``PluginError/Code/unsupported`` on a host without services (ABI 1.0).
    public func service(_ name: String, request: Data) async throws -> Data {
        let required = MemoryLayout<orion_host_api>.offset(of: \orion_host_api.service_call)! + MemoryLayout<UnsafeRawPointer>.size
        guard Int(host.api.pointee.struct_size) >= required, let serviceCall = host.api.pointee.service_call else {
            throw PluginError(.unsupported, "this host offers no services (it implements plugin ABI \(host.api.pointee.abi_major).\(host.api.pointee.abi_minor))")
        }
        let (context, scope) = (host.context, scope)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            let box = ContinuationBox(continuation)
            let ctx = box.retainedPointer
            var error = ErrorBuffer.make()
            let status = name.withOrionStr { service in
                Array(request).withOrionStr { body in
                    serviceCall(context, scope, service, body, orion_completion(ctx: ctx, complete: unaryComplete), &error)
                }
            }
            if status != ORION_OK {
                ContinuationBox<Data>.take(ctx).continuation.resume(throwing: PluginError(status: status, error: &error))
            }
        }
    }
}

/// Calls into a tool.
public struct ToolCaller: @unchecked Sendable {
    // @unchecked: see Callers.swift.
    public let instance: UnsafeMutableRawPointer
    public let table: UnsafePointer<orion_tool_v1>

    public init(instance: UnsafeMutableRawPointer, table: UnsafePointer<orion_tool_v1>) {
        self.instance = instance
        self.table = table
    }

    /// The identity a call is made with.
    public struct Caller: Sendable, Hashable {
        public var tenantID: String
        public var workspaceID: String
        public var userID: String
        public var runID: String
        public init(tenantID: String, workspaceID: String, userID: String, runID: String) {
            self.tenantID = tenantID
            self.workspaceID = workspaceID
            self.userID = userID
            self.runID = runID
        }
    }

    /// Runs the tool; `scope` is the token the host resolves in `service_call`.
    public func call(input: Data, caller: Caller, scope: UnsafeRawPointer?) async throws -> Data {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            let box = ContinuationBox(continuation)
            let ctx = box.retainedPointer
            var error = ErrorBuffer.make()
            let arena = StringArena()
            var raw = orion_tool_call(
                struct_size: UInt32(MemoryLayout<orion_tool_call>.size), tenant_id: arena.str(caller.tenantID),
                workspace_id: arena.str(caller.workspaceID), user_id: arena.str(caller.userID), run_id: arena.str(caller.runID),
                input: arena.str(String(decoding: input, as: UTF8.self)), scope: scope)
            let status = withExtendedLifetime(arena) {
                table.pointee.call(instance, &raw, orion_completion(ctx: ctx, complete: unaryComplete), &error)
            }
            if status != ORION_OK {
                ContinuationBox<Data>.take(ctx).continuation.resume(throwing: PluginError(status: status, error: &error))
            }
        }
    }
}
