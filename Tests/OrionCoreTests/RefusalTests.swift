import Foundation
import Logging
import Metrics
import MetricsTestKit
import OrionCore
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// Every refusal the loader knows: its code, a message that says how to fix it, and that the
/// runtime goes on loading the other plugins.
@Suite struct RefusalTests {
    struct Case: Sendable, CustomStringConvertible {
        let fixture: String
        let code: PluginLoadError.Code
        let messageHint: String
        var description: String { fixture }
    }

    static let imageCases: [Case] = [
        Case(fixture: "fixture-no-entry", code: .missingEntrySymbol, messageHint: "orion_plugin_v1_entry"),
        Case(fixture: "fixture-abi-v2", code: .abiMajorMismatch, messageHint: "Rebuild it against PluginSDK 1.x"),
        Case(fixture: "fixture-newer-minor", code: .pluginNewerThanHost, messageHint: "Upgrade Orion"),
        Case(fixture: "fixture-small-struct", code: .structTooSmall, messageHint: "struct_size"),
        Case(fixture: "fixture-toolchain", code: .toolchainMismatch, messageHint: "rebuild it with \(Toolchain.tag)"),
        Case(fixture: "fixture-bad-manifest", code: .invalidManifest, messageHint: "not valid JSON"),
        Case(fixture: "fixture-unresolved", code: .unresolvedSymbol, messageHint: "-z defs"),
    ]

    @Test(arguments: imageCases)
    func imageRefusal(_ c: Case) throws {
        do {
            _ = try PluginImage(path: TestPlugins.path(c.fixture))
            Issue.record("\(c.fixture) loaded")
        } catch {
            #expect(error.code == c.code)
            #expect(error.message.contains(c.messageHint), "\(error.message)")
            if c.code == .unresolvedSymbol || c.code == .missingEntrySymbol {
                #expect(error.cause?.isEmpty == false, "the dlerror text is kept as the cause")
            }
        }
    }

    @Test func emptyFileAndNotELF() throws {
        let dir = TestPlugins.temporaryDirectory()
        let empty = (dir as NSString).appendingPathComponent("empty.so")
        let text = (dir as NSString).appendingPathComponent("text.so")
        FileManager.default.createFile(atPath: empty, contents: Data())
        FileManager.default.createFile(atPath: text, contents: Data("#!/bin/sh\necho not a plugin\n".utf8))
        #expect(refusal(empty)?.code == .emptyFile)
        #expect(refusal(text)?.code == .notELF)
        #expect(refusal(text)?.message.contains("not an ELF") == true)
    }

    func refusal(_ path: String) -> PluginLoadError? {
        do {
            _ = try PluginImage(path: path)
            return nil
        } catch {
            return error
        }
    }

    /// A deployment with one good instance and one instance per refusal: each refusal is
    /// reported with its code, and the good instance serves.
    @Test func theRuntimeGoesOnWithTheOtherPlugins() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        func write(_ name: String, _ yaml: String) throws {
            try yaml.write(toFile: (pluginsD as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try write("good.yaml", "id: good\npath: \(TestPlugins.path("ratelimit-gcra"))\nconfig: { limit: 5 }\n")
        try write("zz-duplicate.yaml", "id: good\npath: \(TestPlugins.path("fixture-swap-v1"))\n")
        for c in Self.imageCases {
            try write("\(c.fixture).yaml", "id: \(c.fixture)\npath: \(TestPlugins.path(c.fixture))\n")
        }
        try write("pinned.yaml", "id: pinned\npath: \(TestPlugins.path("fixture-swap-v1"))\nsha256: \(String(repeating: "ab", count: 32))\n")
        try write("schema.yaml", "id: schema\npath: \(TestPlugins.path("fixture-swap-v1"))\nconfig: { colour: blue }\n")
        try write("create.yaml", "id: create\npath: \(TestPlugins.path("fixture-swap-v2"))\nconfig: { failCreate: true }\n")
        try write("missing.yaml", "id: missing\nplugin: no-such-plugin\n")
        try write("empty.yaml", "id: empty\npath: \(dir)/nothing-here.so\n")

        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        let report = try await runtime.reload()
        let codes = Dictionary(report.refusals.map { ($0.instanceID + "@" + ($0.file as NSString).lastPathComponent, $0.error.code) }, uniquingKeysWith: { a, _ in a })
        #expect(codes["good@good.yaml"] == nil)
        #expect(codes["good@zz-duplicate.yaml"] == .duplicateInstanceID)
        for c in Self.imageCases { #expect(codes["\(c.fixture)@\(c.fixture).yaml"] == c.code) }
        #expect(codes["pinned@pinned.yaml"] == .sha256Mismatch)
        #expect(codes["schema@schema.yaml"] == .configRejected)
        #expect(codes["create@create.yaml"] == .configRejected)
        #expect(codes["missing@missing.yaml"] == .pluginNotFound)
        #expect(codes["empty@empty.yaml"] == .fileNotFound)
        let schemaMessage = try #require(report.refusals.first { $0.instanceID == "schema" }).error.message
        #expect(schemaMessage.contains("unknown key 'colour'"))

        let lease = try runtime.registry.lease(kind: .rateLimiter, id: "good")
        #expect(try #require(lease.rateLimiter).acquire(key: "k").allowed)
        lease.release()
        #expect(runtime.registry.snapshot.instances.keys.sorted() == ["good"])
        await runtime.shutdown()
    }

    @Test func aRequiredInstanceThatFailsStopsStartUpWithItsMessage() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try "id: good\npath: \(TestPlugins.path("fixture-swap-v1"))\n".write(toFile: pluginsD + "/good.yaml", atomically: true, encoding: .utf8)
        try "id: core\nrequired: true\npath: \(TestPlugins.path("fixture-abi-v2"))\n".write(toFile: pluginsD + "/core.yaml", atomically: true, encoding: .utf8)
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        do {
            try await runtime.reload()
            Issue.record("start-up succeeded")
        } catch {
            guard case .requiredInstanceFailed(let refusal) = error.reason else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(refusal.instanceID == "core")
            #expect(refusal.error.code == .abiMajorMismatch)
            #expect("\(error)".contains("Rebuild it against PluginSDK 1.x"))
        }
        #expect(runtime.registry.snapshot.instances.isEmpty, "nothing was published")
    }

    @Test func aValidPinLoads() async throws {
        let dir = TestPlugins.temporaryDirectory()
        let pluginsD = (dir as NSString).appendingPathComponent("plugins.d")
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        let sha = try ImageCache.sha256(ofFileAt: TestPlugins.path("fixture-swap-v1"))
        try "id: pinned\npath: \(TestPlugins.path("fixture-swap-v1"))\nsha256: \(sha.uppercased())\n".write(toFile: pluginsD + "/pinned.yaml", atomically: true, encoding: .utf8)
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        let report = try await runtime.reload()
        #expect(report.refusals.isEmpty)
        #expect(report.created == ["pinned"])
        await runtime.shutdown()
    }
}

func makeRuntime(
    dataDirectory: String, pluginsD: String, metrics: any MetricsFactory = TestMetrics(),
    onDestroyed: @escaping @Sendable (InstanceHandle) -> Void = { _ in }
) -> PluginRuntime {
    var config = RuntimeConfig()
    config.dataDirectory = dataDirectory
    config.plugins.directory = pluginsD
    config.plugins.searchPaths = [TestPlugins.directory]
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return PluginRuntime(config: config, logger: logger, locator: PluginLocator(configured: [TestPlugins.directory], includeExecutableDirectory: false), metrics: metrics, onDestroyed: onDestroyed)
}
