import ArgumentParser
import Foundation
import OrionCore
import OrionPluginABI
import OrionPluginHost
import OrionPluginSDK

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print ratios against a baseline measured in the same run.",
        subcommands: [PluginCall.self])
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

    @Option(help: "Calls per measurement.") var iterations = 20_000_000
    @Option(help: "Measurements per variant; the fastest is reported.") var rounds = 5
    @Option(help: "Directory holding liborion-bench-c.so and liborion-bench-swift.so (default: next to orion).")
    var pluginDir: String?
    @Flag(help: "End with one JSON object.") var json = false

    func run() async throws {
        #if DEBUG
        print("note: this is a debug build; run `swift build -c release` and .build/release/orion for meaningful figures")
        #endif
        let directory = pluginDir ?? PluginLocator.executableDirectory ?? "."
        let host = ConformanceLikeHost()
        var loads: [(String, Double)] = []

        func load(_ name: String) throws -> (PluginInstance, UnsafePointer<orion_rate_limiter_v1>) {
            let path = (directory as NSString).appendingPathComponent("lib\(name).so")
            let start = SystemClock.monotonicNanoseconds()
            let image = try PluginImage(path: path)
            let instance = try PluginInstance(image: image, config: Data("{}".utf8), services: host)
            loads.append((name, Double(SystemClock.monotonicNanoseconds() - start) / 1_000))
            guard let table = image.raw.pointee.rate_limiter else {
                throw ValidationError("\(name) provides no rate limiter table")
            }
            return (instance, table)
        }

        let (cInstance, cTable) = try load("orion-bench-c")
        let (swiftInstance, swiftTable) = try load("orion-bench-swift")
        if let gcra = try? load("ratelimit-gcra") { withExtendedLifetime(gcra.0) {} }

        let iterations = self.iterations
        func measure(_ call: (Int64, UnsafeMutablePointer<orion_rate_decision>) -> orion_status) -> Double {
            var best = Double.infinity
            var sink: Int64 = 0
            var out = orion_rate_decision()
            for _ in 0..<rounds {
                let start = SystemClock.monotonicNanoseconds()
                for i in 0..<iterations {
                    _ = call(Int64(i & 63) + 1, &out)
                    sink &+= out.remaining
                }
                let elapsed = SystemClock.monotonicNanoseconds() - start
                best = min(best, Double(elapsed) / Double(iterations))
            }
            if sink == 42 { print("") }  // keeps the loop's results observable
            return best
        }

        let key = "tenant|127.0.0.1|GET|/v1/ping"
        var keyCopy = key
        let (direct, cNs, swiftNs) = keyCopy.withUTF8 { buffer -> (Double, Double, Double) in
            let str = orion_str(ptr: UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self), len: buffer.count)
            var error = orion_error()
            let direct = measure { cost, out in directAcquire(nil, str, cost, out) }
            let c = measure { cost, out in cTable.pointee.acquire(cInstance.pointer, str, cost, out, &error) }
            let swift = measure { cost, out in swiftTable.pointee.acquire(swiftInstance.pointer, str, cost, out, &error) }
            return (direct, c, swift)
        }
        let cRatio = cNs / direct
        let swiftRatio = swiftNs / direct
        print(String(format: "direct Swift call   %7.2f ns/call", direct))
        print(String(format: "C plugin call       %7.2f ns/call   %.2fx direct", cNs, cRatio))
        print(String(format: "Swift plugin call   %7.2f ns/call   %.2fx direct", swiftNs, swiftRatio))
        for (name, micros) in loads {
            print(String(format: "dlopen+create %-20@ %8.1f µs", name as NSString, micros))
        }
        if json {
            var object: [String: Double] = ["direct_ns": direct, "c_plugin_ns": cNs, "swift_plugin_ns": swiftNs, "c_ratio": cRatio, "swift_ratio": swiftRatio]
            for (name, micros) in loads { object["load_us_\(name.replacingOccurrences(of: "-", with: "_"))"] = micros }
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
