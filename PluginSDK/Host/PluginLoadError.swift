/// Why a plugin was refused: a stable code, a message that says how to fix it, and the cause
/// (for example the `dlerror()` text).
public struct PluginLoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, extensible refusal code. Compare with the static members; new codes may appear.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let fileNotFound = Code("file-not-found")
        public static let emptyFile = Code("empty-file")
        public static let notELF = Code("not-elf")
        public static let unresolvedSymbol = Code("unresolved-symbol")
        public static let openFailed = Code("open-failed")
        public static let missingEntrySymbol = Code("missing-entry-symbol")
        public static let entryRefused = Code("entry-refused")
        public static let abiMajorMismatch = Code("abi-major-mismatch")
        public static let pluginNewerThanHost = Code("plugin-newer-than-host")
        public static let structTooSmall = Code("struct-too-small")
        public static let toolchainMismatch = Code("toolchain-mismatch")
        public static let invalidInfo = Code("invalid-info")
        public static let invalidManifest = Code("invalid-manifest")
        public static let duplicateInstanceID = Code("duplicate-instance-id")
        public static let configRejected = Code("config-rejected")
        public static let createFailed = Code("create-failed")
        public static let sha256Mismatch = Code("sha256-mismatch")
        public static let kindNotProvided = Code("kind-not-provided")
        public static let pluginNotFound = Code("plugin-not-found")
    }

    public var code: Code
    /// What happened and how to fix it.
    public var message: String
    /// The underlying cause, such as `dlerror()` text, when there is one.
    public var cause: String?
    /// The file involved, when known.
    public var path: String?

    public init(_ code: Code, _ message: String, cause: String? = nil, path: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.path = path
    }

    public var description: String {
        var text = "[\(code)] \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}
