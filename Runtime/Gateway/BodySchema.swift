import Foundation
import Hummingbird
import OrionPluginHost

/// The shape of one endpoint's JSON body. Parsing refuses, with 400 naming the field (as a JSON
/// pointer): a body that is not a JSON object, unknown fields, missing required fields, wrong
/// types and values out of range.
struct BodySchema: Sendable {
    enum Kind: Sendable {
        case string(ClosedRange<Int>)
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case strings(ClosedRange<Int>)
        case numbers(ClosedRange<Int>)
        case oneOf([String])
        /// Any JSON value; the route checks it.
        case any
        case bool
    }
    struct Field: Sendable {
        var kind: Kind
        var isRequired: Bool
        static func required(_ kind: Kind) -> Field { Field(kind: kind, isRequired: true) }
        static func optional(_ kind: Kind) -> Field { Field(kind: kind, isRequired: false) }
    }
    var fields: [String: Field]

    init(_ fields: [String: Field]) { self.fields = fields }


    /// The validated object.
    func parse(_ request: Request) async throws -> [String: JSONValue] {
        let buffer = try await request.body.collect(upTo: .max)
        guard buffer.readableBytes > 0 else { throw GatewayError.badRequest("a JSON object body is required", field: "") }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView))
        } catch {
            throw GatewayError.badRequest("the body is not valid JSON", field: "")
        }
        guard case .object(let object) = value else { throw GatewayError.badRequest("the body must be a JSON object", field: "") }
        if let unknown = object.keys.sorted().first(where: { fields[$0] == nil }) {
            throw GatewayError.badRequest(
                "unknown field '\(unknown)'; this endpoint takes: \(fields.keys.sorted().joined(separator: ", "))", field: "/\(unknown)")
        }
        for (name, field) in fields.sorted(by: { $0.key < $1.key }) {
            guard let value = object[name], value != .null else {
                if field.isRequired { throw GatewayError.badRequest("field '\(name)' is required", field: "/\(name)") }
                continue
            }
            try check(value, field.kind, name)
        }
        return object
    }

    private func check(_ value: JSONValue, _ kind: Kind, _ name: String) throws {
        func fail(_ what: String) -> GatewayError { GatewayError.badRequest("field '\(name)' must be \(what)", field: "/\(name)") }
        switch (kind, value) {
        case (.string(let length), .string(let text)):
            guard length.contains(text.count) else { throw fail("a string of \(length.lowerBound) to \(length.upperBound) characters") }
        case (.integer(let range), .number(let number)):
            guard number.rounded() == number, let int = Int(exactly: number), range.contains(int) else {
                throw fail("a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
        case (.number(let range), .number(let number)):
            guard number.isFinite, range.contains(number) else { throw fail("a number from \(range.lowerBound) to \(range.upperBound)") }
        case (.strings(let count), .array(let items)):
            guard count.contains(items.count), items.allSatisfy({ if case .string(let s) = $0 { !s.isEmpty } else { false } }) else {
                throw fail("a list of \(count.lowerBound) to \(count.upperBound) non-empty strings")
            }
        case (.numbers(let count), .array(let items)):
            guard count.contains(items.count), items.allSatisfy({ if case .number(let n) = $0 { n.isFinite } else { false } }) else {
                throw fail("a list of \(count.lowerBound) to \(count.upperBound) numbers")
            }
        case (.any, _), (.bool, .bool): break
        case (.bool, _): throw fail("true or false")
        case (.oneOf(let options), .string(let text)):
            guard options.contains(text) else { throw fail("one of: \(options.joined(separator: ", "))") }
        case (.string, _): throw fail("a string")
        case (.integer(let range), _): throw fail("a whole number from \(range.lowerBound) to \(range.upperBound)")
        case (.number, _): throw fail("a number")
        case (.strings, _): throw fail("a list of strings")
        case (.numbers, _): throw fail("a list of numbers")
        case (.oneOf(let options), _): throw fail("one of: \(options.joined(separator: ", "))")
        }
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    func string(_ key: String) -> String? { if case .string(let s) = self[key] { s } else { nil } }
    func int(_ key: String) -> Int? { if case .number(let n) = self[key] { Int(exactly: n) } else { nil } }
    func bool(_ key: String) -> Bool? { if case .bool(let b) = self[key] { b } else { nil } }
    func double(_ key: String) -> Double? { if case .number(let n) = self[key] { n } else { nil } }
    func strings(_ key: String) -> [String]? {
        guard case .array(let items) = self[key] else { return nil }
        return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }
    func floats(_ key: String) -> [Float]? {
        guard case .array(let items) = self[key] else { return nil }
        return items.compactMap { if case .number(let n) = $0 { Float(n) } else { nil } }
    }
}
