import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionTestSupport
import Testing

/// The complete plugins printed in docs/plugin-abi.md build and pass the conformance kit.
@Suite struct DocExampleTests {
    static let root: String = {
        var dir = #filePath
        for _ in 0..<3 { dir = (dir as NSString).deletingLastPathComponent }
        return dir
    }()

    static func block(_ opening: String) throws -> String {
        let doc = try String(contentsOfFile: root + "/docs/plugin-abi.md", encoding: .utf8)
        let start = try #require(doc.range(of: opening))
        let end = try #require(doc.range(of: "\n```\n", range: start.upperBound..<doc.endIndex))
        return String(doc[start.upperBound..<end.lowerBound]) + "\n"
    }

    @Test func theSwiftExampleIsTheBuiltFixture() async throws {
        let printed = try Self.block("```swift\n// Sources/RateLimitFixed/RateLimitFixed.swift\n")
        let built = try String(contentsOfFile: Self.root + "/Tests/Fixtures/doc-example-swift/RateLimitFixed.swift", encoding: .utf8)
        #expect(printed == built, "docs/plugin-abi.md and Tests/Fixtures/doc-example-swift differ")
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("ratelimit-fixed"), config: #"{"limit": 10}"#)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }

    @Test func theCExampleCompilesAndConforms() async throws {
        let source = try Self.block("```c\n")
        let dir = TestPlugins.temporaryDirectory("orion-doc-c")
        try source.write(toFile: dir + "/fixed.c", atomically: true, encoding: .utf8)
        let output = dir + "/libratelimit-fixed-c.so"
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-Wl,-z,defs", "-I", Self.root + "/PluginSDK/ABI/include", dir + "/fixed.c", "-o", output, "-lpthread"]
        try cc.run()
        cc.waitUntilExit()
        #expect(cc.terminationStatus == 0)
        let reports = try await PluginConformance.run(pluginAt: output, config: #"{"limit": 10}"#)
        #expect(reports.count == 1)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }
}
