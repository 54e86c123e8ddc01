// swift-tools-version: 6.2
import PackageDescription

/// Settings every Swift target shares.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// Plugins are linked with `-z defs`, so an unresolved symbol is a link error instead of a
/// crash at the first call.
let pluginLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "-z", "-Xlinker", "defs"])
]

/// A built-in plugin written in Swift: a `.dynamic` product that depends on the SDK (and, where
/// it wraps one, a system library such as SQLite through GRDB's `GRDBSQLite` module map).
func swiftPlugin(
    _ product: String, target: String, path: String, extra: [Target.Dependency] = [], exclude: [String] = []
) -> (Product, Target) {
    (
        .library(name: product, type: .dynamic, targets: [target]),
        .target(
            name: target,
            dependencies: ["OrionPluginSDK"] + extra,
            path: path,
            exclude: exclude,
            swiftSettings: swiftSettings,
            linkerSettings: pluginLinkerSettings
        )
    )
}

/// `ORION_COVERAGE=1` (set by scripts/test.sh) instruments the C and C++ plugins for line
/// coverage too: `swift build --enable-code-coverage` instruments Swift targets only.
let coverage = Context.environment["ORION_COVERAGE"] == "1"
let coverageFlags = ["-fprofile-instr-generate", "-fcoverage-mapping"]
let coverageCSettings: [CSetting] = coverage ? [.unsafeFlags(coverageFlags)] : []
let coverageCXXSettings: [CXXSetting] = coverage ? [.unsafeFlags(coverageFlags)] : []
let coverageLinkerSettings: [LinkerSetting] = coverage ? [.unsafeFlags(["-profile-generate"])] : []  // swiftc links: its spelling

/// A plugin written in C: header only, plus the system libraries it wraps (test fixtures,
/// benchmarks, and ratelimit-redis over Debian's libhiredis-dev).
func cPlugin(
    _ product: String, target: String, path: String, strictLinking: Bool = true, libraries: [String] = []
) -> (Product, Target) {
    (
        .library(name: product, type: .dynamic, targets: [target]),
        .target(
            name: target,
            dependencies: ["OrionPluginABI"],
            path: path,
            cSettings: coverageCSettings,
            linkerSettings: (strictLinking ? pluginLinkerSettings : []) + libraries.map { .linkedLibrary($0) } + coverageLinkerSettings
        )
    )
}

/// A plugin written in C++ over a system library: header-only ABI, C++17.
func cxxPlugin(_ product: String, target: String, path: String, libraries: [String]) -> (Product, Target) {
    (
        .library(name: product, type: .dynamic, targets: [target]),
        .target(
            name: target,
            dependencies: ["OrionPluginABI"],
            path: path,
            cxxSettings: coverageCXXSettings,
            linkerSettings: pluginLinkerSettings + libraries.map { .linkedLibrary($0) } + coverageLinkerSettings
        )
    )
}

