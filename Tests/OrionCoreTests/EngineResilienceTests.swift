import Foundation
import OrionCore
import Logging
import OrionPluginSDK
import OrionTestSupport
import Testing

@Suite("Engine resilience, budgets and routes")
struct EngineResilienceTests {
    @Test("the breaker opens after the threshold, lets one trial through when the wait is over, and closes on its success")
    func breakerTransitions() {
        var breaker = CircuitBreaker(failureThreshold: 3, openNanoseconds: 1_000)
        let first = breaker.permit(now: 0)
        #expect(first)
        breaker.record(success: false, now: 0)
        breaker.record(success: false, now: 0)
        #expect(breaker.stateName == "closed")
        breaker.record(success: true, now: 0)
        for _ in 0..<3 { breaker.record(success: false, now: 10) }
        #expect(breaker.state == .open(until: 1_010))
        let early = breaker.permit(now: 500)
        #expect(!early)
        let trial = breaker.permit(now: 1_010)
        #expect(trial)
        #expect(breaker.stateName == "half_open")
        let second = breaker.permit(now: 1_011)
        #expect(!second, "one trial at a time")
        breaker.record(success: false, now: 1_020)
        #expect(breaker.state == .open(until: 2_020), "a failed trial opens it again")
        let again = breaker.permit(now: 2_020)
        #expect(again)
        breaker.record(success: true, now: 2_030)
        #expect(breaker.state == .closed(consecutiveFailures: 0))
    }

    @Test("Retry-After is read as seconds or as an HTTP date; backoff is jittered and capped")
    func retryAfter() {
        let policy = RetryPolicy(maxRetries: 3, baseDelay: .milliseconds(100), maxDelay: .milliseconds(250), maxRetryAfter: .seconds(20))
        #expect(policy.delay(attempt: 1, retryAfter: "2") == .seconds(2))
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(policy.delay(attempt: 1, retryAfter: "Tue, 14 Nov 2023 22:13:25 GMT", now: now) == .seconds(5))
        #expect(policy.delay(attempt: 1, retryAfter: "60") == nil, "a wait over maxRetryAfter fails at once")
        #expect(policy.delay(attempt: 4, retryAfter: nil) == nil, "no retries left")
        #expect(policy.delay(attempt: 1, retryAfter: nil, random: 0) == .milliseconds(50))
        #expect(policy.delay(attempt: 1, retryAfter: nil, random: 1) == .milliseconds(100))
        #expect(policy.delay(attempt: 3, retryAfter: nil, random: 1) == .milliseconds(250), "capped at maxDelay")
        #expect(policy.delay(attempt: 1, retryAfter: "soon", random: 1) == .milliseconds(100), "an unreadable header falls back to backoff")
        #expect(policy.delay(attempt: 1, retryAfter: "99999999999999999999") == nil, "an absurd wait is refused, not a crash")
        #expect(RetryPolicy.parseRetryAfter("1e300") == .seconds(86_400))
        #expect(RetryPolicy.isRetryable(status: 429) && RetryPolicy.isRetryable(status: 503) && !RetryPolicy.isRetryable(status: 400))
    }

