import ArgumentParser
import Foundation
import Logging
import OrionCore

/// `orion store migrate`: moves this node's embedded SQLite state into PostgreSQL.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store", abstract: "The shared state: SQLite files on one node, PostgreSQL across nodes.", subcommands: [Migrate.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy tenants, usage records, idempotency keys, the audit trail and runs (with steps and tool calls) from this node's SQLite files into an empty PostgreSQL database, ids kept, then compare row counts (docs/operations.md).")

        @Option(help: "The target, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default: store.postgresUrl of the configuration).")
        var to: String?
        @Flag(help: "Count what would move and check the target is empty; copy nothing.") var dryRun = false
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try options.loadConfig()
            var logger = options.makeLogger()
            logger.logLevel = .warning
            let url: RuntimeConfig.PostgresURL
            if let to {
                switch RuntimeConfig.PostgresURL.parse(to) {
                case .success(let parsed): url = parsed
                case .failure(let failure): throw ValidationError("--to \(failure.message)")
                }
            } else if let configured = config.store.postgres {
                url = configured
            } else {
                throw ValidationError("name the target with --to postgres://… or store.postgresUrl in \(config.source)")
            }
            let target = try await PostgresState.connect(url: url, poolSize: 2, logger: logger)
            defer { target.close() }
            print("\(dryRun ? "would migrate" : "migrating") \(config.dataDirectory) → \(url)")
            do {
                let reports = try await StoreMigration.run(config: config, to: target, dryRun: dryRun)
                for report in reports {
                    let from = report.source.map { "\(report.sourceRows) rows in \($0)" } ?? "no table (nothing to move)"
                    print("  \(report.table): \(from)" + (dryRun ? "" : " → \(report.targetRows) rows in PostgreSQL"))
                }
                print(dryRun ? "the target is empty: run without --dry-run to copy" : "every row was copied; row counts match per table and usage per tenant")
            } catch {
                print("migration refused: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
