import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the plugin deployment while serving: on `SIGHUP`, and when a file in `plugins.d/`
/// changes (polled every `plugins.watchIntervalSeconds`; a change is applied once two polls agree,
/// so a half-written file is not read).
public struct PluginReloadService: Service {
    let runtime: PluginRuntime
    let directory: String
    let interval: Duration?
    let logger: Logger
    /// The state of plugins.d when the service was made (right after the deployment it watches
    /// was loaded): a change made before the watcher's first poll is still a change.
    let baseline: String

    /// - Parameters:
    ///   - interval: time between polls of `plugins.d/`; nil turns file watching off.
    public init(runtime: PluginRuntime, interval: Duration?, logger: Logger) {
        self.runtime = runtime
        self.directory = runtime.config.plugins.directory
        self.interval = interval
        self.logger = logger
        self.baseline = Self.fingerprint(of: runtime.config.plugins.directory)
    }

    public func run() async throws {
        // Both loops end on graceful shutdown (or when the task is cancelled); neither ending
        // early stops the other.
        // Trap SIGHUP before saying so: until then the signal's default action ends the process.
        let signals = await UnixSignalsSequence(trapping: .sighup)
        logger.info(
            "reload triggers ready",
            metadata: ["orion.reload.watch": "\(interval.map { "\($0)" } ?? "off")", "orion.plugins.directory": "\(directory)"])
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in signals {
                        if Task.isCancelled { return }
                        await reload(reason: "SIGHUP")
                    }
                }
                if let interval {
                    group.addTask { await watch(every: interval) }
                }
                await group.waitForAll()
            }
        }
    }

    private func watch(every interval: Duration) async {
        var applied = baseline
        var pending: String?
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let now = Self.fingerprint(of: directory)
            if now == applied {
                pending = nil
            } else if now == pending {
                applied = now
                pending = nil
                await reload(reason: "plugins.d changed")
            } else {
                pending = now
            }
        }
    }

    private func reload(reason: String) async {
        do {
            _ = try await runtime.reload(reason: reason)
        } catch {
            logger.error("reload refused; the previous deployment keeps serving", metadata: ["orion.reload.reason": "\(reason)", "orion.reload.error": "\(error)"])
        }
    }

    /// Names, sizes and modification times of the files in `directory`.
    static func fingerprint(of directory: String) -> String {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.map { name -> String in
            let attributes = try? fm.attributesOfItem(atPath: (directory as NSString).appendingPathComponent(name))
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(name)|\(size)|\(modified)"
        }.joined(separator: "\n")
    }
}
