import Foundation
import Logging
import OrionCore
import OrionPluginSDK
import OrionTestSupport
import Testing

/// Cost arithmetic per token class, and prices looked up through a tier's `pricing` instance.
@Suite struct PricingTests {
    static let sonnet = ModelPrice(inputPerMillion: 3_000_000_000, outputPerMillion: 15_000_000_000, cacheReadPerMillion: 300_000_000)

    @Test func eachTokenClassCostsItsOwnPrice() {
        let cost = PriceBook.cost(TokenCounts(input: 1_000, output: 500, cacheRead: 2_000), at: Self.sonnet, model: "claude-3-5-sonnet")
        // 1,000 × 3 USD/M + 500 × 15 USD/M + 2,000 × 0.30 USD/M = 0.003 + 0.0075 + 0.0006 USD.
        #expect(cost == .priced(nanoUSD: 3_000_000 + 7_500_000 + 600_000))
        #expect(PriceBook.cost(TokenCounts(), at: Self.sonnet, model: "m") == .priced(nanoUSD: 0), "no tokens cost nothing")
    }

    @Test func eachClassRoundsHalfUpToAWholeNanoUSD() {
        let gemini = ModelPrice(inputPerMillion: 1_250_000_000, outputPerMillion: 5_000_000_000, cacheReadPerMillion: 312_500_000)
        // 3 cached tokens at 312.5 nano-USD each: 937.5 → 938.
        #expect(PriceBook.cost(TokenCounts(cacheRead: 3), at: gemini, model: "gemini-1.5-pro") == .priced(nanoUSD: 938))
        // 1 input token at 0.15 USD/M is exactly 150 nano-USD.
        let mini = ModelPrice(inputPerMillion: 150_000_000, outputPerMillion: 600_000_000)
        #expect(PriceBook.cost(TokenCounts(input: 1), at: mini, model: "gpt-4o-mini") == .priced(nanoUSD: 150))
    }

    @Test func hugeCountsDoNotOverflowOnTheWay() {
        // 10^12 tokens × 15 × 10^9 nano-USD per million overflows 64 bits before the division.
        let cost = PriceBook.cost(TokenCounts(output: 1_000_000_000_000), at: Self.sonnet, model: "m")
        #expect(cost == .priced(nanoUSD: 15_000_000_000_000_000))
        let absurd = PriceBook.cost(TokenCounts(output: Int64.max), at: Self.sonnet, model: "m")
        #expect(absurd.nanoUSD == nil)
    }

    @Test func aClassWithTokensAndNoPriceLeavesTheCallUnpriced() {
        let cost = PriceBook.cost(TokenCounts(input: 10, cacheWrite: 5), at: Self.sonnet, model: "claude-3-5-sonnet")
        guard case .unpriced(let reason) = cost else { Issue.record("priced \(cost)"); return }
        #expect(reason.contains("cache write"))
        #expect(PriceBook.cost(TokenCounts(input: -1), at: Self.sonnet, model: "m").nanoUSD == nil)
    }

    @Test func theTiersTableIsUsedAndAnUnknownModelIsFlaggedNotFree() async throws {
        let dir = TestPlugins.temporaryDirectory("orion-pricing")
        let pluginsD = dir + "/plugins.d"
        try FileManager.default.createDirectory(atPath: pluginsD, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: EmbedFiles.root + "/plugins.d/pricing.yaml", toPath: pluginsD + "/pricing.yaml")
        try "id: contract\nplugin: pricing-table\nconfig: { models: { gpt-4o: { input: 2.00, output: 8.00 } } }\n"
            .write(toFile: pluginsD + "/contract.yaml", atomically: true, encoding: .utf8)
        try "tiers:\n  free:\n    capabilities: { pricing: pricing }\n  pro:\n    capabilities: {}\n  enterprise:\n    capabilities: { pricing: [contract, pricing] }\n"
            .write(toFile: pluginsD + "/tiers.yaml", atomically: true, encoding: .utf8)
        let runtime = makeRuntime(dataDirectory: dir, pluginsD: pluginsD)
        try await runtime.reload()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let book = PriceBook(registry: runtime.registry, logger: logger)
        let tokens = TokenCounts(input: 1_000_000, output: 1_000_000)
        #expect(book.cost(tier: "free", model: "gpt-4o-mini-2024-07-18", tokens: tokens) == .priced(nanoUSD: 750_000_000))
        guard case .unpriced(let unknown) = book.cost(tier: "free", model: "my-finetune", tokens: tokens) else {
            Issue.record("an unknown model was priced")
            return
        }
        #expect(unknown.contains("my-finetune"))
        guard case .unpriced(let bare) = book.cost(tier: "pro", model: "gpt-4o", tokens: tokens) else {
            Issue.record("a tier without pricing priced a call")
            return
        }
        #expect(bare.contains("maps no pricing"))
        // Primary first; a model the primary does not know is priced by the next table.
        #expect(book.cost(tier: "enterprise", model: "gpt-4o", tokens: tokens) == .priced(nanoUSD: 10_000_000_000))
        #expect(book.cost(tier: "enterprise", model: "claude-3-5-haiku", tokens: tokens) == .priced(nanoUSD: 4_800_000_000))
        await runtime.shutdown()
    }
}
