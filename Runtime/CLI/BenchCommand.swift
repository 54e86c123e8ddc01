import ArgumentParser
import Foundation
import OrionCore
import OrionPluginABI
import OrionPluginHost
import OrionPluginSDK

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print ratios against a baseline measured in the same run.",
        subcommands: [PluginCall.self, BenchRetrieval.self, BenchMemRL.self, BenchGateway.self, BenchEmbed.self, BenchUsage.self, BenchUpstream.self])
}

/// The same arithmetic the benchmark plugins do, called directly: the baseline.
@inline(never)
func directAcquire(_ instance: UnsafeMutableRawPointer?, _ key: orion_str, _ cost: Int64, _ out: UnsafeMutablePointer<orion_rate_decision>) -> orion_status {
    out.pointee.allowed = cost <= Int64(key.len) + 100 ? 1 : 0
    out.pointee.limit = 100
    out.pointee.remaining = 100 - cost
    out.pointee.retry_after_ns = 0
    out.pointee.reset_ns = cost
    out.pointee.window_ns = 1
    return ORION_OK
}

/// `orion bench plugin-call`: ns per call for a direct Swift call, a C plugin and a Swift plugin.
struct PluginCall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin-call", abstract: "Cost of one call across the plugin boundary, against a direct call.")

    @Option(help: "Calls per measurement.") var iterations = 2_000_000
    @Option(help: "Rounds; each measures every variant once, and each variant keeps its fastest.") var rounds = 25
    @Option(help: "Directory holding liborion-bench-c.so and liborion-bench-swift.so (default: next to orion).")
    var pluginDir: String?
    @Flag(help: "End with one JSON object.") var json = false

    func run() async throws {
        #if DEBUG
        print("note: this is a debug build; run `swift build -c release` and .build/release/orion for meaningful figures")
        #endif
        let directory = pluginDir ?? PluginLocator.executableDirectory ?? "."
        let host = ConformanceLikeHost()
        /// Per plugin: microseconds for dlopen, entry + validation, and create.
        var loads: [(name: String, dlopen: Double, validate: Double, create: Double)] = []

        func load(_ name: String) throws -> (PluginInstance, UnsafePointer<orion_rate_limiter_v1>) {
            let path = (directory as NSString).appendingPathComponent("lib\(name).so")
            let t0 = SystemClock.monotonicNanoseconds()
            // Opened once here to time dlopen alone; PluginImage's own dlopen then finds it loaded.
            let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)
            let t1 = SystemClock.monotonicNanoseconds()
            let image = try PluginImage(path: path)
            let t2 = SystemClock.monotonicNanoseconds()
            let instance = try PluginInstance(image: image, config: Data("{}".utf8), services: host)
            let t3 = SystemClock.monotonicNanoseconds()
            if let handle, !image.isSwift { dlclose(handle) }
            loads.append((name, Double(t1 - t0) / 1_000, Double(t2 - t1) / 1_000, Double(t3 - t2) / 1_000))
            guard let table = image.raw.pointee.rate_limiter else {
                throw ValidationError("\(name) provides no rate limiter table")
            }
            return (instance, table)
        }

        let (cInstance, cTable) = try load("orion-bench-c")
        let (swiftInstance, swiftTable) = try load("orion-bench-swift")
        if let gcra = try? load("ratelimit-gcra") { withExtendedLifetime(gcra.0) {} }

        let iterations = self.iterations
        let rounds = self.rounds
        /// ns per call of one variant, once.
        func once(_ call: (Int64, UnsafeMutablePointer<orion_rate_decision>) -> orion_status) -> Double {
            var sink: Int64 = 0
            var out = orion_rate_decision()
            let start = SystemClock.monotonicNanoseconds()
            for i in 0..<iterations {
                _ = call(Int64(i & 63) + 1, &out)
                sink &+= out.remaining
            }
            let elapsed = SystemClock.monotonicNanoseconds() - start
            if sink == 42 { print("") }  // keeps the loop's results observable
            return Double(elapsed) / Double(iterations)
        }

        let key = "tenant|127.0.0.1|GET|/v1/ping"
        var keyCopy = key
        // The variants are interleaved within every round and each keeps its fastest round, so a
        // change of clock speed or a noisy neighbour affects all three alike.
        let (direct, cNs, swiftNs) = keyCopy.withUTF8 { buffer -> (Double, Double, Double) in
            let str = orion_str(ptr: UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self), len: buffer.count)
            var error = orion_error()
            var best = (Double.infinity, Double.infinity, Double.infinity)
            for _ in 0..<rounds {
                best.0 = min(best.0, once { cost, out in directAcquire(nil, str, cost, out) })
                best.1 = min(best.1, once { cost, out in cTable.pointee.acquire(cInstance.pointer, str, cost, out, &error) })
                best.2 = min(best.2, once { cost, out in swiftTable.pointee.acquire(swiftInstance.pointer, str, cost, out, &error) })
            }
            return best
        }
        let cRatio = cNs / direct
        let swiftRatio = swiftNs / direct
        print(String(format: "direct Swift call   %7.2f ns/call", direct))
        print(String(format: "C plugin call       %7.2f ns/call   %.2fx direct", cNs, cRatio))
        print(String(format: "Swift plugin call   %7.2f ns/call   %.2fx direct", swiftNs, swiftRatio))
        for load in loads {
            print(String(
                format: "%-20@ dlopen %7.1f µs + entry and checks %7.1f µs + create %7.1f µs = %7.1f µs",
                load.name as NSString, load.dlopen, load.validate, load.create, load.dlopen + load.validate + load.create))
        }
        if json {
            var object: [String: Double] = ["direct_ns": direct, "c_plugin_ns": cNs, "swift_plugin_ns": swiftNs, "c_ratio": cRatio, "swift_ratio": swiftRatio]
            for load in loads {
                object["load_us_\(load.name.replacingOccurrences(of: "-", with: "_"))"] = load.dlopen + load.validate + load.create
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        cInstance.destroy()
        swiftInstance.destroy()
    }
}

/// Host services for the benchmark: nothing to log, real clocks.
final class ConformanceLikeHost: HostServices {
    func log(level: PluginHost.LogLevel, message: String) {}
}
