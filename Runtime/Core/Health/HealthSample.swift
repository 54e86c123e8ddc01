import Foundation
import OrionPluginHost
import OrionPluginSDK

extension OrionApplication {
    /// One health snapshot's content: what `/api/health/history` keeps per sample.
    public func healthSample() async -> [String: Any] {
        let snapshot = runtime.registry.snapshot
        let plugins = snapshot.instances.values.sorted { $0.id < $1.id }.map { handle -> [String: Any] in
            [
                "id": handle.id, "plugin": handle.info.id, "version": handle.info.version, "state": handle.isRetired ? "retiring" : "serving",
                "leases": handle.leaseCount, "kinds": PluginKind.all.filter { handle.info.kinds.contains($0) }.map(\.name),
            ]
        }
        let refused = (await runtime.lastReport)?.refusals.map { ["id": $0.instanceID, "file": $0.file, "error": "\($0.error)"] } ?? []
        let connectors = events.connectors.stats().mapValues { stats -> [String: Int] in
            ["depth": stats.depth, "delivered": stats.delivered, "deadLettered": stats.deadLettered, "dropped": stats.dropped, "lost": stats.lost]
        }
        var queues: [String: Any] = ["connectors": connectors, "eventSubscribers": events.subscribers.counts.values.reduce(0, +)]
        if let usage {
            queues["usageRecords"] = ["pending": usage.pending, "dropped": usage.droppedCount]
        }
        func size(_ path: String) -> Int64 {
            // A WAL database is its file plus its write-ahead log.
            [path, path + "-wal"].compactMap { (try? FileManager.default.attributesOfItem(atPath: $0))?[.size] as? NSNumber }.reduce(0) { $0 + $1.int64Value }
        }
        var store: [String: Any] = ["documentsBytes": size(config.resolvedDocumentStorePath)]
        store["documents"] = (try? documents.store.count()) ?? -1
        if config.telemetry.enabled { store["usageBytes"] = size(config.resolvedUsageDBPath) }
        return [
            "generation": snapshot.generation, "plugins": plugins, "refused": refused, "queues": queues, "store": store,
            "breakers": ["engines": engines.breakers.states, "tools": tools.breakers.states],
        ]
    }
}