let plugins: [(Product, Target)] = [
    swiftPlugin("ratelimit-gcra", target: "RateLimitGCRA", path: "Plugins/ratelimit-gcra"),
    swiftPlugin(
        "vector-flat", target: "VectorFlat", path: "Plugins/vector-flat",
        extra: ["OrionVectorKernels"], exclude: ["Kernels"]),
    swiftPlugin("hybrid-rrf", target: "HybridRRF", path: "Plugins/hybrid-rrf"),
    swiftPlugin("engine-openai", target: "EngineOpenAI", path: "Plugins/engine-openai"),
    swiftPlugin("engine-anthropic", target: "EngineAnthropic", path: "Plugins/engine-anthropic"),
    swiftPlugin("pricing-table", target: "PricingTable", path: "Plugins/pricing-table"),
    // Connectors: lifecycle events to a webhook, a hash-chained audit log, Prometheus series.
    swiftPlugin(
        "connector-webhook", target: "ConnectorWebhook", path: "Plugins/connector-webhook",
        extra: [.product(name: "Crypto", package: "swift-crypto")]),
    swiftPlugin("connector-audit", target: "ConnectorAudit", path: "Plugins/connector-audit", extra: ["OrionAuditChain"], exclude: ["Chain"]),
    swiftPlugin("connector-metrics", target: "ConnectorMetrics", path: "Plugins/connector-metrics"),
    // A tool: agent memory search for the calling tenant.
    swiftPlugin("tool-memory-search", target: "ToolMemorySearch", path: "Plugins/tool-memory-search"),
    // Sentence embeddings on the CPU: ONNX Runtime (loaded at run time from the onnxruntime
    // wheel, reached through OrionONNXRuntime) and a WordPiece tokenizer.
    swiftPlugin(
        "embed-local", target: "EmbedLocal", path: "Plugins/embed-local",
        extra: ["OrionONNXRuntime", "OrionWordPiece", .product(name: "Crypto", package: "swift-crypto")],
        exclude: ["ORT", "Tokenizer"]),
    swiftPlugin(
        "fts-sqlite", target: "FTSSQLite", path: "Plugins/fts-sqlite",
        extra: [.product(name: "GRDBSQLite", package: "GRDB.swift")]),
    // C++ over Debian's libxapian-dev.
    cxxPlugin("fts-xapian", target: "FTSXapian", path: "Plugins/fts-xapian", libraries: ["xapian"]),
    // C over Debian's libhiredis-dev: one rate limit across nodes.
    cPlugin("ratelimit-redis", target: "RateLimitRedis", path: "Plugins/ratelimit-redis", libraries: ["hiredis", "pthread"]),
    // C++ over Debian's libhnswlib-dev (header only).
    cxxPlugin("vector-hnsw", target: "VectorHNSW", path: "Plugins/vector-hnsw", libraries: ["pthread", "m"]),
    // Benchmark plugins for `orion bench plugin-call`.
    cPlugin("orion-bench-c", target: "OrionBenchC", path: "Plugins/bench/c"),
    swiftPlugin("orion-bench-swift", target: "OrionBenchSwift", path: "Plugins/bench/swift"),
    // Test fixtures: each one exists to be refused (or swapped) by the loader.
    cPlugin("fixture-swap-v1", target: "FixtureSwapV1", path: "Tests/Fixtures/swap-v1"),
    cPlugin("fixture-swap-v2", target: "FixtureSwapV2", path: "Tests/Fixtures/swap-v2"),
    cPlugin("fixture-no-entry", target: "FixtureNoEntry", path: "Tests/Fixtures/no-entry"),
    cPlugin("fixture-abi-v2", target: "FixtureABIv2", path: "Tests/Fixtures/abi-v2"),
    cPlugin("fixture-newer-minor", target: "FixtureNewerMinor", path: "Tests/Fixtures/newer-minor"),
    cPlugin("fixture-small-struct", target: "FixtureSmallStruct", path: "Tests/Fixtures/small-struct"),
    cPlugin("fixture-toolchain", target: "FixtureToolchain", path: "Tests/Fixtures/toolchain"),
    cPlugin("fixture-bad-manifest", target: "FixtureBadManifest", path: "Tests/Fixtures/bad-manifest"),
    cPlugin("fixture-tool", target: "FixtureTool", path: "Tests/Fixtures/tool"),
    cPlugin("fixture-connector", target: "FixtureConnector", path: "Tests/Fixtures/connector"),
    cPlugin(
        "fixture-unresolved", target: "FixtureUnresolved", path: "Tests/Fixtures/unresolved",
        strictLinking: false),
    swiftPlugin("fixture-swift-retriever", target: "FixtureSwiftRetriever", path: "Tests/Fixtures/swift-retriever"),
    swiftPlugin("fixture-swift-multi", target: "FixtureSwiftMulti", path: "Tests/Fixtures/swift-multi"),
    // The Swift plugin printed in docs/plugin-abi.md, built and tested as it is printed there.
    swiftPlugin("ratelimit-fixed", target: "RateLimitFixed", path: "Tests/Fixtures/doc-example-swift"),
]

