import Foundation
import OrionTestSupport
import Testing

/// The real `openai` Python client (scripts/client-setup.sh installs it into .deps/client) against
/// Orion's /v1 API, unchanged: plain and streamed chat, embeddings (base64 and float), models,
/// and a refusal. The script is Tests/Clients/openai_client.py.
@Suite("The openai Python client")
struct OpenAIClientTests {
    @Test("chat, streamed chat, embeddings and models work through the real client")
    func realClient() async throws {
        let clientPath = EmbedFiles.root + "/.deps/client"
        try #require(
            FileManager.default.fileExists(atPath: clientPath + "/openai"),
            "the openai client is not installed: run scripts/client-setup.sh (the README's test command does)")
        let upstream = try await UpstreamHarness.start()
        defer { upstream.stop() }
        let gateway = try await GatewayHarness.start(engines: upstream.engines())
        defer { Task { await gateway.stop() } }
        let token = try await GatewayHarness.token()
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = clientPath
        environment["ORION_BASE_URL"] = gateway.base
        environment["ORION_TOKEN"] = token
        environment["NO_PROXY"] = "127.0.0.1"
        // Waited for on a thread of its own: the gateway it talks to runs in this process.
        let result = try await OrionCommand.run(
            executable: "/usr/bin/env", ["python3", EmbedFiles.root + "/Tests/Clients/openai_client.py"], environment: environment)
        let text = result.stdout + result.stderr
        #expect(result.status == 0, "\(text)")
        #expect(text.contains("openai client: ok"))
    }
}
