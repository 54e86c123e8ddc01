import ArgumentParser
import Foundation
import Logging
import OrionCore

/// `orion cost --model M --input N --output N`: what one engine call would cost with the
/// deployment's pricing tables, as the tier would price it.
struct CostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost", abstract: "Price one engine call with the tier's pricing tables (plugins.d).")

    @Option(help: "The model name, as an engine reports it (dated names are priced by their family).") var model: String
    @Option(help: "Input tokens.") var input: Int64 = 0
    @Option(help: "Output tokens.") var output: Int64 = 0
    @Option(help: "Cached input tokens read.") var cacheRead: Int64 = 0
    @Option(help: "Cache tokens written.") var cacheWrite: Int64 = 0
    @Option(help: "The tier whose tables price the call (default: plugins.defaultTier).") var tier: String?
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        guard [input, output, cacheRead, cacheWrite].allSatisfy({ $0 >= 0 }) else { throw ValidationError("token counts must be 0 or more") }
    }

    func run() async throws {
        let (config, logger, runtime) = try options.makeRuntime(logLevel: .error)
        try await runtime.reload(reason: "cost")
        let tier = tier ?? config.plugins.defaultTier
        let tokens = TokenCounts(input: input, output: output, cacheRead: cacheRead, cacheWrite: cacheWrite)
        let cost = PriceBook(registry: runtime.registry, logger: logger).cost(tier: tier, model: model, tokens: tokens)
        await runtime.shutdown()
        switch cost {
        case .priced(let nano):
            print(String(format: "%@ (tier %@): %.9f USD (%lld nano-USD)", model as NSString, tier as NSString, Double(nano) / 1e9, nano))
        case .unpriced(let reason):
            print("\(model) (tier \(tier)): unpriced — \(reason)")
            throw ExitCode(1)
        }
    }
}
