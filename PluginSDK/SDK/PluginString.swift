import OrionPluginABI

/// A borrowed view of an `orion_str`: valid only during the call that received it.
///
/// Reading ``string`` copies the bytes; use ``withBytes(_:)`` to look without copying.
public struct PluginString: @unchecked Sendable {
    // @unchecked: a borrowed pointer is only valid for the call's duration; the SDK never lets it
    // escape the call, so no other thread can observe it.
    public let raw: orion_str

    @inlinable public init(_ raw: orion_str) { self.raw = raw }

    /// The number of bytes.
    @inlinable public var count: Int { raw.len }

    @inlinable public var isEmpty: Bool { raw.len == 0 }

    /// A copy as a Swift string (invalid UTF-8 is repaired).
    @inlinable public var string: String {
        guard raw.len > 0, let base = raw.ptr else { return "" }
        return base.withMemoryRebound(to: UInt8.self, capacity: raw.len) {
            String(decoding: UnsafeBufferPointer(start: $0, count: raw.len), as: UTF8.self)
        }
    }

    /// Calls `body` with the bytes, without copying them.
    @inlinable public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: raw.ptr, count: raw.len))
    }
}

extension String {
    /// Calls `body` with an `orion_str` over this string's UTF-8 bytes, valid only inside `body`.
    @inlinable
    public func withOrionStr<R, E: Error>(_ body: (orion_str) throws(E) -> R) throws(E) -> R {
        var copy = self
        let result: Result<R, E> = copy.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                Result { () throws(E) in try body(orion_str(ptr: chars.baseAddress, len: chars.count)) }
            }
        }
        return try result.get()
    }
}

extension Array where Element == UInt8 {
    /// Calls `body` with an `orion_str` over these bytes, valid only inside `body`.
    @inlinable
    public func withOrionStr<R, E: Error>(_ body: (orion_str) throws(E) -> R) throws(E) -> R {
        try withUnsafeBufferPointer { (buffer) throws(E) -> R in
            let start = UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self)
            return try body(orion_str(ptr: start, len: buffer.count))
        }
    }
}
