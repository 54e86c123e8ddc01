import Foundation
import Logging
import Metrics

/// Query expansion by the tier's fast engine: the instances a tier maps to `query_expansion`
/// (each with its default model) write two rephrasings of a long memory query. The call is charged
/// to the tenant like any engine call and recorded (task type `query_expansion`); it gets
/// ``timeout`` at most, and any failure — no engine mapped, a refusal, the budget, the deadline —
/// gives no rephrasings, so retrieval goes on with the query alone.
public struct EngineQueryExpander: QueryExpanding {
    public static let capability = "query_expansion"
    let engines: ChatEngines
    let timeout: Duration
    let logger: Logger

    public init(engines: ChatEngines, timeout: Duration = .seconds(2), logger: Logger) {
        self.engines = engines
        self.timeout = timeout
        self.logger = logger
    }

    static let instruction = """
        Rewrite the user's search query two different ways that keep its meaning, using other words \
        where you can. Answer with exactly two lines, one rewrite per line, and nothing else.
        """

    public func rephrasings(of intent: String, tier: String, namespace: String, tenantCapUSD: Double?) async -> [String] {
        guard let tenant = Namespace.tenantID(of: namespace),
            let ids = try? engines.registry.instanceIDs(tier: tier, capability: Self.capability), !ids.isEmpty
        else { return [] }
        let account = EngineAccount(
            tier: tier, tenant: tenant, user: "system", session: "query-expansion", requestID: UUID().uuidString.lowercased(),
            isSingleCallSession: true, tenantCapUSD: tenantCapUSD)
        let payload = ChatPayload(object: [
            "messages": [["role": "system", "content": Self.instruction], ["role": "user", "content": intent]], "max_tokens": 160,
        ])
        let engines = self.engines
        do {
            let answer = try await Deadline.run(timeout) {
                try await engines.complete(payload, for: account, routes: ids.map { ModelRoute(instance: $0) }, taskType: "query_expansion")
            }
            let object = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
            let text = ((object?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String ?? ""
            return Self.lines(text, excluding: intent)
        } catch {
            Counter(label: "orion_query_expansion_failures_total").increment()
            logger.info("query expansion skipped", metadata: ["orion.tier": "\(tier)", "orion.reason": "\(error)"])
            return []
        }
    }

    /// Up to two distinct non-empty lines, list markers and quotes removed, the query itself left out.
    public static func lines(_ text: String, excluding intent: String) -> [String] {
        var seen: Set<String> = [intent.lowercased()]
        var out: [String] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            // A list marker ("1.", "2)", "-", "*", "•") followed by a space; "3D printing" keeps its 3.
            if let marker = line.firstRange(of: /^(\d{1,2}[.)]|[-*•])\s+/) { line.removeSubrange(marker) }
            line = line.trimmingCharacters(in: CharacterSet(charactersIn: " \"'“”"))
            guard !line.isEmpty, line.count <= 1000, seen.insert(line.lowercased()).inserted else { continue }
            out.append(line)
            if out.count == 2 { break }
        }
        return out
    }
}
