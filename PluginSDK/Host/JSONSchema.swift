/// Validates JSON values against the JSON Schema subset plugin manifests use for their
/// configuration: `type` (string or list), `properties`, `required`, `additionalProperties`
/// (boolean or schema), `enum`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
/// `minLength`, `maxLength`, `pattern`-free string checks, `items`, `minItems`, `maxItems`.
public struct JSONSchema: Sendable {
    public let root: JSONValue

    /// Keywords this validator understands; any other keyword in a schema is an error, so a
    /// plugin author learns at once that a rule would be ignored.
    static let knownKeywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "enum", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "items", "minItems", "maxItems",
        "description", "default", "title", "$schema", "examples", "secret",
    ]

    /// Checks that `root` is a schema this validator can apply.
    public init(_ root: JSONValue) throws(SchemaError) {
        try Self.checkSchema(root, at: "config_schema")
        self.root = root
    }

    public struct SchemaError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    static func checkSchema(_ schema: JSONValue, at path: String) throws(SchemaError) {
        guard let object = schema.objectValue else { throw SchemaError(description: "\(path) must be a JSON object") }
        for key in object.keys where !knownKeywords.contains(key) {
            throw SchemaError(description: "\(path) uses the unsupported keyword '\(key)'")
        }
        if let type = object["type"] {
            let names = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            let valid: Set<String> = ["object", "array", "string", "number", "integer", "boolean", "null"]
            guard !names.isEmpty, names.allSatisfy(valid.contains) else {
                throw SchemaError(description: "\(path).type must name JSON types (object, string, integer, ...)")
            }
        }
        if let properties = object["properties"] {
            guard let props = properties.objectValue else {
                throw SchemaError(description: "\(path).properties must be an object")
            }
            for (name, sub) in props { try checkSchema(sub, at: "\(path).properties.\(name)") }
        }
        if let required = object["required"], required.arrayValue?.allSatisfy({ $0.stringValue != nil }) != true {
            throw SchemaError(description: "\(path).required must be a list of property names")
        }
        if let additional = object["additionalProperties"], additional.boolValue == nil {
            try checkSchema(additional, at: "\(path).additionalProperties")
        }
        if let items = object["items"] { try checkSchema(items, at: "\(path).items") }
    }

    /// Every violation in `value`, each naming the offending key path; empty when valid.
    public func violations(of value: JSONValue) -> [String] {
        located(value).map(\.message)
    }

    /// Every violation with the dotted path of the value it concerns (`""` for the root);
    /// `subject` names the root in messages.
    public func located(_ value: JSONValue, subject: String = "the configuration") -> [(path: String, message: String)] {
        var out: [(path: String, message: String)] = []
        Self.validate(value, against: root, at: "", subject: subject, into: &out)
        return out
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null),
            ("number", .number):
            true
        case ("integer", .number(let n)): n.rounded() == n
        default: false
        }
    }

    private static func validate(
        _ value: JSONValue, against schema: JSONValue, at path: String, subject: String, into located: inout [(path: String, message: String)]
    ) {
        guard let rules = schema.objectValue else { return }
        let here = path.isEmpty ? subject : "'\(path)'"
        func report(_ message: String) { located.append((path, message)) }
        if let type = rules["type"] {
            let names = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !names.contains(where: { matches(value, type: $0) }) {
                report("\(here) must be \(names.joined(separator: " or ")), got \(value.typeName)")
                return
            }
        }
        if let options = rules["enum"]?.arrayValue, !options.contains(value) {
            let list = options.map { String(decoding: $0.jsonData, as: UTF8.self) }.joined(separator: ", ")
            report("\(here) must be one of \(list)")
        }
        if case .number(let n) = value {
            if let min = rules["minimum"]?.numberValue, n < min { report("\(here) must be at least \(format(min)), got \(format(n))") }
            if let max = rules["maximum"]?.numberValue, n > max { report("\(here) must be at most \(format(max)), got \(format(n))") }
            if let min = rules["exclusiveMinimum"]?.numberValue, n <= min { report("\(here) must be greater than \(format(min)), got \(format(n))") }
            if let max = rules["exclusiveMaximum"]?.numberValue, n >= max { report("\(here) must be less than \(format(max)), got \(format(n))") }
        }
        if case .string(let s) = value {
            if let min = rules["minLength"]?.numberValue, Double(s.count) < min { report("\(here) must have at least \(format(min)) characters") }
            if let max = rules["maxLength"]?.numberValue, Double(s.count) > max { report("\(here) must have at most \(format(max)) characters") }
        }
        if case .array(let items) = value {
            if let min = rules["minItems"]?.numberValue, Double(items.count) < min { report("\(here) must have at least \(format(min)) items") }
            if let max = rules["maxItems"]?.numberValue, Double(items.count) > max { report("\(here) must have at most \(format(max)) items") }
            if let itemSchema = rules["items"] {
                for (i, item) in items.enumerated() { validate(item, against: itemSchema, at: "\(path)[\(i)]", subject: subject, into: &located) }
            }
        }
        if case .object(let members) = value {
            let properties = rules["properties"]?.objectValue ?? [:]
            for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                located.append((join(path, name), "missing required key '\(join(path, name))'"))
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let sub = properties[name] {
                    validate(member, against: sub, at: join(path, name), subject: subject, into: &located)
                } else if let additional = rules["additionalProperties"] {
                    if additional.boolValue == false {
                        let known = properties.keys.sorted().joined(separator: ", ")
                        located.append((join(path, name), "unknown key '\(join(path, name))'" + (known.isEmpty ? "" : "; known keys: \(known)")))
                    } else if additional.objectValue != nil {
                        validate(member, against: additional, at: join(path, name), subject: subject, into: &located)
                    }
                }
            }
        }
    }

    private static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    private static func format(_ n: Double) -> String {
        n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    }
}
