import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// The SDK's retriever bridging, through a retriever fixture written with the SDK.
@Suite struct SwiftRetrieverTests {
    @Test func passesTheRetrieverConformanceKit() async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("fixture-swift-retriever"))
        #expect(reports.map(\.kind) == [.retriever])
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }

    @Test func aThrowingInitBecomesAConfigRefusalWithItsMessage() throws {
        let image = try PluginImage(path: TestPlugins.path("fixture-swift-retriever"))
        do {
            _ = try PluginInstance(image: image, config: Data(#"{"failCreate": true}"#.utf8), services: RecordingHost())
            Issue.record("create succeeded")
        } catch {
            #expect(error.code == .configRejected)
            #expect(error.message.contains("'failCreate' is true"))
        }
    }

    @Test func aDecodingErrorNamesTheKey() throws {
        let image = try PluginImage(path: TestPlugins.path("fixture-swift-retriever"))
        do {
            _ = try PluginInstance(image: image, config: Data(#"{"failCreate": "yes"}"#.utf8), services: RecordingHost())
            Issue.record("create succeeded")
        } catch {
            #expect(error.code == .configRejected)
            #expect(error.message.contains("'failCreate' must be a boolean"))
        }
    }

    @Test func conformanceKitReportsABrokenPlugin() async throws {
        // The C fixture is a rate limiter that ignores limits: the kit must notice.
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("fixture-swap-v1"))
        let failures = reports.flatMap(\.failures).map(\.name)
        #expect(failures.contains("refuses once the limit is used up") || failures.contains("cost 0 is refused with an error"))
    }
}
