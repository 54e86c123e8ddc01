import Foundation
import OrionPluginSDK
import Synchronization

/// Who a tool call acts for: what the host's services may touch on its behalf.
public struct ToolScope: Sendable, Hashable {
    public var tenantID: String
    public var namespace: String
    public var tier: String
    public var user: String
    public var runID: String
    /// The tenant's own monthly cap, when it has one: what the tool's engine calls are held to.
    public var tenantCapUSD: Double?

    public init(tenantID: String, namespace: String, tier: String, user: String, runID: String = "", tenantCapUSD: Double? = nil) {
        self.tenantCapUSD = tenantCapUSD
        self.tenantID = tenantID
        self.namespace = namespace
        self.tier = tier
        self.user = user
        self.runID = runID
    }
}

/// The services the host offers tool plugins through `service_call`, by name (`memory.search`).
///
/// A plugin passes back the opaque scope of the tool call it is serving; the directory resolves it
/// to the call's tenant, so a plugin can never name another tenant. A scope lives from the start of
/// its call to its end.
public final class HostServiceDirectory: Sendable {
    public typealias Handler = @Sendable (ToolScope, Data) async throws -> Data
    private struct State {
        var handlers: [String: Handler] = [:]
        var scopes: [UInt: ToolScope] = [:]
        var nextScope: UInt = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Offers `name` to tool plugins (a later registration replaces an earlier one).
    public func register(_ name: String, handler: @escaping Handler) {
        state.withLock { $0.handlers[name] = handler }
    }

    /// Runs `body` with a scope token for `scope`, valid until `body` returns.
    func withScope<T>(_ scope: ToolScope, _ body: (UnsafeRawPointer) async throws -> T) async rethrows -> T {
        let token = state.withLock { state -> UInt in
            state.nextScope += 1
            state.scopes[state.nextScope] = scope
            return state.nextScope
        }
        defer { _ = state.withLock { $0.scopes.removeValue(forKey: token) } }
        // A token is a number, never an address: the plugin cannot forge one that means something else.
        return try await body(UnsafeRawPointer(bitPattern: token)!)
    }

    /// Starts service `name` for the call behind `token`.
    func call(
        token: UnsafeRawPointer?, service name: String, request: Data, completion: @escaping @Sendable (Result<Data, PluginError>) -> Void
    ) throws(PluginError) {
        let (scope, handler, known) = state.withLock { state in
            (token.flatMap { state.scopes[UInt(bitPattern: $0)] }, state.handlers[name], state.handlers.keys.sorted())
        }
        guard let scope else {
            throw PluginError(.invalidArgument, "service_call needs the scope of a tool call in progress (orion_tool_call.scope); this one is not")
        }
        guard let handler else {
            throw PluginError(.notFound, "no host service '\(name)'; this host offers: \(known.joined(separator: ", "))")
        }
        Task {
            do {
                completion(.success(try await handler(scope, request)))
            } catch let error as PluginError {
                completion(.failure(error))
            } catch {
                completion(.failure(PluginError(.internal, "\(error)")))
            }
        }
    }
}
