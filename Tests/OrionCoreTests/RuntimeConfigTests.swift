import Foundation
import OrionCore
import OrionTestSupport
import Testing

@Suite struct RuntimeConfigTests {
    let dir = TestPlugins.temporaryDirectory()

    func file(_ text: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent("orion.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func defaultsMatchTheDocumentedValues() throws {
        let config = try RuntimeConfig.load(file: nil, environment: [:])
        #expect(config.instanceID == "orion-local")
        #expect(config.environment == .development)
        #expect(config.multiTenantEnabled)
        #expect(config.telemetry.defaultCostCapUSD == 0.50)
        #expect(config.telemetry.alertThreshold == 0.8)
        #expect(config.memory.hybridSearchEnabled)
        #expect(!config.memory.queryExpansionEnabled)
        #expect(config.memory.memrlEnabled)
        #expect(config.memory.learningRate == 0.1)
        #expect(config.rateLimits.requestsPerHour == 120)
        #expect(config.rateLimits.maxConcurrentSessions == 10)
    }

    @Test func theFileIsReadAndPathsResolveAgainstIt() throws {
        let path = try file("""
            instanceId: node-a
            dataDirectory: state
            telemetry:
              defaultCostCapUsd: 1.25
            plugins:
              directory: deploy/plugins.d
            """)
        let config = try RuntimeConfig.load(file: path, environment: [:])
        #expect(config.instanceID == "node-a")
        #expect(config.telemetry.defaultCostCapUSD == 1.25)
        #expect(config.dataDirectory == (dir as NSString).appendingPathComponent("state"))
        #expect(config.plugins.directory == (dir as NSString).appendingPathComponent("deploy/plugins.d"))
    }

    @Test func environmentVariablesOverrideTheFile() throws {
        let path = try file("instanceId: from-file\nmultiTenant: { enabled: true }\n")
        let config = try RuntimeConfig.load(file: path, environment: [
            "ORION_INSTANCE_ID": "from-env", "MULTI_TENANT_ENABLED": "false", "WORKSPACE_BASE_PATH": "/srv/ws",
            "USAGE_DB_PATH": "/srv/usage.db", "COST_CAP_USD": "2.5",
        ])
        #expect(config.instanceID == "from-env")
        #expect(!config.multiTenantEnabled)
        #expect(config.workspaceBasePath == "/srv/ws")
        #expect(config.telemetry.usageDBPath == "/srv/usage.db")
        #expect(config.telemetry.defaultCostCapUSD == 2.5)
    }

    @Test func productionNamesEveryMissingRequiredValue() throws {
        do {
            _ = try RuntimeConfig.load(file: nil, environment: ["ORION_ENVIRONMENT": "production", "ORION_INSTANCE_ID": "prod-1"])
            Issue.record("production started without its required values")
        } catch {
            let keys = Set(error.errors.compactMap(\.key))
            #expect(keys == ["dataDirectory", "workspace.basePath", "telemetry.usageDbPath"])
            #expect(error.description.contains("WORKSPACE_BASE_PATH"))
        }
        let complete = try RuntimeConfig.load(file: nil, environment: [
            "ORION_ENVIRONMENT": "production", "ORION_INSTANCE_ID": "prod-1", "ORION_DATA_DIR": "/var/lib/orion",
            "WORKSPACE_BASE_PATH": "/var/lib/orion/ws", "USAGE_DB_PATH": "/var/lib/orion/usage.db",
            "ORION_JWT_HS256_SECRET": String(repeating: "k", count: 32),
        ])
        #expect(complete.environment == .production)
        do {
            _ = try RuntimeConfig.load(file: nil, environment: [
                "ORION_ENVIRONMENT": "production", "ORION_INSTANCE_ID": "prod-1", "ORION_DATA_DIR": "/var/lib/orion",
                "WORKSPACE_BASE_PATH": "/var/lib/orion/ws", "USAGE_DB_PATH": "/var/lib/orion/usage.db",
            ])
            Issue.record("production started without a token key")
        } catch {
            #expect(error.errors.map(\.key) == ["auth"])
            #expect(error.description.contains("ORION_JWT_HS256_SECRET"))
        }
    }

    @Test(arguments: [
        ("telemetry:\n  defaultCostCapUsd: cheap\n", "telemetry.defaultCostCapUsd", "must be a cost in USD"),
        ("memory:\n  learningRate: 3\n", "memory.learningRate", "(0, 1]"),
        ("memory:\n  preset: greedy\n", "memory.preset", "default or paper"),
        ("memory:\n  explorationRate: 1\n", "memory.explorationRate", "below 1"),
        ("environment: prod\n", "environment", "development, staging, production"),
        ("rateLimits:\n  requestsPerHuor: 5\n", "rateLimits.requestsPerHuor", "Did you mean 'requestsPerHour'?"),
        ("multiTenant:\n  enabled: maybe\n", "multiTenant.enabled", "true or false"),
        ("rbac:\n  roles: { agent: [tool:search:run] }\n", "rbac.roles.agent", "tool:<name>:call"),
        ("events:\n  connectorQueueCapacity: 0\n", "events.connectorQueueCapacity", "≥ 1"),
        ("tools:\n  timeoutSeconds: 0\n", "tools.timeoutSeconds", "[0.01, 3600]"),
        ("health:\n  retentionHours: 0.5\n", "health.retentionHours", "[1, 720]"),
    ])
    func badValuesNameTheFileTheLineAndTheKey(text: String, key: String, says: String) throws {
        let path = try file(text)
        do {
            _ = try RuntimeConfig.load(file: path, environment: [:])
            Issue.record("accepted \(text)")
        } catch {
            let first = try #require(error.errors.first)
            #expect(first.file == path)
            #expect(first.key == key)
            #expect(first.line != nil)
            #expect(first.message.contains(says), "\(first)")
        }
    }

    @Test func aBadEnvironmentValueNamesTheVariable() throws {
        do {
            _ = try RuntimeConfig.load(file: nil, environment: ["COST_CAP_USD": "a lot"])
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("environment variable COST_CAP_USD"))
        }
    }

    @Test func memoryStartsFromItsPresetAndTakesOverrides() throws {
        #expect(try RuntimeConfig.load(file: nil, environment: [:]).memory.policy == .standard)
        let paper = try RuntimeConfig.load(file: try file("memory:\n  preset: paper\n  explorationRate: 0\n"), environment: ["MEMRL_DISCOUNT": "0.5"])
        var expected = MemoryPolicy.paper
        expected.explorationRate = 0
        expected.discount = 0.5
        #expect(paper.memory.policy == expected)
        let off = try RuntimeConfig.load(file: nil, environment: ["MEMRL_ENABLED": "false"])
        #expect(off.memory.policy.utilityWeight == 0)
        #expect(off.memory.policy.similarityWeight == 1)
        #expect(throws: ConfigErrors.self, "memory that cannot rank is refused") {
            try RuntimeConfig.load(file: nil, environment: ["MEMRL_SIMILARITY_WEIGHT": "0", "MEMRL_UTILITY_WEIGHT": "0"])
        }
    }

    @Test func rolesMayGrantOneTool() throws {
        let config = try RuntimeConfig.load(file: try file("rbac:\n  roles: { agent: [tool:memory_search:call, tool:list, runs:read] }\n"), environment: [:])
        #expect(config.rbac.allows(["agent"], "tool:memory_search:call"))
        #expect(!config.rbac.allows(["agent"], "tool:fixture_tool:call"))
        #expect(config.rbac.allows(["agent"], "tool:list"))
    }
}
