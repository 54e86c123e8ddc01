/// A configuration problem, located precisely: the file, the line, the key and how to fix it.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file the value came from (or `environment` for an environment variable).
    public var file: String
    /// 1-based line in `file`, when known.
    public var line: Int?
    /// The dotted key path, e.g. `tiers.pro.limits.costCapUsd`.
    public var key: String?
    /// What is wrong and what to do about it.
    public var message: String

    public init(file: String, line: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key { return "\(location): '\(key)': \(message)" }
        return "\(location): \(message)"
    }
}

/// Several configuration problems found in one pass, so an operator fixes them all at once.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public init(_ errors: [ConfigError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
