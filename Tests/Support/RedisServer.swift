import Foundation

/// A real `redis-server` on a loopback port of its own, for one test: no persistence, stopped (and
/// startable again on the same port) by the test. `scripts/test.sh` installs the Debian package.
public final class RedisServer: @unchecked Sendable {
    // @unchecked: the process handle is touched only by the test that owns the server.
    public private(set) var port: Int
    private var process: Process?

    public static let executable = "/usr/bin/redis-server"

    public init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "redis-server is not installed: run scripts/test.sh (it installs the Debian package)"])
        }
        port = TestPorts.free()
        // A port another process holds makes redis-server exit at once: try another (five at most).
        for attempt in 0..<5 {
            do {
                try start()
                return
            } catch where attempt < 4 {
                port = TestPorts.free()
            }
        }
    }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    /// Starts the server and waits (at most 20 s: the machine may be busy) until it takes connections.
    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<2_000 where process.isRunning && !accepts() { usleep(10_000) }
        guard accepts() else {
            stop()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "redis-server did not start on port \(port)"])
        }
    }

    /// Stops the server at once (it keeps nothing) and waits until it is gone. SIGKILL: a child
    /// started from a test's thread may inherit a signal mask that holds SIGTERM back.
    public func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    deinit { stop() }

    /// Whether something accepts TCP connections on the port.
    func accepts() -> Bool {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
