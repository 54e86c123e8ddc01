import Foundation

/// A run as recorded.
public struct RunRecord: Sendable, Hashable {
    public enum Status: String, Sendable {
        case running
        /// The acting step returned an outcome, which was applied.
        case finished
        /// The acting step threw: an error of the system, not an outcome of the memories, so no
        /// utility changes.
        case error
        /// Someone cancelled it (`POST /v1/runs/{id}/cancel`); no utility changes.
        case cancelled

        public var hasEnded: Bool { self != .running }
    }
    public var id: String
    public var namespace: String
    public var session: String
    public var kind: RunRequest.Kind
    public var intent: String
    public var retrievedMemoryIDs: [String]
    public var usedMemoryIDs: [String]
    public var status: Status
    /// `success`, `partial`, `failure` or `reward`, once finished.
    public var outcome: String?
    public var reward: Double?
    public var error: String?
    /// Why memory retrieval did not serve the run, when it did not.
    public var degradedReason: String?
    public var newMemoryID: String?
    public var startedAt: Int64
    public var endedAt: Int64?
    public var tier: String
    public var user: String
    /// Filled when one run is read (``RunRunner/record(id:namespace:)``), empty in lists.
    public var steps: [RunStep] = []
    public var toolCalls: [ToolCallRecord] = []

    public var tenantID: String { Namespace.tenantID(of: namespace) ?? namespace }

    public init(
        id: String, namespace: String, session: String, kind: RunRequest.Kind, intent: String, retrievedMemoryIDs: [String], usedMemoryIDs: [String],
        status: Status, outcome: String? = nil, reward: Double? = nil, error: String? = nil, degradedReason: String?, newMemoryID: String? = nil,
        startedAt: Int64, endedAt: Int64? = nil, tier: String, user: String, steps: [RunStep] = [], toolCalls: [ToolCallRecord] = []
    ) {
        self.id = id
        self.namespace = namespace
        self.session = session
        self.kind = kind
        self.intent = intent
        self.retrievedMemoryIDs = retrievedMemoryIDs
        self.usedMemoryIDs = usedMemoryIDs
        self.status = status
        self.outcome = outcome
        self.reward = reward
        self.error = error
        self.degradedReason = degradedReason
        self.newMemoryID = newMemoryID
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.tier = tier
        self.user = user
        self.steps = steps
        self.toolCalls = toolCalls
    }
}
