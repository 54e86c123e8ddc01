import OrionPluginABI

/// An error a plugin reports to the host: a status code from the ABI and a message that says what
/// went wrong and how to fix it.
///
/// Throw it from any plugin method; the SDK turns it into the C status and message. Any other error
/// thrown from a plugin becomes ``Code/internal`` with the error's description.
public struct PluginError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable status code. New codes may be added; do not switch over them exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The `ORION_ERR_*` value.
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let invalidArgument = Code(rawValue: ORION_ERR_INVALID_ARGUMENT)
        public static let notFound = Code(rawValue: ORION_ERR_NOT_FOUND)
        public static let unavailable = Code(rawValue: ORION_ERR_UNAVAILABLE)
        public static let unsupported = Code(rawValue: ORION_ERR_UNSUPPORTED)
        public static let resourceExhausted = Code(rawValue: ORION_ERR_RESOURCE_EXHAUSTED)
        public static let cancelled = Code(rawValue: ORION_ERR_CANCELLED)
        public static let deadline = Code(rawValue: ORION_ERR_DEADLINE)
        public static let config = Code(rawValue: ORION_ERR_CONFIG)
        public static let `internal` = Code(rawValue: ORION_ERR_INTERNAL)

        public var description: String {
            switch rawValue {
            case ORION_ERR_INVALID_ARGUMENT: "invalid-argument"
            case ORION_ERR_NOT_FOUND: "not-found"
            case ORION_ERR_UNAVAILABLE: "unavailable"
            case ORION_ERR_UNSUPPORTED: "unsupported"
            case ORION_ERR_RESOURCE_EXHAUSTED: "resource-exhausted"
            case ORION_ERR_CANCELLED: "cancelled"
            case ORION_ERR_DEADLINE: "deadline"
            case ORION_ERR_CONFIG: "config"
            case ORION_ERR_INTERNAL: "internal"
            default: "status-\(rawValue)"
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension PluginError {
    /// Reads the status and message a plugin wrote, as the caller of a C function sees them.
    public init(status: orion_status, error: UnsafePointer<orion_error>) {
        self.init(Code(rawValue: status), ErrorBuffer.message(error))
    }

    /// Writes this error into a caller-allocated `orion_error` and returns its status.
    @inlinable
    public func write(to error: UnsafeMutablePointer<orion_error>?) -> orion_status {
        if let error { ErrorBuffer.write(message, to: error) }
        return code.rawValue
    }
}

/// Reading and writing the fixed-size message of an `orion_error`.
public enum ErrorBuffer {
    /// A zeroed error buffer, ready to be passed to a plugin.
    public static func make() -> orion_error {
        var error = orion_error()
        error.struct_size = UInt32(MemoryLayout<orion_error>.size)
        return error
    }

    /// Copies `message` (truncated on a UTF-8 boundary) into `error.message`, NUL-terminated.
    public static func write(_ message: String, to error: UnsafeMutablePointer<orion_error>) {
        let capacity = Int(ORION_ERROR_MESSAGE_CAPACITY)
        withUnsafeMutableBytes(of: &error.pointee.message) { raw in
            let all = Array(message.utf8)
            var utf8 = Array(all.prefix(capacity - 1))
            if utf8.count < all.count {
                // Cut inside a multi-byte character? Drop its leading bytes too.
                var end = utf8.count
                while end > 0, all[end] & 0xC0 == 0x80 { end -= 1 }
                utf8.removeLast(utf8.count - end)
            }
            raw.copyBytes(from: utf8)
            raw[utf8.count] = 0
        }
    }

    /// The NUL-terminated message in `error`, or a generic text when the plugin wrote none.
    public static func message(_ error: UnsafePointer<orion_error>) -> String {
        let text = withUnsafeBytes(of: error.pointee.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "the plugin reported an error without a message" : text
    }
}
