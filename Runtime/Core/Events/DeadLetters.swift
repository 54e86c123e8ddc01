import Foundation
import OrionPluginHost
import Synchronization

/// Events a connector failed to deliver, one JSON line each in `<directory>/<instance>.jsonl`:
/// the event's fields (as `/v1/events` sends them) plus `error` and `failedAtNs`.
///
/// A line is appended and flushed before the event is let go, so a crash loses none.
/// ``replay(instance:deliver:)`` moves the file aside first: what fails again is written back to a
/// fresh file, and nothing is delivered twice by one replay.
public final class DeadLetters: Sendable {
    public let directory: String
    private let lock = Mutex(())

    public init(directory: String) {
        self.directory = directory
    }

    public func path(instance: String) -> String {
        (directory as NSString).appendingPathComponent("\(instance).jsonl")
    }

    /// Appends `event`, failed with `error`.
    public func append(_ event: RunEvent, instance: String, error: String, now: Int64 = SystemClock.nowNanoseconds()) throws {
        var line = event.encoded(adding: ["error": error, "failedAtNs": now])
        line.append(0x0A)
        try lock.withLock { _ in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = self.path(instance: instance)
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
                }
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
            try handle.synchronize()
        }
    }

    /// The dead-lettered events of `instance`, oldest first, with the reason each failed. Lines
    /// that are not events (a torn last line after a crash) are skipped and counted.
    public func read(instance: String) throws -> (events: [(event: RunEvent, error: String)], unreadable: Int) {
        try Self.parse(path: path(instance: instance))
    }

    static func parse(path: String) throws -> (events: [(event: RunEvent, error: String)], unreadable: Int) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], 0) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var events: [(RunEvent, String)] = []
        var unreadable = 0
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any], let event = RunEvent(jsonObject: object) else {
                unreadable += 1
                continue
            }
            events.append((event, object["error"] as? String ?? ""))
        }
        return (events, unreadable)
    }

    /// Instances with dead-lettered events.
    public func instances() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".jsonl") }.map { String($0.dropLast(".jsonl".count)) }.sorted()
    }

    public struct ReplayReport: Sendable, Hashable {
        public var delivered = 0
        public var failed = 0
        public var unreadable = 0
    }

    /// Resends every dead-lettered event of `instance` through `deliver`, oldest first. An event
    /// that fails again goes back to the dead-letter file with its new error; lines that are not events
    /// are kept aside in `<instance>.jsonl.unreadable-<time>`.
    public func replay(instance: String, deliver: (RunEvent) async throws -> Void) async throws -> ReplayReport {
        let path = self.path(instance: instance)
        let aside = path + ".replaying"
        try lock.withLock { _ in
            // A replay interrupted earlier left its file aside: take it up again before new failures.
            if FileManager.default.fileExists(atPath: aside) {
                if FileManager.default.fileExists(atPath: path) {
                    let newer = try Data(contentsOf: URL(fileURLWithPath: path))
                    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: aside))
                    try handle.seekToEnd()
                    try handle.write(contentsOf: newer)
                    try handle.close()
                    try FileManager.default.removeItem(atPath: path)
                }
            } else if FileManager.default.fileExists(atPath: path) {
                try FileManager.default.moveItem(atPath: path, toPath: aside)
            }
        }
        let (events, unreadable) = try Self.parse(path: aside)
        var report = ReplayReport(unreadable: unreadable)
        for (event, _) in events {
            do {
                try await deliver(event)
                report.delivered += 1
            } catch {
                report.failed += 1
                try append(event, instance: instance, error: "replay: \(error)")
            }
        }
        if unreadable > 0 {
            // Kept for a person to read: lines that are not events are never thrown away.
            try? FileManager.default.moveItem(atPath: aside, toPath: path + ".unreadable-\(SystemClock.nowNanoseconds())")
        } else {
            try? FileManager.default.removeItem(atPath: aside)
        }
        return report
    }
}
