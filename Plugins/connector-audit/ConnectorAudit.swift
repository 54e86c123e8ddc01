import Foundation
#if canImport(Glibc)
import Glibc
#endif
import OrionAuditChain
import OrionPluginABI
import OrionPluginSDK
import Synchronization

/// `connector-audit`: an append-only, hash-chained audit log of side effects.
///
/// Each event it takes (by default `side_effect`: every request that changed something) becomes
/// one row — who, what, tenant, when, the digest of the change — appended to `path` and flushed to
/// disk before the delivery completes. Each row carries the hash of the previous one;
/// `orion audit verify PATH` reports the first row that was changed or removed.
final class ConnectorAudit: OrionPlugin, ConnectorPlugin {
    /// - Configuration keys:
    ///   - `path` (string, required): the log file; its directory is created. One instance per file.
    ///   - `events` (list of event types, default `[side_effect]`; `["*"]` for all).
    struct Configuration: Decodable, Sendable {
        var path: String
        var events: [String]?
    }

    static let descriptor = PluginDescriptor(
        id: "connector-audit", version: "1.0.0", capabilities: ["connectors"],
        configSchema: """
            {"type":"object","additionalProperties":false,"required":["path"],"properties":{
            "path":{"type":"string","minLength":1},
            "events":{"type":"array","items":{"type":"string","minLength":1}}}}
            """,
        summary: "An append-only audit log of side effects, each row chained to the previous one by its hash")

    let host: PluginHost
    let path: String
    let events: Set<String>
    /// The chain's head, the open file and its size after this instance's last append; one
    /// append at a time.
    private let state: Mutex<(seq: Int64, hash: String, file: FileHandle, size: UInt64)>

    init(configuration c: Configuration, host: PluginHost) throws {
        self.host = host
        path = c.path
        events = Set(c.events ?? ["side_effect"])
        let directory = (c.path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let last: AuditRow?
        do {
            last = try AuditChain.last(path: c.path)
        } catch {
            throw PluginError(
                .config,
                "the audit log '\(c.path)' ends with a line that is not an audit row; run `orion audit verify \(c.path)` and move the file aside if it is damaged")
        }
        if !FileManager.default.fileExists(atPath: c.path) {
            guard FileManager.default.createFile(atPath: c.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw PluginError(.config, "cannot create the audit log '\(c.path)' ('path'): check that its directory is writable")
            }
        }
        let file: FileHandle
        let size: UInt64
        do {
            file = try FileHandle(forWritingTo: URL(fileURLWithPath: c.path))
            size = try file.seekToEnd()
        } catch {
            throw PluginError(.config, "cannot open the audit log '\(c.path)' ('path') for appending: \(error)")
        }
        state = Mutex((last?.seq ?? 0, last?.hash ?? AuditRow.genesis, file, size))
    }

    deinit {
        state.withLock { try? $0.file.close() }
    }

    func deliver(_ event: PluginEvent) async throws {
        guard events.contains("*") || events.contains(event.type) else { return }
        let payload = (try? JSONSerialization.jsonObject(with: event.payload)) as? [String: Any] ?? [:]
        let actor = payload["actor"] as? String ?? payload["user"] as? String ?? ""
        let action = payload["action"] as? String ?? event.type
        let digest = payload["digest"] as? String ?? "sha256:" + AuditChain.sha256(event.payload)
        try state.withLock { state in
            // Writers of one file take turns (another instance during a reload, `orion connectors
            // replay` in another process); one that finds the file grown continues the chain from
            // the row now last.
            let descriptor = state.file.fileDescriptor
            guard flock(descriptor, LOCK_EX) == 0 else {
                throw PluginError(.unavailable, "the audit log '\(path)' could not be locked (errno \(errno))")
            }
            defer { flock(descriptor, LOCK_UN) }
            do {
                let size = try state.file.seekToEnd()
                if size != state.size, let last = try AuditChain.last(path: path) {
                    state.seq = last.seq
                    state.hash = last.hash
                }
                let row = AuditRow(
                    seq: state.seq + 1, at: event.timestampNanoseconds, tenant: event.tenantID, workspace: event.workspaceID, actor: actor,
                    action: action, event: event.type, runId: event.runID, digest: digest, prev: state.hash)
                let line = try row.line()
                try state.file.write(contentsOf: line)
                try state.file.synchronize()
                state.seq = row.seq
                state.hash = row.hash
                state.size = size + UInt64(line.count)
            } catch let error as PluginError {
                throw error
            } catch {
                throw PluginError(.unavailable, "the audit log '\(path)' could not be written: \(error)")
            }
        }
        host.increment(counter: "audit_rows_total")
    }
}

@c(orion_plugin_v1_entry)
public func orionPluginEntry(_ host: UnsafePointer<orion_host_api>?) -> UnsafePointer<orion_plugin_info>? {
    PluginExport.entry(ConnectorAudit.self, host: host)
}
