import Foundation
import OrionPluginHost

/// Finds a plugin's `.so` by name in the search paths.
public struct PluginLocator: Sendable {
    /// Directories searched in order.
    public var searchPaths: [String]

    /// `configured` first, then the directory of the running executable (where `swift build`
    /// puts the built-in plugins next to `orion`).
    public init(configured: [String], includeExecutableDirectory: Bool = true) {
        var paths = configured
        if includeExecutableDirectory, let exe = Self.executableDirectory { paths.append(exe) }
        searchPaths = paths
    }

    /// The directory of `/proc/self/exe`.
    public static var executableDirectory: String? {
        guard let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        return (resolved as NSString).deletingLastPathComponent
    }

    /// The file for `reference`: a path as given, or `lib<name>.so` / `<name>.so` in the search paths.
    public func locate(_ reference: InstanceSpec.PluginReference) throws(PluginLoadError) -> String {
        switch reference {
        case .path(let path):
            return path
        case .name(let name):
            let fm = FileManager.default
            for directory in searchPaths {
                for file in ["lib\(name).so", "\(name).so"] {
                    let candidate = (directory as NSString).appendingPathComponent(file)
                    if fm.fileExists(atPath: candidate) { return candidate }
                }
            }
            throw PluginLoadError(
                .pluginNotFound,
                "No plugin named '\(name)' (lib\(name).so) in the search paths: \(searchPaths.joined(separator: ", ")). Build it (swift build), add its directory to plugins.searchPaths or ORION_PLUGIN_PATH, or give 'path'.")
        }
    }
}
