import Foundation
import Hummingbird
import NIOHTTP1
@testable import OrionGateway
import Testing

/// The OpenAPI document in the repository against the routes and bodies the server has.
@Suite struct OpenAPITests {
    static func document() throws -> [String: Any] {
        let data = try #require(OpenAPIDocument.data)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let h = try await GatewayHarness.start()
        let served = Set(h.gateway.router().routes.map { "\($0.method.rawValue) \($0.path.description.replacingOccurrences(of: ":", with: ""))" })
        let paths = try #require(try Self.document()["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys where method != "parameters" {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(served == documented, "served only: \(served.subtracting(documented).sorted()); documented only: \(documented.subtracting(served).sorted())")
        let reply = try await h.send(.GET, "/openapi.json")
        #expect(reply.status == 200)
        #expect(reply.json["openapi"] as? String == "3.1.0")
        await h.stop()
    }

    @Test(arguments: [
        ("StoreMemory", MemoryRoutes.storeSchema), ("SearchMemory", MemoryRoutes.searchSchema),
        ("Feedback", MemoryRoutes.feedbackSchema), ("SwapRetriever", SystemRoutes.swapSchema), ("Chat", ChatRoutes.chatSchema),
        ("ToolCall", ToolRoutes.callSchema),
    ])
    func requestBodiesMatchTheirSchemas(name: String, schema: BodySchema) throws {
        let components = try #require(try Self.document()["components"] as? [String: Any])
        let schemas = try #require(components["schemas"] as? [String: [String: Any]])
        let documented = try #require(schemas[name])
        #expect(documented["additionalProperties"] as? Bool == false, "\(name) refuses unknown fields")
        let properties = try #require(documented["properties"] as? [String: Any])
        #expect(Set(properties.keys) == Set(schema.fields.keys), "\(name)")
        let required = Set(documented["required"] as? [String] ?? [])
        #expect(required == Set(schema.fields.filter { $0.value.isRequired }.keys), "\(name)")
    }
}
