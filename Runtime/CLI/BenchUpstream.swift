import ArgumentParser
import Foundation
import OrionUpstreamFake

/// `orion bench upstream`: serves the loopback stand-in for the OpenAI and Anthropic APIs (their
/// wire formats, deterministic echo answers) until stopped — for benchmarks, API fuzzing and trying
/// the chat endpoints without a provider account.
struct BenchUpstream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream",
        abstract: "Serve a fake OpenAI/Anthropic API on 127.0.0.1 (echo answers, real wire formats) until stopped.")

    @Option(help: "Port on 127.0.0.1 (0: any free port, printed at start).") var port = 0
    @Option(help: "Prompt tokens each answer reports.") var promptTokens = 12

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard promptTokens >= 0 else { throw ValidationError("--prompt-tokens must be 0 or more") }
    }

    func run() async throws {
        let fake = FakeUpstream(promptTokens: promptTokens, keepReceived: false)
        try await fake.run(port: port) { bound in
            let line = "fake upstream listening on http://127.0.0.1:\(bound) (OpenAI: /v1/chat/completions, /v1/embeddings; Anthropic: /v1/messages)\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}
