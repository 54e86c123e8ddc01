import Crypto
import Foundation

/// One row of a hash-chained audit log: a JSON object per line.
///
/// `hash` is the SHA-256 (hex) of the row's fields in this order — `seq`, `at`, `tenant`,
/// `workspace`, `actor`, `action`, `event`, `runId`, `digest`, `prev` — each written as
/// `<byte length>:<UTF-8 bytes>\n` (numbers in decimal). `prev` is the previous row's `hash`
/// (64 zeros for the first row), so changing or removing any row breaks every link after it.
public struct AuditRow: Sendable, Hashable, Codable {
    public var seq: Int64
    /// Nanoseconds since the Unix epoch.
    public var at: Int64
    public var tenant: String
    public var workspace: String
    /// Who: the user behind the change.
    public var actor: String
    /// What: `POST /api/memory`, `run_cancelled`, …
    public var action: String
    /// The event type that carried it.
    public var event: String
    public var runId: String
    /// The digest of the change (`sha256:<hex>`).
    public var digest: String
    public var prev: String
    public var hash: String

    public static let genesis = String(repeating: "0", count: 64)

    public init(seq: Int64, at: Int64, tenant: String, workspace: String, actor: String, action: String, event: String, runId: String, digest: String, prev: String) {
        self.seq = seq
        self.at = at
        self.tenant = tenant
        self.workspace = workspace
        self.actor = actor
        self.action = action
        self.event = event
        self.runId = runId
        self.digest = digest
        self.prev = prev
        hash = ""
        hash = computedHash
    }

    /// The hash the row's content gives.
    public var computedHash: String {
        var bytes = Data()
        for field in ["\(seq)", "\(at)", tenant, workspace, actor, action, event, runId, digest, prev] {
            let utf8 = Data(field.utf8)
            bytes.append(contentsOf: Array("\(utf8.count):".utf8))
            bytes.append(utf8)
            bytes.append(0x0A)
        }
        return AuditChain.sha256(bytes)
    }

    /// The row as one line of the log (with its newline).
    public func line() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }
}

/// Reading and checking an audit log file.
public enum AuditChain {
    /// SHA-256 of `data`, hex.
    public static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// What a verification found.
    public struct Report: Sendable, Hashable {
        /// Rows read that chain correctly, up to the first problem.
        public var verifiedRows: Int
        /// The last good row's hash (record it elsewhere to detect a cut tail later).
        public var headHash: String
        public var headSeq: Int64
        /// The first problem: which row was changed or removed, and where. Nil when intact.
        public var problem: String?
        public var isIntact: Bool { problem == nil }
    }

    /// Checks every link of the log at `path`; stops at the first row that was changed or removed.
    public static func verify(path: String) throws -> Report {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return verify(data)
    }

    public static func verify(_ data: Data) -> Report {
        var report = Report(verifiedRows: 0, headHash: AuditRow.genesis, headSeq: 0)
        let decoder = JSONDecoder()
        var lineNumber = 0
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty { continue }
            guard let row = try? decoder.decode(AuditRow.self, from: Data(line)) else {
                report.problem = "line \(lineNumber) is not an audit row: it was changed (or torn by a crash while it was written)"
                return report
            }
            if row.seq != report.headSeq + 1 {
                report.problem = row.seq > report.headSeq + 1
                    ? "row \(report.headSeq + 1)\(row.seq > report.headSeq + 2 ? " to \(row.seq - 1)" : "") was removed (line \(lineNumber) holds row \(row.seq))"
                    : "row \(row.seq) at line \(lineNumber) is out of order after row \(report.headSeq): rows were changed or moved"
                return report
            }
            if row.hash != row.computedHash {
                report.problem = "row \(row.seq) (line \(lineNumber)) was changed: its content no longer gives its hash"
                return report
            }
            if row.prev != report.headHash {
                report.problem = "row \(report.headSeq) was changed: row \(row.seq) (line \(lineNumber)) chains to another hash"
                return report
            }
            report.verifiedRows += 1
            report.headHash = row.hash
            report.headSeq = row.seq
        }
        return report
    }

    /// The last row of the log at `path` (to continue the chain), or nil for a new log.
    public static func last(path: String) throws -> AuditRow? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let line = data.split(separator: 0x0A).last else { return nil }
        return try JSONDecoder().decode(AuditRow.self, from: Data(line))
    }
}
