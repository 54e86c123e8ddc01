/// The toolchain a Swift plugin or host was compiled with.
///
/// Swift has no stable ABI on Linux, so a Swift plugin must be built with exactly the host's
/// toolchain; the host compares this tag and refuses a mismatch.
public enum Toolchain {
    /// For example `swift-6.3.1`.
    public static let tag: String = {
        #if compiler(>=6.5)
        return "swift-6.5+"
        #elseif compiler(>=6.4)
        return "swift-6.4"
        #elseif compiler(>=6.3.2)
        return "swift-6.3.2+"
        #elseif compiler(>=6.3.1)
        return "swift-6.3.1"
        #elseif compiler(>=6.3)
        return "swift-6.3.0"
        #else
        return "swift-older-than-6.3"
        #endif
    }()
}
