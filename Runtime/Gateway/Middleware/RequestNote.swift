import Foundation
import Synchronization

/// What inner middleware learned about a request, for the outermost one to log and measure:
/// the context is passed down by value, so this shared note carries facts back up.
final class RequestNote: Sendable {
    struct Facts {
        var tenantID: String?
        var tier: String?
        var body: Data?
    }
    private let facts = Mutex(Facts())

    var tenantID: String? { facts.withLock { $0.tenantID } }
    var tier: String? { facts.withLock { $0.tier } }

    /// The JSON body of the response, as the handler wrote it (for idempotent replay).
    var body: Data? {
        get { facts.withLock { $0.body } }
        set { facts.withLock { $0.body = newValue } }
    }

    func set(tenantID: String, tier: String) {
        facts.withLock {
            $0.tenantID = tenantID
            $0.tier = tier
        }
    }
}
