import ArgumentParser
import Foundation
import Logging
import OrionAuditChain
import OrionCore
import OrionPluginSDK

/// `orion connectors replay`: resends the events connectors failed to deliver.
struct ConnectorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connectors", abstract: "Connector instances and their undelivered events.", subcommands: [Replay.self, DeadLetterList.self])

    /// `orion connectors replay [--instance ID]`.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resend dead-lettered events (events.deadLetterDirectory) through their connector instances; what fails again stays dead-lettered.")

        @Option(help: "Only this connector instance (default: every instance with dead-lettered events).") var instance: String?
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let (config, logger, runtime) = try options.makeRuntime(logLevel: .error)
            try await runtime.reload(reason: "connectors replay")
            let letters = DeadLetters(directory: config.resolvedDeadLetterDirectory)
            let instances = instance.map { [$0] } ?? letters.instances()
            if instances.isEmpty { print("no dead-lettered events in \(config.resolvedDeadLetterDirectory)") }
            var failed = 0
            for id in instances {
                guard let lease = try? runtime.registry.lease(kind: .connector, id: id), let connector = lease.connector else {
                    logger.error("instance '\(id)' is not a loaded connector: its events stay dead-lettered")
                    print("\(id): not a loaded connector instance (declared in \(config.plugins.directory)?); its events were left in place")
                    failed += 1
                    continue
                }
                let report = try await letters.replay(instance: id) { event in try await connector.deliver(event) }
                lease.release()
                print("\(id): \(report.delivered) delivered, \(report.failed) failed again (still dead-lettered)"
                    + (report.unreadable > 0 ? ", \(report.unreadable) unreadable lines kept aside" : ""))
                failed += report.failed + report.unreadable
            }
            await runtime.shutdown()
            if failed > 0 { throw ExitCode(1) }
        }
    }

    /// `orion connectors dead-letters`: what is waiting, per instance.
    struct DeadLetterList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dead-letters", abstract: "List dead-lettered events per connector instance.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try options.loadConfig()
            let letters = DeadLetters(directory: config.resolvedDeadLetterDirectory)
            for id in letters.instances() {
                let (events, unreadable) = try letters.read(instance: id)
                print("\(id): \(events.count) events\(unreadable > 0 ? ", \(unreadable) unreadable lines" : "")")
                for (event, error) in events.suffix(20) {
                    print("  \(event.type) run=\(event.runID.isEmpty ? "-" : event.runID) seq=\(event.sequence): \(error)")
                }
            }
        }
    }
}

/// `orion audit verify FILE`: checks a connector-audit log's hash chain.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Audit logs written by connector-audit.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every row's hash and link; report the first row that was changed or removed (exit 1).")

        @Argument(help: "The audit log file (the connector-audit instance's 'path').") var file: String

        func run() async throws {
            let report: AuditChain.Report
            do {
                report = try AuditChain.verify(path: file)
            } catch {
                throw ValidationError("cannot read the audit log '\(file)': \(error)")
            }
            if let problem = report.problem {
                print("BROKEN: \(problem)")
                print("rows 1 to \(report.headSeq) are intact (head \(report.headHash))")
                throw ExitCode(1)
            }
            print("intact: \(report.verifiedRows) rows, head row \(report.headSeq), head hash \(report.headHash)")
            print("record the head hash elsewhere: a log cut after it can only be told from a later head")
        }
    }
}
