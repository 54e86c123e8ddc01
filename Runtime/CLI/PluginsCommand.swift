import ArgumentParser
import Foundation
import Logging
import OrionCore
import OrionPluginConformance
import OrionPluginHost
import OrionPluginSDK

struct Plugins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "Inspect, check and test plugins.",
        subcommands: [List.self, Check.self, Test.self])

    /// `orion plugins list`: the deployment as it loads, one line per instance.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load plugins.d and list every instance.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let (_, _, runtime) = try options.makeRuntime(logLevel: .critical)
            let report = try await runtime.reload(reason: "plugins list")
            let snapshot = runtime.registry.snapshot
            var rows = [["ID", "KIND", "PLUGIN", "VERSION", "ABI", "TIERS", "PATH"]]
            for (id, handle) in snapshot.instances.sorted(by: { $0.key < $1.key }) {
                let info = handle.info
                rows.append([
                    id, info.kinds.name, info.id, info.version, "\(info.abiMajor).\(info.abiMinor)",
                    snapshot.tiers(using: id).joined(separator: ",").ifEmpty("-"), handle.spec.pluginPathDescription(loaded: handle.loadedPath),
                ])
            }
            print(Table.render(rows))
            for refusal in report.refusals { print("refused: \(refusal)") }
            for warning in report.warnings { print("warning: \(warning)") }
            await runtime.shutdown()
        }
    }

    /// `orion plugins check PATH.so`: every load-time check, without a deployment.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that a .so loads; print its info or the refusal.")
        @Argument(help: "The plugin file.") var path: String

        func run() async throws {
            do {
                let image = try PluginImage(path: path)
                let info = image.info
                print("ok: \(info.id) \(info.version)")
                print("  abi:          \(info.abiMajor).\(info.abiMinor)")
                print("  kinds:        \(info.kinds.name)")
                print("  toolchain:    \(info.toolchain.isEmpty ? "C (none)" : info.toolchain)")
                print("  capabilities: \(info.manifest.capabilities.joined(separator: ", "))")
                if !info.manifest.summary.isEmpty { print("  summary:      \(info.manifest.summary)") }
                print("  config:       \(String(decoding: info.manifest.configSchema.jsonData, as: UTF8.self))")
            } catch {
                FileHandle.standardError.write(Data("refused: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }

    /// `orion plugins test PATH.so`: the conformance kit for every kind the plugin provides.
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the conformance kit against a .so.")
        @Argument(help: "The plugin file.") var path: String
        @Option(help: "Instance configuration as JSON.") var config: String = "{}"

        func run() async throws {
            let reports: [ConformanceReport]
            do {
                reports = try await PluginConformance.run(pluginAt: path, config: config)
            } catch {
                FileHandle.standardError.write(Data("refused: \(error)\n".utf8))
                throw ExitCode(2)
            }
            var failed = 0
            for report in reports {
                print("\(report.pluginID) — \(report.kind.name)")
                for check in report.checks {
                    print("  \(check.passed ? "pass" : "FAIL")  \(check.name)\(check.passed ? "" : ": \(check.detail)")")
                    if !check.passed { failed += 1 }
                }
            }
            let total = reports.reduce(0) { $0 + $1.checks.count }
            print("\(total - failed) passed, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }
    }
}

extension InstanceSpec {
    func pluginPathDescription(loaded: String) -> String {
        switch plugin {
        case .name(let name): "\(name) (\(loaded))"
        case .path(let path): path
        }
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}

/// Left-aligned text columns.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        let widths = (0..<first.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
