import Foundation
import OrionPluginHost
import Yams

/// A YAML node with its location, read through typed accessors that report the file, line and
/// key path of every problem. Keys a reader does not ask for are reported as unknown by
/// ``rejectUnknownKeys(_:)``, so a typo never passes silently.
public struct ConfigNode: Sendable {
    public let file: String
    public let path: String
    public let line: Int?
    let value: Value

    indirect enum Value: Sendable {
        case null
        case scalar(String, Kind)
        case mapping([(String, ConfigNode)])
        case sequence([ConfigNode])
    }

    enum Kind: Sendable { case string, int, float, bool }

    /// Parses YAML text. An empty document is an empty mapping.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> ConfigNode {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                return ConfigNode(file: file, path: "", line: 1, value: .mapping([]))
            }
            return try convert(node, file: file, path: "")
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, message: "is not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, message: "could not be read: \(error)")
        }
    }

    /// Reads and parses a YAML file.
    public static func load(_ path: String) throws(ConfigError) -> ConfigNode {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, message: "cannot be read; check that it exists and is readable")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    private static func convert(_ node: Yams.Node, file: String, path: String) throws(ConfigError) -> ConfigNode {
        let line = node.mark?.line
        switch node {
        case .scalar(let scalar):
            let kind: Kind
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return ConfigNode(file: file, path: path, line: line, value: .null)
            case .bool: kind = .bool
            case .int: kind = .int
            case .float: kind = .float
            default: kind = .string
            }
            return ConfigNode(file: file, path: path, line: line, value: .scalar(scalar.string, kind))
        case .mapping(let mapping):
            var pairs: [(String, ConfigNode)] = []
            var seen = Set<String>()
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.string else {
                    throw ConfigError(file: file, line: keyNode.mark?.line, key: path.isEmpty ? nil : path, message: "mapping keys must be strings")
                }
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                guard seen.insert(key).inserted else {
                    throw ConfigError(file: file, line: keyNode.mark?.line, key: childPath, message: "appears twice; keep one")
                }
                pairs.append((key, try convert(valueNode, file: file, path: childPath)))
            }
            return ConfigNode(file: file, path: path, line: line, value: .mapping(pairs))
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for (i, item) in sequence.enumerated() { items.append(try convert(item, file: file, path: "\(path)[\(i)]")) }
            return ConfigNode(file: file, path: path, line: line, value: .sequence(items))
        case .alias:
            throw ConfigError(file: file, line: line, key: path, message: "YAML aliases are not supported; write the value out")
        }
    }

    func error(_ message: String, key: String? = nil) -> ConfigError {
        ConfigError(file: file, line: line, key: key ?? (path.isEmpty ? nil : path), message: message)
    }

    // MARK: Mappings

    /// The keys of a mapping, in file order.
    public var keys: [String] {
        if case .mapping(let pairs) = value { return pairs.map(\.0) }
        return []
    }

    public var isMapping: Bool { if case .mapping = value { true } else { false } }
    public var isNull: Bool { if case .null = value { true } else { false } }

    /// The child at `key`, if present (null counts as absent).
    public subscript(key: String) -> ConfigNode? {
        guard case .mapping(let pairs) = value, let child = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        return child.isNull ? nil : child
    }

    /// Requires this node to be a mapping.
    public func requireMapping() throws(ConfigError) -> ConfigNode {
        guard isMapping else { throw error("must be a mapping (key: value lines)") }
        return self
    }

    /// A nested mapping at `key`; an absent key gives an empty mapping.
    public func mapping(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let child = self[key] else {
            return ConfigNode(file: file, path: join(key), line: line, value: .mapping([]))
        }
        return try child.requireMapping()
    }

    /// Fails on keys outside `allowed`, suggesting the closest known key.
    public func rejectUnknownKeys(_ allowed: Set<String>) throws(ConfigError) {
        for key in keys where !allowed.contains(key) {
            let suggestion = allowed.min { editDistance($0, key) < editDistance($1, key) }
            let hint = suggestion.map { editDistance($0, key) <= 3 ? " Did you mean '\($0)'?" : "" } ?? ""
            let child = self[key]
            throw ConfigError(
                file: file, line: child?.line ?? line, key: join(key),
                message: "is not a known key.\(hint) Known keys here: \(allowed.sorted().joined(separator: ", ")).")
        }
    }

    private func join(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    // MARK: Scalars

    /// The scalar text, for any scalar.
    public var scalarText: String? { if case .scalar(let text, _) = value { text } else { nil } }

    public func string(_ key: String) throws(ConfigError) -> String? {
        guard let child = self[key] else { return nil }
        guard case .scalar(let text, _) = child.value else { throw child.error("must be a text value") }
        return text
    }

    public func string(_ key: String, default fallback: String) throws(ConfigError) -> String {
        try string(key) ?? fallback
    }

    public func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let child = self[key] else { return nil }
        guard case .scalar(let text, .bool) = child.value, let value = Bool(text.lowercased()) else {
            throw child.error("must be true or false, got '\(child.scalarText ?? "a non-scalar")'")
        }
        return value
    }

    public func int(_ key: String) throws(ConfigError) -> Int? {
        guard let child = self[key] else { return nil }
        guard case .scalar(let text, .int) = child.value, let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw child.error("must be a whole number, got '\(child.scalarText ?? "a non-scalar")'")
        }
        return value
    }

    public func double(_ key: String) throws(ConfigError) -> Double? {
        guard let child = self[key] else { return nil }
        guard case .scalar(let text, let kind) = child.value, kind == .int || kind == .float,
            let value = Double(text.replacingOccurrences(of: "_", with: ""))
        else {
            throw child.error("must be a number, got '\(child.scalarText ?? "a non-scalar")'")
        }
        return value
    }

    /// A list of strings; a single string counts as a one-item list.
    public func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let child = self[key] else { return nil }
        switch child.value {
        case .scalar(let text, _): return [text]
        case .sequence(let items):
            var out: [String] = []
            for item in items {
                guard let text = item.scalarText else { throw item.error("must be a text value") }
                out.append(text)
            }
            return out
        default: throw child.error("must be a name or a list of names")
        }
    }

    /// The node as JSON, typed by YAML's resolution (so `120` is a number and `"120"` a string).
    /// YAML 1.1 spellings JSON cannot carry faithfully (`yes`/`on`, `0o17`, `0b101`, `.inf`,
    /// `1:30`) are refused with their location instead of being guessed.
    public func json() throws(ConfigError) -> JSONValue {
        switch value {
        case .null: return .null
        case .scalar(let text, .bool):
            switch text.lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw error("'\(text)' is a YAML 1.1 boolean; write true or false")
            }
        case .scalar(let text, .int), .scalar(let text, .float):
            let plain = text.replacingOccurrences(of: "_", with: "")
            guard let number = Double(plain), number.isFinite,
                plain.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }),
                !(plain.count > 1 && plain.hasPrefix("0") && !plain.hasPrefix("0.") && plain.allSatisfy(\.isNumber))
            else {
                throw error("'\(text)' is not a plain decimal number; write it as one (e.g. 15, 0.5, 1e6), or quote it to make it text")
            }
            return .number(number)
        case .scalar(let text, .string): return .string(text)
        case .mapping(let pairs):
            var object: [String: JSONValue] = [:]
            for (key, child) in pairs { object[key] = try child.json() }
            return .object(object)
        case .sequence(let items):
            var array: [JSONValue] = []
            for item in items { array.append(try item.json()) }
            return .array(array)
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased()), b = Array(b.lowercased())
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
