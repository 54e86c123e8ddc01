import Foundation
import HTTPTypes
import Hummingbird
import OrionCore
import OrionPluginHost

/// Tools: `GET /v1/tools` (the tier's tools with their schemas) and `POST /v1/tools/{name}/call`
/// with `{"input": {…}, "runId": "…"?}` and the permission `tool:<name>:call`.
///
/// The input is checked against the tool's schema (400 naming the field, `/input/…`); the call has
/// a deadline (`tools.timeoutSeconds`, 504) and a circuit breaker (503); an answer outside the
/// output schema is 502. `Idempotency-Key` replays a finished call's answer. Each call is recorded
/// as a tool call of its run: the run named by `runId` (in progress), else a run of its own.
struct ToolRoutes {
    let tools: ToolCalls
    let rbac: RuntimeConfig.RBAC

    static let callSchema = BodySchema(["input": .required(.any), "runId": .optional(.string(1...200))])

    func add(to router: Router<GatewayContext>) {
        router.get("v1/tools") { _, context in try self.list(context) }
        router.post("v1/tools/{name}/call") { request, context in try await self.call(request, context) }
    }

    func list(_ context: GatewayContext) throws -> Response {
        try context.authorize("tool:list", rbac)
        let tenant = try context.requireTenant()
        let identity = context.identity
        let list = tools.tools(tier: tenant.tier.name).map { tool -> [String: Any] in
            [
                "name": tool.name, "description": tool.manifest.description, "instance": tool.instance,
                "inputSchema": Self.object(tool.manifest.inputSchema.root), "outputSchema": Self.object(tool.manifest.outputSchema.root),
                "callable": identity.map { rbac.allows($0.roles, "tool:\(tool.name):call") } ?? false,
            ]
        }
        return try JSONResponse.make(.ok, ["tools": list], context: context)
    }

    func call(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let name = context.parameters.get("name") ?? ""
        try context.authorize("tool:\(name):call", rbac)
        let tenant = try context.requireTenant()
        let body = try await Self.callSchema.parse(request)
        let input = body["input"]?.jsonData ?? Data("{}".utf8)
        let scope = ToolScope(
            tenantID: tenant.tenant.id, namespace: tenant.namespace, tier: tenant.tier.name, user: context.identity?.userID ?? "unknown", runID: "",
            tenantCapUSD: tenant.tenant.costCapUSD)
        let result: ToolResult
        let runID = body.string("runId")
        do throws(ToolError) {
            result = try await tools.call(name, input: input, scope: scope, joining: runID)
        } catch {
            throw Self.gatewayError(error)
        }
        let output = (try? JSONSerialization.jsonObject(with: result.output)) ?? [:]
        return try JSONResponse.make(.ok, ["tool": name, "output": output, "runId": result.runID, "durationMs": result.durationMs], context: context)
    }

    static func gatewayError(_ error: ToolError) -> GatewayError {
        switch error.code {
        case .notFound: GatewayError(.notFound, code: "TOOL_NOT_FOUND", error.message)
        case .invalidInput: GatewayError.badRequest(error.message, field: error.field)
        case .runNotActive: GatewayError(.conflict, code: "RUN_NOT_ACTIVE", error.message)
        case .unavailable: GatewayError(.serviceUnavailable, code: "TOOL_UNAVAILABLE", error.message, headers: [.retryAfter: "5"])
        case .timeout: GatewayError(.gatewayTimeout, code: "TOOL_TIMEOUT", error.message)
        case .failed: GatewayError(.badGateway, code: "TOOL_FAILED", error.message)
        case .invalidOutput: GatewayError(.badGateway, code: "TOOL_INVALID_OUTPUT", error.message)
        case .cancelled: GatewayError(.conflict, code: "RUN_CANCELLED", error.message)
        }
    }

    /// A schema as a plain JSON object for the response.
    static func object(_ value: JSONValue) -> Any {
        (try? JSONSerialization.jsonObject(with: value.jsonData, options: [.fragmentsAllowed])) ?? [:]
    }
}
