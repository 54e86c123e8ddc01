import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON response bodies built from plain values (dictionaries, arrays, numbers, strings).
enum JSONResponse {
    static func make(_ status: HTTPResponse.Status = .ok, _ object: Any, headers: HTTPFields = [:], context: GatewayContext? = nil) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        context?.note.body = data
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A Codable body (the data routes: faster than JSONSerialization, which formats numbers slowly).
    static func encode(_ status: HTTPResponse.Status = .ok, _ value: some Encodable, context: GatewayContext? = nil) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        context?.note.body = data
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
