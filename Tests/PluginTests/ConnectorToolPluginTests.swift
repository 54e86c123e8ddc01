import Foundation
import OrionAuditChain
import OrionPluginABI
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// The connector and tool plugins against the conformance kit, the audit chain's checks, and an
/// ABI 1.0 plugin loading into this 1.1 host.
@Suite struct ConnectorToolPluginTests {
    @Test(arguments: [
        ("connector-metrics", "{}"), ("connector-webhook", #"{"url":"http://127.0.0.1:9/hook","secret":"s3cret","maxAttempts":1}"#),
        ("tool-memory-search", "{}"), ("fixture-tool", "{}"),
    ])
    func passesTheConformanceKit(plugin: String, config: String) async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path(plugin), config: config)
        #expect(!reports.isEmpty)
        for report in reports { #expect(report.failures.isEmpty, "\(plugin) \(report.kind): \(report.failures)") }
    }

    @Test func theAuditConnectorPassesAndChainsWhatItWrites() async throws {
        let path = TestPlugins.temporaryDirectory("orion-audit-kit") + "/logs/audit.log"
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("connector-audit"), config: #"{"path":"\#(path)","events":["*"]}"#)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
        let verified = try AuditChain.verify(path: path)
        #expect(verified.isIntact)
        #expect(verified.verifiedRows == 1)
        // A second instance on the same file continues the chain.
        _ = try await PluginConformance.run(pluginAt: TestPlugins.path("connector-audit"), config: #"{"path":"\#(path)","events":["*"]}"#)
        #expect(try AuditChain.verify(path: path).verifiedRows == 2)
    }

    @Test func twoWritersOfOneLogKeepOneChain() async throws {
        let path = TestPlugins.temporaryDirectory("orion-audit-two") + "/audit.log"
        let image = try PluginImage(path: TestPlugins.path("connector-audit"))
        let config = Data(#"{"path":"\#(path)","events":["*"]}"#.utf8)
        // Two instances at once, as during a reload (or a replay from another process).
        let first = try PluginInstance(image: image, config: config, services: ConformanceHost())
        let second = try PluginInstance(image: image, config: config, services: ConformanceHost())
        defer { first.destroy(); second.destroy() }
        for index in 0..<6 {
            let writer = try #require((index % 2 == 0 ? first : second).connector)
            try await writer.deliver(PluginEvent(
                type: "side_effect", tenantID: "acme", workspaceID: "acme", runID: "", timestampNanoseconds: Int64(index), sequence: UInt64(index + 1),
                payload: Data(#"{"actor":"alice","action":"POST /api/memory","digest":"sha256:00"}"#.utf8)))
        }
        let report = try AuditChain.verify(path: path)
        #expect(report.isIntact, "\(report.problem ?? "")")
        #expect(report.verifiedRows == 6)
    }

    @Test func theWebhookRefusesAConfigurationWithoutURLOrSecret() throws {
        let image = try PluginImage(path: TestPlugins.path("connector-webhook"))
        #expect(throws: PluginLoadError.self) { try PluginInstance(image: image, config: Data(#"{"secret":"s","urlEnv":"ORION_TEST_UNSET_URL"}"#.utf8), services: ConformanceHost()) }
        #expect(throws: PluginLoadError.self) { try PluginInstance(image: image, config: Data(#"{"url":"http://x/","secretEnv":"ORION_TEST_UNSET_SECRET"}"#.utf8), services: ConformanceHost()) }
        #expect(throws: PluginLoadError.self) { try PluginInstance(image: image, config: Data(#"{"url":"ftp://x/","secret":"s"}"#.utf8), services: ConformanceHost()) }
    }

    /// Rows written by hand, so each kind of tampering is checked on its own.
    @Test func theChainFindsTheFirstChangedOrRemovedRow() throws {
        var rows: [AuditRow] = []
        for seq in Int64(1)...4 {
            rows.append(AuditRow(
                seq: seq, at: seq * 1_000, tenant: "acme", workspace: "acme", actor: "alice", action: "POST /api/memory", event: "side_effect",
                runId: "", digest: "sha256:ab", prev: rows.last?.hash ?? AuditRow.genesis))
        }
        func log(_ rows: [AuditRow]) throws -> Data { try rows.reduce(into: Data()) { $0.append(try $1.line()) } }
        #expect(AuditChain.verify(try log(rows)).isIntact)
        var edited = rows
        edited[1].actor = "mallory"
        #expect(AuditChain.verify(try log(edited)).problem?.contains("row 2 (line 2) was changed") == true)
        var rehashed = rows
        rehashed[1].actor = "mallory"
        rehashed[1].hash = rehashed[1].computedHash
        #expect(AuditChain.verify(try log(rehashed)).problem?.contains("row 2 was changed: row 3") == true)
        var removed = rows
        removed.remove(at: 2)
        let report = AuditChain.verify(try log(removed))
        #expect(report.problem?.contains("row 3 was removed") == true)
        #expect(report.verifiedRows == 2)
        #expect(AuditChain.verify(Data("not json\n".utf8)).problem?.contains("line 1 is not an audit row") == true)
    }

    @Test func anABI10PluginLoadsIntoThisHost() throws {
        let image = try PluginImage(path: TestPlugins.path("fixture-swap-v1"))
        #expect(image.info.abiMinor == 0)
        #expect(image.entry.tool == nil)
        #expect(image.table(for: .tool) == nil)
        #expect(image.table(for: .rateLimiter) != nil)
    }
}
