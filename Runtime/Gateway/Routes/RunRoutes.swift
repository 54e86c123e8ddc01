import Foundation
import HTTPTypes
import Hummingbird
import OrionCore

/// `/v1/runs`: a tenant's runs (tasks and chats) with their steps and tool calls, and cooperative
/// cancellation.
///
/// - `GET /v1/runs?status=&since=&until=&limit=`: newest first; `since`/`until` are milliseconds
///   since the Unix epoch (or ISO 8601 times), `limit` 1–500 (default 50).
/// - `GET /v1/runs/{id}`: one run with its steps and tool calls.
/// - `POST /v1/runs/{id}/cancel`: 202 when the run was asked to stop (it ends `cancelled` at its
///   next step or stream chunk) — by this node, or by the node running it when the runs are
///   shared; 409 when it already ended.
struct RunRoutes {
    let runs: RunRunner
    let rbac: RuntimeConfig.RBAC

    func add(to router: Router<GatewayContext>) {
        let group = router.group("v1/runs")
        group.get { request, context in try await self.list(request, context) }
        group.get("{id}") { _, context in try await self.get(context) }
        group.post("{id}/cancel") { _, context in try await self.cancel(context) }
    }

    func list(_ request: Request, _ context: GatewayContext) async throws -> Response {
        try context.authorize("runs:read", rbac)
        let tenant = try context.requireTenant()
        let parameters = request.uri.queryParameters
        var query = RunQuery()
        if let text = parameters.get("status"), !text.isEmpty {
            guard let status = RunRecord.Status(rawValue: text) else {
                throw GatewayError.badRequest("status must be one of running, finished, error, cancelled; got '\(text)'", field: "status")
            }
            query.status = status
        }
        query.since = try parameters.get("since").map { try Self.time($0, field: "since") }
        query.until = try parameters.get("until").map { try Self.time($0, field: "until") }
        if let text = parameters.get("limit") {
            guard let limit = Int(text), (1...500).contains(limit) else { throw GatewayError.badRequest("limit must be a whole number from 1 to 500", field: "limit") }
            query.limit = limit
        }
        let runs = self.runs
        let records = try await runs.records(namespace: tenant.namespace, query: query)
        return try JSONResponse.make(.ok, ["runs": records.map { Self.json($0) }], context: context)
    }

    func get(_ context: GatewayContext) async throws -> Response {
        try context.authorize("runs:read", rbac)
        let tenant = try context.requireTenant()
        let id = context.parameters.get("id") ?? ""
        let runs = self.runs
        guard let record = try await runs.record(id: id, namespace: tenant.namespace) else {
            throw GatewayError.notFound("no run '\(id)' in this tenant")
        }
        return try JSONResponse.make(.ok, Self.json(record, full: true), context: context)
    }

    func cancel(_ context: GatewayContext) async throws -> Response {
        try context.authorize("runs:cancel", rbac)
        let tenant = try context.requireTenant()
        let id = context.parameters.get("id") ?? ""
        let who = context.identity?.userID ?? "unknown"
        let runs = self.runs
        let result = try await runs.cancel(runID: id, namespace: tenant.namespace, reason: "cancelled by \(who)")
        switch result {
        case .requested, .requestedOfItsNode:
            return try JSONResponse.make(.accepted, ["runId": id, "status": "cancelling"], context: context)
        case .notFound:
            throw GatewayError.notFound("no run '\(id)' in this tenant")
        case .alreadyEnded(let status):
            throw GatewayError(.conflict, code: "RUN_ENDED", "run '\(id)' already ended as \(status.rawValue); only a running run can be cancelled")
        case .notRunningHere:
            throw GatewayError(
                .conflict, code: "RUN_NOT_ACTIVE",
                "run '\(id)' is recorded as running, but no process of this deployment is running it (its node stopped); it cannot be cancelled")
        }
    }

    /// Milliseconds since the epoch, or an ISO 8601 time.
    static func time(_ text: String, field: String) throws -> Int64 {
        if let ms = Int64(text), ms >= 0 { return ms }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        throw GatewayError.badRequest("\(field) must be milliseconds since the Unix epoch or an ISO 8601 time such as 2026-11-22T08:00:00Z; got '\(text)'", field: field)
    }

    /// The JSON of a run (schema `Run` in openapi.json); `full` adds its steps and tool calls.
    static func json(_ record: RunRecord, full: Bool = false) -> [String: Any] {
        var object: [String: Any] = [
            "id": record.id, "tenantId": record.tenantID, "tier": record.tier, "user": record.user, "session": record.session,
            "kind": record.kind.rawValue, "status": record.status.rawValue, "startedAt": record.startedAt,
            "retrievedMemoryIds": record.retrievedMemoryIDs, "usedMemoryIds": record.usedMemoryIDs,
        ]
        if let ended = record.endedAt { object["endedAt"] = ended }
        if let outcome = record.outcome { object["outcome"] = outcome }
        if let reward = record.reward { object["reward"] = reward }
        if let error = record.error { object["error"] = error }
        if let degraded = record.degradedReason { object["degraded"] = degraded }
        if let newMemory = record.newMemoryID { object["newMemoryId"] = newMemory }
        if full {
            object["steps"] = record.steps.map(\.jsonObject)
            object["toolCalls"] = record.toolCalls.map { call -> [String: Any] in
                var item: [String: Any] = [
                    "name": call.name, "argumentsSha256": call.argumentsSHA256, "startedAt": call.startedAt, "durationMs": call.durationMs, "success": call.success,
                ]
                if let error = call.error { item["error"] = error }
                return item
            }
        }
        return object
    }
}