let package = Package(
    name: "orion",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "orion", targets: ["OrionCLI"]),
        .library(name: "OrionCore", targets: ["OrionCore"]),
        .library(name: "OrionPluginSDK", targets: ["OrionPluginSDK"]),
        .library(name: "OrionPluginHost", targets: ["OrionPluginHost"]),
        .library(name: "OrionPluginConformance", targets: ["OrionPluginConformance"]),
    ] + plugins.map(\.0),
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // PluginSDK: the C ABI, the Swift SDK over it, host-side bindings, the conformance kit.
        .target(name: "OrionPluginABI", path: "PluginSDK/ABI"),
        // embed-local's bridge to ONNX Runtime's C API (dlopen, API table by position).
        .target(name: "OrionONNXRuntime", path: "Plugins/embed-local/ORT", linkerSettings: [.linkedLibrary("dl")]),
        // BERT's WordPiece tokenizer, linked into embed-local (and tested on its own).
        .target(name: "OrionWordPiece", path: "Plugins/embed-local/Tokenizer", swiftSettings: swiftSettings),
        // The audit log's row format and chain check, shared by connector-audit and `orion audit verify`.
        .target(
            name: "OrionAuditChain", dependencies: [.product(name: "Crypto", package: "swift-crypto")], path: "Plugins/connector-audit/Chain",
            swiftSettings: swiftSettings),
        // vector-flat's dot-product kernels (AVX2/FMA chosen at run time), linked into its .so.
        .target(name: "OrionVectorKernels", path: "Plugins/vector-flat/Kernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "OrionPluginSDK",
            dependencies: ["OrionPluginABI"],
            path: "PluginSDK/SDK",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrionPluginHost",
            dependencies: ["OrionPluginSDK", "OrionPluginABI"],
            path: "PluginSDK/Host",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrionPluginConformance",
            dependencies: ["OrionPluginHost", "OrionPluginSDK", "OrionPluginABI"],
            path: "PluginSDK/Conformance",
            swiftSettings: swiftSettings
        ),

        // Runtime: the core library (no HTTP) and the `orion` executable.
        .target(
            name: "OrionCore",
            dependencies: [
                "OrionPluginHost", "OrionPluginSDK", "OrionPluginABI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // Shared state of several nodes (store.postgresUrl).
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Runtime/Core",
            swiftSettings: swiftSettings
        ),
        // The HTTP gateway: knows the core through a few protocols, nothing of plugins.
        .target(
            name: "OrionGateway",
            dependencies: [
                "OrionCore", "OrionPluginHost", "OrionPluginSDK",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Runtime/Gateway",
            resources: [.copy("OpenAPI/openapi.json")],
            swiftSettings: swiftSettings
        ),
        // A loopback stand-in for the OpenAI and Anthropic APIs (benchmarks and tests).
        .target(
            name: "OrionUpstreamFake",
            dependencies: [
                "OrionPluginSDK",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime/UpstreamFake",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "OrionCLI",
            dependencies: [
                "OrionCore", "OrionGateway", "OrionPluginConformance", "OrionPluginHost", "OrionPluginSDK", "OrionPluginABI",
                "OrionWordPiece", "OrionUpstreamFake", "OrionAuditChain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Runtime/CLI",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "OrionTestSupport",
            dependencies: [
                "OrionPluginHost", "OrionPluginSDK",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PluginSDKTests",
            dependencies: ["OrionTestSupport", "OrionPluginConformance", "OrionPluginHost", "OrionPluginSDK", "OrionPluginABI"],
            path: "Tests/PluginSDKTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OrionCoreTests",
            dependencies: [
                "OrionTestSupport", "OrionCore", "OrionPluginHost", "OrionPluginSDK", "OrionPluginABI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/OrionCoreTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "OrionTestSupport", "OrionCore", "OrionGateway", "OrionUpstreamFake",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Tests/GatewayTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PluginTests",
            dependencies: [
                "OrionTestSupport", "OrionPluginConformance", "OrionPluginHost", "OrionPluginSDK", "OrionPluginABI",
                "OrionVectorKernels", "OrionWordPiece", "OrionAuditChain",
            ],
            path: "Tests/PluginTests",
            swiftSettings: swiftSettings
        ),
    ] + plugins.map(\.1),
    cxxLanguageStandard: .cxx17
)
