import Foundation
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK
import OrionTestSupport
import Testing

/// pricing-table through the C ABI: the shipped table, look-up rules, LiteLLM import, refusals.
@Suite struct PricingTableTests {
    /// Loaded once; a plugin that does not load fails each test that needs it, never the process.
    static let loaded = Result { () throws(PluginLoadError) in try PluginImage(path: TestPlugins.path("pricing-table")) }

    /// An instance from the config JSON `config` (kept alive by the caller).
    static func instance(_ config: String) throws(PluginLoadError) -> PluginInstance {
        try PluginInstance(image: loaded.get(), config: Data(config.utf8), services: RecordingHost())
    }

    /// plugins.d/pricing.yaml's models, as the deployment hands them to the plugin.
    static var shippedConfig: String {
        get throws {
            let yaml = try String(contentsOfFile: EmbedFiles.root + "/plugins.d/pricing.yaml", encoding: .utf8)
            // Each model line reads `name: { input: …, output: …[, cacheRead: …] }`.
            var models: [String] = []
            for line in yaml.split(separator: "\n") where line.hasPrefix("    ") && line.contains("{") {
                let name = line.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)[0]
                var body = String(line[line.firstIndex(of: "{")!...])
                for key in ["input", "output", "cacheRead", "cacheWrite"] { body = body.replacingOccurrences(of: "\(key):", with: "\"\(key)\":") }
                models.append("\"\(name)\": \(body)")
            }
            return #"{"models": {\#(models.joined(separator: ", "))}}"#
        }
    }

    @Test func theShippedTableHoldsTheListedPricesInNanoUSD() throws {
        let instance = try Self.instance(try Self.shippedConfig)
        defer { withExtendedLifetime(instance) {} }
        let pricing = try #require(instance.pricing)
        let sonnet = try pricing.price(model: "claude-3-5-sonnet")
        #expect(sonnet == ModelPrice(inputPerMillion: 3_000_000_000, outputPerMillion: 15_000_000_000, cacheReadPerMillion: 300_000_000))
        let mini = try pricing.price(model: "gpt-4o-mini")
        #expect(mini.cacheReadPerMillion == 75_000_000, "0.075 USD is exactly 75,000,000 nano-USD")
        #expect(try pricing.price(model: "gemini-1.5-pro").cacheReadPerMillion == 312_500_000)
        #expect(try pricing.price(model: "qwen-72b").cacheReadPerMillion == nil, "a class left out is not priced")
        for model in ["claude-3-5-haiku", "gpt-4o", "gemini-2.0-flash", "llama-3.3-70b"] { _ = try pricing.price(model: model) }
    }

    @Test func datedNamesFindTheirFamilyAndTheLongestPrefixWins() throws {
        let instance = try Self.instance(try Self.shippedConfig)
        defer { withExtendedLifetime(instance) {} }
        let pricing = try #require(instance.pricing)
        #expect(try pricing.price(model: "gpt-4o-mini-2024-07-18").inputPerMillion == 150_000_000, "gpt-4o-mini, not gpt-4o")
        #expect(try pricing.price(model: "gpt-4o-2024-08-06").inputPerMillion == 2_500_000_000)
        #expect(try pricing.price(model: "claude-3-5-sonnet@20241022").outputPerMillion == 15_000_000_000)
        // A prefix must end at a separator: "gpt-4oxyz" is not gpt-4o.
        for unknown in ["gpt-4oxyz", "gpt-5", "", "claude"] {
            #expect(throws: PluginError.self) { try pricing.price(model: unknown) }
            do { _ = try pricing.price(model: unknown) } catch { #expect(error.code == .notFound, "\(unknown)") }
        }
    }

    @Test func liteLLMPricesAreImportedPerTokenAndConfiguredModelsWin() throws {
        let path = TestPlugins.temporaryDirectory() + "/model_prices_and_context_window.json"
        try """
            {
              "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "mode": "chat"},
              "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06, "mode": "chat"},
              "anthropic/claude-3-5-sonnet-20241022": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06},
              "text-embedding-3-small": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0, "mode": "embedding"},
              "dall-e-3": {"mode": "image_generation", "output_cost_per_image": 0.04}
            }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let instance = try Self.instance(#"{"litellm": "\#(path)", "models": {"gpt-4o": {"input": 2.0, "output": 8.0}}}"#)
        defer { withExtendedLifetime(instance) {} }
        let pricing = try #require(instance.pricing)
        let sonnet = try pricing.price(model: "anthropic/claude-3-5-sonnet-20241022")
        #expect(sonnet == ModelPrice(inputPerMillion: 3_000_000_000, outputPerMillion: 15_000_000_000, cacheReadPerMillion: 300_000_000, cacheWritePerMillion: 3_750_000_000))
        #expect(try pricing.price(model: "text-embedding-3-small") == ModelPrice(inputPerMillion: 20_000_000, outputPerMillion: 0))
        #expect(try pricing.price(model: "gpt-4o") == ModelPrice(inputPerMillion: 2_000_000_000, outputPerMillion: 8_000_000_000), "the configured model wins whole")
        #expect(throws: PluginError.self) { try pricing.price(model: "dall-e-3") }
        #expect(throws: PluginError.self) { try pricing.price(model: "sample_spec") }
    }

    @Test func wrongConfigurationsAreRefusedWithWhatToFix() throws {
        let bad: [(String, String)] = [
            (#"{"models": {"m": {"input": -1}}}"#, "0 or more"),
            (#"{"models": {"m": {"input": 1, "cached": 0.5}}}"#, "unknown price class 'cached'"),
            (#"{"models": {"": {"input": 1}}}"#, "empty model name"),
            (#"{"litellm": "/nonexistent/prices.json"}"#, "cannot read the LiteLLM price file"),
        ]
        for (config, says) in bad {
            do {
                _ = try Self.instance(config)
                Issue.record("accepted \(config)")
            } catch {
                #expect(error.message.contains(says), "\(config): \(error.message)")
            }
        }
        let notJSON = TestPlugins.temporaryDirectory() + "/prices.json"
        try "[1, 2]".write(toFile: notJSON, atomically: true, encoding: .utf8)
        do {
            _ = try Self.instance(#"{"litellm": "\#(notJSON)"}"#)
            Issue.record("accepted a JSON array as a LiteLLM file")
        } catch {
            #expect(error.message.contains("not a JSON object of models"), "\(error.message)")
        }
    }

    @Test func theConformanceKitPasses() async throws {
        let reports = try await PluginConformance.run(pluginAt: TestPlugins.path("pricing-table"), config: try Self.shippedConfig)
        #expect(!reports.isEmpty)
        for report in reports { #expect(report.failures.isEmpty, "\(report.failures)") }
    }
}
