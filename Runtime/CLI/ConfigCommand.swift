import ArgumentParser
import Foundation
import Logging
import OrionCore

/// `orion config check`: the runtime configuration, plugins.d and the tier manifest, loaded the
/// way `orion serve` loads them. Exit 0 when start-up would succeed with every instance.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validate configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate orion.yaml, plugins.d/ and the tier manifest.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let (config, _, runtime) = try options.makeRuntime(logLevel: .critical)
            print("runtime config: \(config.source) (environment \(config.environment.rawValue), instance \(config.instanceID))")
            do {
                let report = try await runtime.reload(reason: "config check")
                let snapshot = runtime.registry.snapshot
                print("plugins.d: \(config.plugins.directory): \(snapshot.instances.count) instance(s) loaded, \(snapshot.tiers.count) tier(s)")
                for tier in snapshot.tiers.values.sorted(by: { $0.name < $1.name }) {
                    let caps = tier.capabilities.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.joined(separator: ">"))" }
                    print("  tier \(tier.name): \(tier.requestsPerHour) req/h, cap $\(tier.costCapUSD); \(caps.joined(separator: " "))")
                }
                for refusal in report.refusals { print("refused: \(refusal)") }
                for warning in report.warnings { print("warning: \(warning)") }
                await runtime.shutdown()
                if !report.refusals.isEmpty || !report.warnings.isEmpty { throw ExitCode(1) }
                print("ok")
            } catch let error as DeploymentError {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
