import Crypto
import Foundation

/// Files named in the configuration: resolved, checked to exist, and checked against pinned hashes.
enum Paths {
    /// `path` made absolute (relative paths are taken from the working directory) and checked to be
    /// a readable regular file.
    static func file(_ path: String, role: String, key: String) throws(EmbedError) -> String {
        guard !path.isEmpty else { throw EmbedError.config("'\(key)' is empty; give the \(role)'s path") }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let resolved = URL(fileURLWithPath: absolute).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) else {
            throw EmbedError.missingFile(
                role, resolved, relativeTo: path.hasPrefix("/") ? nil : FileManager.default.currentDirectoryPath)
        }
        guard !isDirectory.boolValue else { throw EmbedError.config("'\(key)' names the directory '\(resolved)'; give the \(role) file") }
        guard FileManager.default.isReadableFile(atPath: resolved) else {
            throw EmbedError.config("the \(role) '\(resolved)' is not readable by this process")
        }
        return resolved
    }

    /// Refuses `path` unless its sha256 is `expected` (hex, any case).
    static func verify(_ path: String, sha256 expected: String, role: String, key: String) throws(EmbedError) {
        let wanted = expected.lowercased()
        guard wanted.count == 64, wanted.allSatisfy(\.isHexDigit) else {
            throw EmbedError.config("'\(key)' must be 64 hexadecimal digits (the output of sha256sum), got '\(expected)'")
        }
        let actual = try sha256(path, role: role)
        guard actual == wanted else {
            throw EmbedError.config(
                "the \(role) '\(path)' has sha256 \(actual), but '\(key)' pins \(wanted); rerun scripts/embed-setup.sh, "
                    + "or set '\(key)' to the new hash if you replaced the file on purpose")
        }
    }

    static func sha256(_ path: String, role: String) throws(EmbedError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw EmbedError.config("cannot open the \(role) '\(path)'") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data
            do {
                guard let read = try handle.read(upToCount: 4 << 20), !read.isEmpty else { break }
                chunk = read
            } catch {
                throw EmbedError.config("cannot read the \(role) '\(path)': \(error)")
            }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
