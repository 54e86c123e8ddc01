import Foundation

/// Serialises the values `JSONSerialization` produces and accepts — `[String: Any]`, `[Any]`,
/// `String`, `Bool`, integers, `Double`, `NSNumber`, `NSNull` — several times faster than
/// `JSONSerialization.data(withJSONObject:)` on Linux, which bridges every dictionary to
/// `NSDictionary`. For the request path of engine calls.
public enum JSONWriter {
    public struct Unsupported: Error, CustomStringConvertible {
        public var description: String
    }

    /// The JSON text of `value`; throws for a value JSON cannot hold (NaN, infinity, other types).
    public static func data(_ value: Any) throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try write(value, into: &out)
        return Data(out)
    }

    private static let booleanType = type(of: NSNumber(value: true))

    static func write(_ value: Any, into out: inout [UInt8]) throws {
        switch value {
        case let text as String: writeString(text, into: &out)
        case let object as [String: Any]:
            out.append(UInt8(ascii: "{"))
            var first = true
            for (key, item) in object {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                try write(item, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let list as [Any]:
            out.append(UInt8(ascii: "["))
            for (index, item) in list.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case is NSNull: out.append(contentsOf: "null".utf8)
        default:
            // Swift's own scalars first: an NSNumber casts to Bool, Int and Double alike.
            if type(of: value) == Bool.self, let flag = value as? Bool {
                out.append(contentsOf: (flag ? "true" : "false").utf8)
            } else if type(of: value) == Int.self, let int = value as? Int {
                out.append(contentsOf: String(int).utf8)
            } else if type(of: value) == Int64.self, let int = value as? Int64 {
                out.append(contentsOf: String(int).utf8)
            } else if type(of: value) == Double.self, let double = value as? Double {
                try writeDouble(double, into: &out)
            } else if let number = value as? NSNumber {
                if type(of: number) == booleanType {
                    out.append(contentsOf: (number.boolValue ? "true" : "false").utf8)
                } else if let kind = String(validatingCString: number.objCType), kind == "d" || kind == "f" {
                    try writeDouble(number.doubleValue, into: &out)
                } else {
                    out.append(contentsOf: number.stringValue.utf8)
                }
            } else {
                throw Unsupported(description: "a \(type(of: value)) cannot be written as JSON")
            }
        }
    }

    static func writeDouble(_ value: Double, into out: inout [UInt8]) throws {
        guard value.isFinite else { throw Unsupported(description: "\(value) is not a JSON number") }
        if value == value.rounded(), abs(value) < 1e15 {
            out.append(contentsOf: String(Int64(value)).utf8)
        } else {
            out.append(contentsOf: "\(value)".utf8)
        }
    }

    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
