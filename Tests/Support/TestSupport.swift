import Foundation
import OrionPluginHost
import OrionPluginSDK
import Synchronization

/// Where the built plugins are: `$ORION_PLUGIN_DIR`, else next to the test binary (where
/// `swift build` puts every `.dynamic` product).
public enum TestPlugins {
    public static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["ORION_PLUGIN_DIR"], !dir.isEmpty { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        // Inside an .xctest bundle the binary sits deeper on some layouts; walk up to the .so files.
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("libratelimit-gcra.so")) {
            dir = (dir as NSString).deletingLastPathComponent
        }
        return dir
    }

    /// The path of `lib<name>.so`.
    public static func path(_ name: String) -> String {
        (directory as NSString).appendingPathComponent("lib\(name).so")
    }

    /// A fresh temporary directory, inside this test process's scratch root.
    public static func temporaryDirectory(_ label: String = "orion-test") -> String {
        let path = (scratchRoot as NSString).appendingPathComponent("\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// `$TMPDIR/orion-tests/<pid>`: every test's files live here and go when the process exits. A
    /// run that crashed or was killed leaves its root behind; the next run removes the roots of
    /// processes that are gone. Left to pile up, these files (stores, indexes, logs) fill the disk
    /// after a few dozen runs.
    public static let scratchRoot: String = {
        let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("orion-tests")
        let fm = FileManager.default
        for entry in (try? fm.contentsOfDirectory(atPath: base)) ?? [] {
            if let pid = Int32(entry), kill(pid, 0) != 0, errno == ESRCH {
                try? fm.removeItem(atPath: (base as NSString).appendingPathComponent(entry))
            }
        }
        let root = (base as NSString).appendingPathComponent("\(getpid())")
        try? fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestPlugins.scratchRoot) }
        return root
    }()
}

/// A clock the test moves by hand.
public final class ManualClock: Sendable {
    private let nanoseconds: Atomic<Int64>
    public init(start: Int64 = 1_000_000_000_000) { nanoseconds = Atomic(start) }
    public var now: Int64 { nanoseconds.load(ordering: .acquiring) }
    public func advance(nanoseconds delta: Int64) { nanoseconds.add(delta, ordering: .acquiringAndReleasing) }
    public func advance(seconds: Double) { advance(nanoseconds: Int64(seconds * 1e9)) }
}

/// Host services that record what plugins report and read a manual clock.
public final class RecordingHost: HostServices {
    public let clock: ManualClock
    private let state = Mutex<(logs: [String], counters: [String: Int64])>(([], [:]))

    public init(clock: ManualClock = ManualClock()) { self.clock = clock }

    public func log(level: PluginHost.LogLevel, message: String) { state.withLock { $0.logs.append(message) } }
    public func addCounter(name: String, delta: Int64) { state.withLock { $0.counters[name, default: 0] += delta } }
    public func monotonicNanoseconds() -> Int64 { clock.now }
    public func nowNanoseconds() -> Int64 { clock.now }

    public func counter(_ name: String) -> Int64 { state.withLock { $0.counters[name] ?? 0 } }
    public var logs: [String] { state.withLock { $0.logs } }
}

/// An integer shared between tasks.
public final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    public init() {}
    public func increment(by delta: Int = 1) { value.add(delta, ordering: .relaxed) }
    public var count: Int { value.load(ordering: .relaxed) }
}

/// A flag shared between tasks.
public final class SharedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A set of integers shared between tasks.
public final class SharedSet: Sendable {
    private let storage = Mutex<Set<Int64>>([])
    public init() {}
    public func insert(_ values: Set<Int64>) { storage.withLock { $0.formUnion(values) } }
    public var values: Set<Int64> { storage.withLock { $0 } }
}

/// Runs the built `orion` executable (next to the test binary) as an operator would.
public enum OrionCommand {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String

        /// The last line of standard output parsed as a JSON value of type `T` (the `--json`
        /// object every bench ends with), or nil.
        public func lastJSON<T>(as type: T.Type) -> T? {
            stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? T }
        }
    }

    public static var path: String { (TestPlugins.directory as NSString).appendingPathComponent("orion") }

    /// Runs `orion arguments…` to completion, in `directory` when given.
    public static func run(_ arguments: [String], in directory: String? = nil) throws -> Output {
        try run(executable: path, arguments, in: directory)
    }

    /// ``run(_:in:)`` from async code: the waiting happens on a thread of its own, never on one of
    /// the few threads Swift's tasks share — a test that talks to an in-process server would
    /// otherwise starve that server (and every other test) while the child runs.
    public static func run(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) async throws -> Output {
        try await run(executable: path, arguments, in: directory, environment: environment)
    }

    /// Any executable, as ``run(_:in:environment:)`` runs `orion`.
    public static func run(executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try run(executable: executable, arguments, in: directory, environment: environment) })
            }.start()
        }
    }

    static func run(executable: String, _ arguments: [String], in directory: String?, environment: [String: String]? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Both pipes are drained at once: a child that fills one while the other is read would block.
        let stderrData = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        Thread {
            stderrData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() }
            drained.signal()
        }.start()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        drained.wait()
        let stderr = stderrData.withLock { $0 }
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// Loopback TCP ports for servers a test starts as processes.
public enum TestPorts {
    /// A port below Linux's ephemeral range (32768 and up, which outgoing connections use) that
    /// nothing holds at the moment it is picked.
    public static func free() -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20_000..<32_000)
            if isFree(port) { return port }
        }
        return Int.random(in: 20_000..<32_000)
    }

    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