    @Test("the SSE parser takes events split anywhere, CRLF or LF, and ignores comments")
    func serverSentEvents() {
        let text = ": keep-alive\r\nevent: delta\r\ndata: {\"a\":1}\r\n\r\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n"
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for byte in Array(text.utf8) { events += parser.feed(Data([byte])) }
        #expect(events == [
            ServerSentEvent(event: "delta", data: "{\"a\":1}"), ServerSentEvent(event: "message", data: "line one\nline two"),
            ServerSentEvent(event: "message", data: "[DONE]"),
        ])
        #expect(!parser.hasPartialEvent)
        let partial = parser.feed(Data("data: half".utf8))
        #expect(partial.isEmpty)
        #expect(parser.hasPartialEvent)
    }

    @Test("usage is read per token class; without counts it is estimated and marked")
    func usage() throws {
        let read = ChatUsage.read(["prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": ["cached_tokens": 30, "cache_write_tokens": 20]])
        #expect(read == ChatUsage(tokens: TokenCounts(input: 50, output: 7, cacheRead: 30, cacheWrite: 20), estimated: false))
        #expect(ChatUsage.read(["completion_tokens": 3]) == nil)
        let payload = try ChatPayload(json: Data(#"{"model":"m","messages":[{"role":"user","content":"12345678"}]}"#.utf8))
        let estimate = ChatUsage.estimate(prompt: payload, completionBytes: 9)
        #expect(estimate.estimated)
        // 12 bytes of text (role and content) → 3 tokens, plus 4 for the message.
        #expect(estimate.tokens == TokenCounts(input: 3 + 4, output: 3))
        #expect(estimate.json["estimated"] as? Bool == true)
        // The bound: bytes of every string (role included) plus 8 per message.
        #expect(payload.promptTokenBound == 4 + 8 + 8)
    }

    @Test("chat requests that are not chat requests are refused with what to fix")
    func payloadRefusals() {
        for (body, words) in [
            ("[]", "JSON object"), (#"{"model":"m"}"#, "'messages'"), (#"{"messages":[{"content":"x"}]}"#, "'role'"),
            (#"{"messages":[{"role":"user"}],"max_tokens":-1}"#, "max_tokens"),
        ] {
            #expect(throws: EngineError.self) { try ChatPayload(json: Data(body.utf8)) }
            do {
                _ = try ChatPayload(json: Data(body.utf8))
            } catch {
                #expect(error.message.contains(words), "\(body): \(error.message)")
            }
        }
    }

    @Test("egress patterns: exact host, host:port, *.domain; anything else is refused with the key to change")
    func egressAllowlist() throws {
        let list = EgressAllowlist(["api.openai.com", "127.0.0.1:8000", "*.example.org", "::1"])
        #expect(list.refusal(for: try #require(URL(string: "https://api.openai.com/v1"))) == nil)
        #expect(list.refusal(for: try #require(URL(string: "http://127.0.0.1:8000/v1"))) == nil)
        #expect(list.refusal(for: try #require(URL(string: "http://127.0.0.1:9000/v1")))?.contains("engines.egressAllowedHosts") == true)
        #expect(list.refusal(for: try #require(URL(string: "https://a.b.example.org/x"))) == nil)
        #expect(list.refusal(for: try #require(URL(string: "https://example.org/x"))) != nil)
        #expect(list.refusal(for: try #require(URL(string: "http://[::1]:11434/api"))) == nil)
        #expect(list.refusal(for: try #require(URL(string: "ftp://api.openai.com/x")))?.contains("http or https") == true)
        #expect(EgressAllowlist.Pattern("*") == nil && EgressAllowlist.Pattern("host/path") == nil && EgressAllowlist.Pattern("h:99999") == nil)
    }

    @Test("reservations hold concurrent calls within both caps; settling frees what was not spent; alerts fire once at the threshold")
    func ledger() async throws {
        let alerts = AlertBox()
        let ledger = BudgetLedger(usage: nil, alertThreshold: 0.8, logger: .init(label: "test")) { alerts.add($0) }
        func request(_ amount: Int64) -> BudgetLedger.Request {
            .init(tenant: "t", session: "s", amountNanoUSD: amount, sessionCapNanoUSD: 1_000, tenantCapNanoUSD: 5_000)
        }
        let a = try await ledger.reserve(request(600))
        await #expect(throws: BudgetExceeded.self) { try await ledger.reserve(request(500)) }
        await ledger.settle(a, actualNanoUSD: 100)
        let b = try await ledger.reserve(request(500))
        await ledger.settle(b, actualNanoUSD: 500)
        #expect(alerts.count == 0)
        let c = try await ledger.reserve(request(300))
        await ledger.settle(c, actualNanoUSD: 250)
        #expect(alerts.count == 1, "850 of 1000 crossed 80%")
        #expect(ledger.spent(tenant: "t", session: "s") == 850)
        do {
            _ = try await ledger.reserve(request(200))
            Issue.record("the session cap was crossed")
        } catch let exceeded as BudgetExceeded {
            #expect(exceeded.scope == .session)
            #expect(exceeded.description.contains("0.000000150 USD") || exceeded.description.contains("left"))
        }
        // Another session of the same tenant shares the tenant's cap, not the session's.
        let other = try await ledger.reserve(.init(tenant: "t", session: "s2", amountNanoUSD: 900, sessionCapNanoUSD: 1_000, tenantCapNanoUSD: 2_000))
        await ledger.settle(other, actualNanoUSD: 900)
        do {
            _ = try await ledger.reserve(.init(tenant: "t", session: "s3", amountNanoUSD: 900, sessionCapNanoUSD: 1_000, tenantCapNanoUSD: 2_000))
            Issue.record("the tenant cap was crossed")
        } catch let exceeded as BudgetExceeded {
            #expect(exceeded.scope == .tenant)
            #expect(exceeded.committedNanoUSD == 1_750)
        }
    }

    /// A shared settlement that fails is retried in the background; when it lands, the alert it
    /// crosses is raised then, not lost.
    @Test("a settlement that lands on a retry still raises its budget_alert")
    func aLateSettlementStillAlerts() async throws {
        let alerts = AlertBox()
        let shared = FlakyBudgets()
        let ledger = BudgetLedger(usage: nil, shared: shared, alertThreshold: 0.8, logger: .init(label: "test")) { alerts.add($0) }
        let hold = try await ledger.reserve(.init(tenant: "t", session: "s", amountNanoUSD: 900, sessionCapNanoUSD: 10_000, tenantCapNanoUSD: 1_000))
        await ledger.settle(hold, actualNanoUSD: 900)
        #expect(alerts.count == 0, "the first attempt failed")
        for _ in 0..<40 where alerts.count == 0 { try await Task.sleep(for: .milliseconds(100)) }  // the first retry waits 1 s
        #expect(alerts.count == 1, "900 of the tenant's 1000 crossed 80%")
        #expect(shared.settlements == 2)
    }

    @Test("tier models route to instances or instance/model; bad routes and unknown instances are refused at load")
    func modelRoutes() throws {
        #expect(ModelRoute("openai") == ModelRoute(instance: "openai"))
        #expect(ModelRoute("openai/gpt-4o-mini") == ModelRoute(instance: "openai", model: "gpt-4o-mini"))
        #expect(ModelRoute("openai/") == nil && ModelRoute("Open AI") == nil)
        let dir = TestPlugins.temporaryDirectory("orion-models")
        try "id: openai\nplugin: engine-openai\n".write(toFile: dir + "/openai.yaml", atomically: true, encoding: .utf8)
        try "tiers:\n  free:\n    capabilities: { chat: openai }\n    models: { gpt-4o: [openai, missing/gpt-4o-mini] }\n"
            .write(toFile: dir + "/tiers.yaml", atomically: true, encoding: .utf8)
        do {
            _ = try DeploymentSpec.load(directory: dir)
            Issue.record("a route to an undeclared instance was accepted")
        } catch {
            #expect("\(error)".contains("tiers.free.models.gpt-4o"))
            #expect("\(error)".contains("'missing'"))
        }
        try "tiers:\n  free:\n    models: { gpt-4o: [openai, '/x'] }\n".write(toFile: dir + "/tiers.yaml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigErrors.self) { try DeploymentSpec.load(directory: dir) }
        try "tiers:\n  free:\n    models: { gpt-4o: [openai, openai/gpt-4o-mini] }\n".write(toFile: dir + "/tiers.yaml", atomically: true, encoding: .utf8)
        let spec = try DeploymentSpec.load(directory: dir)
        #expect(spec.tiers.first?.models["gpt-4o"] == [ModelRoute(instance: "openai"), ModelRoute(instance: "openai", model: "gpt-4o-mini")])
    }
}

final class AlertBox: @unchecked Sendable {
    // @unchecked: guarded by the lock.
    private let lock = NSLock()
    private var alerts: [BudgetAlert] = []
    func add(_ alert: BudgetAlert) { lock.withLock { alerts.append(alert) } }
    var count: Int { lock.withLock { alerts.count } }
}

/// Shared budgets whose first settlement fails (a dropped connection, say).
final class FlakyBudgets: SharedBudgets, @unchecked Sendable {
    // @unchecked: guarded by the lock.
    private let lock = NSLock()
    private var calls = 0
    var settlements: Int { lock.withLock { calls } }

    struct Dropped: Error {}

    func hold(_ request: BudgetLedger.Request, monthStart: Int64, monthEnd: Int64, now: Date) async throws -> String { "hold-1" }

    func settle(holdID: String, tenant: String, session: String?, monthStart: Int64, actualNanoUSD: Int64) async throws -> [SettledAccount] {
        let call = lock.withLock { calls += 1; return calls }
        if call == 1 { throw Dropped() }
        return [SettledAccount(session: nil, spentBefore: 0, spentAfter: actualNanoUSD)]
    }
}
