import Foundation
import HTTPTypes
import Hummingbird
import OrionCore

/// `/api/usage`: what engine calls cost — by engine and model over a window, per tenant, per session.
struct UsageRoutes {
    let usage: UsageTracker?
    let engines: ChatEngines
    let rbac: RuntimeConfig.RBAC

    func add(to router: Router<GatewayContext>) {
        let group = router.group("api/usage")
        group.get("summary") { request, context in
            let tenant = try context.requireTenant()
            return try await self.summary(request, context, tenant: tenant.tenant.id)
        }
        group.get("tenants/{id}/summary") { request, context in
            let tenant = try context.requireTenant()
            let id = context.parameters.get("id") ?? ""
            if id != tenant.tenant.id { try context.authorize("admin:tenants", rbac) }
            return try await self.summary(request, context, tenant: id)
        }
        group.get("sessions/{session}") { _, context in try await self.session(context) }
    }

    func tracker() throws -> UsageTracker {
        guard let usage else {
            throw GatewayError(.notFound, code: "USAGE_DISABLED", "usage records are off (telemetry.enabled is false); turn them on to read usage")
        }
        return usage
    }

    /// `?hours=24&userId=&engine=`: calls, tokens and cost by engine and model, plus the tenant's
    /// spend this calendar month (UTC) against its tier's cap.
    func summary(_ request: Request, _ context: GatewayContext, tenant: String) async throws -> Response {
        try context.authorize("usage:read", rbac)
        let usage = try tracker()
        let query = request.uri.queryParameters
        let hours = try query.get("hours").map { text -> Double in
            guard let value = Double(text), value > 0, value <= 24 * 366 else {
                throw GatewayError.badRequest("hours must be a number from 0 (exclusive) to 8784", field: "hours")
            }
            return value
        } ?? 24
        let user = query.get("userId").flatMap { $0.isEmpty ? nil : $0 }
        let engine = query.get("engine").flatMap { $0.isEmpty ? nil : $0 }
        _ = try await usage.flush()
        let now = Date()
        let monthStart = BudgetLedger.monthStart(now) * 1000
        let rows = try await usage.summary(hours: hours, tenant: tenant, user: user, engine: engine)
        let month = try await usage.tenantSpend(tenant: tenant, from: monthStart, to: Int64(now.timeIntervalSince1970 * 1000) + 1)
        let rowObjects: [[String: Any]] = rows.map {
            [
                "engine": $0.engine, "model": $0.model, "calls": $0.calls, "inputTokens": $0.inputTokens, "outputTokens": $0.outputTokens,
                "cacheReadTokens": $0.cacheReadTokens, "cacheWriteTokens": $0.cacheWriteTokens, "costUsd": Double($0.costNanoUSD) / 1e9,
                "costNanoUsd": $0.costNanoUSD, "unpricedCalls": $0.unpricedCalls, "averageLatencyMs": $0.averageLatencyMilliseconds,
                "successRate": $0.successRate,
            ]
        }
        let total = rows.reduce(0) { $0 + $1.costNanoUSD }
        var filters: [String: Any] = [:]
        if let user { filters["userId"] = user }
        if let engine { filters["engine"] = engine }
        let object: [String: Any] = [
            "tenant": tenant, "hours": hours, "filters": filters, "rows": rowObjects,
            "totals": [
                "calls": rows.reduce(0) { $0 + $1.calls }, "costUsd": Double(total) / 1e9, "costNanoUsd": total,
                "unpricedCalls": rows.reduce(0) { $0 + $1.unpricedCalls },
            ],
            "month": ["costUsd": Double(month.costNanoUSD) / 1e9, "costNanoUsd": month.costNanoUSD, "calls": month.calls, "unpricedCalls": month.unpricedCalls],
        ]
        return try JSONResponse.make(.ok, object, context: context)
    }

    /// One session's spend, against the session cap.
    func session(_ context: GatewayContext) async throws -> Response {
        try context.authorize("usage:read", rbac)
        let tenant = try context.requireTenant()
        let usage = try tracker()
        let session = context.parameters.get("session") ?? ""
        _ = try await usage.flush()
        let spend = try await usage.sessionSpend(tenant: tenant.tenant.id, session: session)
        let object: [String: Any] = [
            "session": session, "calls": spend.calls, "costUsd": Double(spend.costNanoUSD) / 1e9, "costNanoUsd": spend.costNanoUSD,
            "unpricedCalls": spend.unpricedCalls, "capUsd": engines.sessionCapUSD,
        ]
        return try JSONResponse.make(.ok, object, context: context)
    }
}
