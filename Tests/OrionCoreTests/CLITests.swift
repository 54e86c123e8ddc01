import Foundation
import OrionTestSupport
import Synchronization
import Testing

/// The `orion` executable, run as operators run it.
@Suite struct CLITests {
    let orion = OrionCommand.path

    func run(_ arguments: [String]) async throws -> OrionCommand.Output { try await OrionCommand.run(arguments) }

    @Test func pluginsCheckPrintsInfoOrTheRefusal() async throws {
        let ok = try await run(["plugins", "check", TestPlugins.path("ratelimit-gcra")])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("ok: ratelimit-gcra 1.0.0"))
        #expect(ok.stdout.contains("rate_limiter"))
        let refused = try await run(["plugins", "check", TestPlugins.path("fixture-newer-minor")])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("plugin-newer-than-host"))
    }

    @Test func pluginsTestRunsTheConformanceKit() async throws {
        let good = try await run(["plugins", "test", TestPlugins.path("ratelimit-gcra")])
        #expect(good.status == 0, "\(good.stdout)")
        #expect(good.stdout.contains(" passed, 0 failed"))
        let bad = try await run(["plugins", "test", TestPlugins.path("fixture-swap-v1")])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("FAIL"))
    }

    func deployment() throws -> (config: String, pluginsD: String) {
        let dir = TestPlugins.temporaryDirectory("orion-cli")
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: limiter\nplugin: ratelimit-gcra\nrequired: true\n".write(toFile: pluginsD + "/limiter.yaml", atomically: true, encoding: .utf8)
        try "tiers:\n  free:\n    capabilities: { rate_limit: limiter }\n".write(toFile: pluginsD + "/tiers.yaml", atomically: true, encoding: .utf8)
        let config = (dir as NSString).appendingPathComponent("orion.yaml")
        try "dataDirectory: data\nplugins:\n  directory: plugins.d\n  watchIntervalSeconds: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
        return (config, pluginsD)
    }

    @Test func configCheckAndPluginsList() async throws {
        let (config, pluginsD) = try deployment()
        let check = try await run(["config", "check", "--config", config])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("tier free: 60 req/h"))
        let list = try await run(["plugins", "list", "--config", config])
        #expect(list.stdout.contains("limiter"))
        #expect(list.stdout.contains("free"))
        try "tiers:\n  free:\n    capabilities: { rate_limit: limitr }\n".write(toFile: pluginsD + "/tiers.yaml", atomically: true, encoding: .utf8)
        let broken = try await run(["config", "check", "--config", config])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("tiers.yaml"))
        #expect(broken.stderr.contains("tiers.free.capabilities.rate_limit"))
    }

    /// `orion serve` starts, reloads on SIGHUP (a broken file changes nothing, a fixed one
    /// applies), and stops cleanly on SIGTERM.
    @Test(.timeLimit(.minutes(1)))
    func serveReloadsOnSIGHUPAndStopsOnSIGTERM() async throws {
        let (config, pluginsD) = try deployment()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: orion)
        process.arguments = ["serve", "--config", config, "--log-level", "info"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let log = Mutex("")
        err.fileHandleForReading.readabilityHandler = { handle in
            let chunk = String(decoding: handle.availableData, as: UTF8.self)
            log.withLock { $0 += chunk }
        }
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        func waitFor(_ text: String, count: Int = 1) async throws -> Bool {
            for _ in 0..<500 {  // at most 10 s
                if log.withLock({ $0.components(separatedBy: text).count - 1 >= count }) { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return false
        }
        #expect(try await waitFor("orion serving"))
        #expect(try await waitFor("reload triggers ready"), "SIGHUP is trapped before the test sends it")

        try "id: limiter\nplugin: [broken\n".write(toFile: pluginsD + "/limiter.yaml", atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        #expect(try await waitFor("reload refused"))
        #expect(process.isRunning, "a broken reload does not stop the server")

        try "id: limiter\nplugin: ratelimit-gcra\nconfig: { limit: 7 }\n".write(toFile: pluginsD + "/limiter.yaml", atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        #expect(try await waitFor("orion.reload.reason=SIGHUP"))

        process.terminate()  // SIGTERM
        for _ in 0..<500 where process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        #expect(try await waitFor("orion stopped"))
    }

    /// A live `/v1/events` client does not hold the server at SIGTERM: its stream is ended first.
    @Test(.timeLimit(.minutes(1)))
    func serveStopsWithALiveEventSubscriber() async throws {
        let (config, _) = try deployment()
        let port = TestPorts.free()
        try "dataDirectory: data\nplugins:\n  directory: plugins.d\n  watchIntervalSeconds: 0\ngateway: { port: \(port) }\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let token = try await run(["token", "--config", config, "--tenant", "acme", "--roles", "member"]).stdout.split(separator: "\n").last.map(String.init) ?? ""
        let server = Process()
        server.executableURL = URL(fileURLWithPath: orion)
        server.arguments = ["serve", "--config", config, "--log-level", "info"]
        server.standardOutput = FileHandle.nullDevice
        let serverLog = (config as NSString).deletingLastPathComponent + "/serve.log"
        FileManager.default.createFile(atPath: serverLog, contents: nil)
        server.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: serverLog))
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        client.arguments = ["-sN", "--retry", "20", "--retry-connrefused", "--retry-delay", "1", "-H", "Authorization: Bearer \(token)", "http://127.0.0.1:\(port)/v1/events"]
        let out = Pipe()
        client.standardOutput = out
        try client.run()
        defer { if client.isRunning { client.terminate() } }
        let subscribed = Mutex(false)
        out.fileHandleForReading.readabilityHandler = { handle in
            if String(decoding: handle.availableData, as: UTF8.self).contains("subscribed") { subscribed.withLock { $0 = true } }
        }
        for _ in 0..<1000 where !subscribed.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }  // at most 20 s
        #expect(subscribed.withLock { $0 }, "\((try? String(contentsOfFile: serverLog, encoding: .utf8)) ?? "")")
        server.terminate()  // SIGTERM
        for _ in 0..<500 where server.isRunning || client.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!server.isRunning, "the server still waits on its event stream")
        #expect(!client.isRunning, "the stream did not end")
        out.fileHandleForReading.readabilityHandler = nil
    }

    @Test func benchPrintsOneJSONObjectLast() async throws {
        let output = try await run(["bench", "plugin-call", "--iterations", "20000", "--rounds", "1", "--json"])
        #expect(output.status == 0, "\(output.stderr)")
        let object = output.lastJSON(as: [String: Double].self)
        for key in ["direct_ns", "c_plugin_ns", "swift_plugin_ns", "c_ratio", "swift_ratio"] {
            #expect(object?[key] != nil, "missing \(key)")
        }
    }
}
