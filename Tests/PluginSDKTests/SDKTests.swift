import Foundation
import OrionPluginABI
import OrionPluginHost
import OrionPluginSDK
import Testing

@Suite struct ErrorBufferTests {
    @Test func roundTripsAMessage() {
        var error = ErrorBuffer.make()
        let status = PluginError(.notFound, "model 'x' is not priced").write(to: &error)
        #expect(status == ORION_ERR_NOT_FOUND)
        #expect(ErrorBuffer.message(&error) == "model 'x' is not priced")
    }

    @Test func truncatesOnACharacterBoundary() {
        var error = ErrorBuffer.make()
        let long = String(repeating: "é", count: 600)  // two bytes each
        ErrorBuffer.write(long, to: &error)
        let message = ErrorBuffer.message(&error)
        #expect(message.utf8.count <= Int(ORION_ERROR_MESSAGE_CAPACITY) - 1)
        #expect(message.allSatisfy { $0 == "é" }, "no half character at the end")
    }

    @Test func anEmptyMessageGetsAGenericText() {
        var error = ErrorBuffer.make()
        #expect(ErrorBuffer.message(&error).contains("without a message"))
    }

    @Test func codesHaveStableNames() {
        #expect(PluginError.Code.config.description == "config")
        #expect(PluginError.Code(rawValue: 77).description == "status-77")
    }
}

@Suite struct PluginKindTests {
    @Test func namesRoundTrip() {
        for kind in PluginKind.all { #expect(PluginKind(name: kind.name) == kind) }
        #expect(PluginKind(name: "retrievers") == nil)
        #expect(PluginKind([.retriever, .engine]).name == "retriever,engine")
    }

    @Test func pluginStringCopiesAndBorrows() {
        "tenant|ip".withOrionStr { raw in
            let view = PluginString(raw)
            #expect(view.string == "tenant|ip")
            #expect(view.count == 9)
            #expect(view.withBytes { $0.first } == UInt8(ascii: "t"))
        }
        #expect(PluginString(orion_str(ptr: nil, len: 0)).string.isEmpty)
    }
}

@Suite struct JSONSchemaTests {
    let schema: JSONSchema

    init() throws {
        schema = try JSONSchema(JSONValue.parse(Data("""
            {"type":"object","additionalProperties":false,"required":["limit"],
             "properties":{"limit":{"type":"integer","minimum":1,"maximum":1000},
                           "mode":{"enum":["open","closed"]},
                           "name":{"type":"string","minLength":2},
                           "weights":{"type":"array","items":{"type":"number","exclusiveMinimum":0},"maxItems":3},
                           "nested":{"type":"object","properties":{"k":{"type":"boolean"}}}}}
            """.utf8)))
    }

    func violations(_ json: String) throws -> [String] {
        schema.violations(of: try JSONValue.parse(Data(json.utf8)))
    }

    @Test func acceptsAValidConfig() throws {
        #expect(try violations(#"{"limit": 5, "mode": "open", "name": "ab", "weights": [0.5, 1], "nested": {"k": true}}"#).isEmpty)
    }

    @Test(arguments: [
        (#"{}"#, "missing required key 'limit'"),
        (#"{"limit": 1.5}"#, "'limit' must be integer"),
        (#"{"limit": 0}"#, "'limit' must be at least 1"),
        (#"{"limit": 5000}"#, "'limit' must be at most 1000"),
        (#"{"limit": 5, "mode": "half"}"#, "'mode' must be one of"),
        (#"{"limit": 5, "name": "a"}"#, "'name' must have at least 2 characters"),
        (#"{"limit": 5, "weights": [1, 0]}"#, "'weights[1]' must be greater than 0"),
        (#"{"limit": 5, "weights": [1, 2, 3, 4]}"#, "at most 3 items"),
        (#"{"limit": 5, "nested": {"k": "yes"}}"#, "'nested.k' must be boolean"),
        (#"{"limit": 5, "colour": "red"}"#, "unknown key 'colour'; known keys: limit, mode, name, nested, weights"),
        (#"[1]"#, "the configuration must be object"),
    ])
    func namesTheFailingKey(json: String, message: String) throws {
        let found = try violations(json)
        #expect(found.contains { $0.contains(message) }, "\(found)")
    }

    @Test func refusesSchemasWithKeywordsItWouldIgnore() throws {
        #expect(throws: JSONSchema.SchemaError.self) {
            try JSONSchema(JSONValue.parse(Data(#"{"type":"object","properties":{"a":{"pattern":"^x"}}}"#.utf8)))
        }
        #expect(throws: JSONSchema.SchemaError.self) {
            try JSONSchema(JSONValue.parse(Data(#"{"type":"widget"}"#.utf8)))
        }
    }
}

@Suite struct ManifestTests {
    @Test(arguments: [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (#"{"capabilities": []}"#, "non-empty list"),
        (#"{"capabilities": ["a", 3]}"#, "non-empty string"),
        (#"{"capabilities": ["a"], "config_schema": {"type": 3}}"#, "config_schema.type"),
    ])
    func refusesInvalidManifests(text: String, says: String) {
        do {
            _ = try PluginManifest.parse(text, pluginID: "p")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .invalidManifest)
            #expect(error.message.contains(says), "\(error.message)")
        }
    }

    @Test func readsCapabilitiesAndSchema() throws {
        let manifest = try PluginManifest.parse(#"{"capabilities":["rate_limit"],"summary":"s"}"#, pluginID: "p")
        #expect(manifest.capabilities == ["rate_limit"])
        #expect(manifest.summary == "s")
        #expect(manifest.configSchema == .object(["type": .string("object")]))
    }
}
