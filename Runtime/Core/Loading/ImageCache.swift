import Crypto
import Foundation
import OrionPluginHost
import Synchronization

/// Loads plugin images from private, content-addressed copies.
///
/// Every `.so` is copied to `<cache>/<name>-<sha256 prefix>.so` before `dlopen`:
/// - a new build of a plugin gets a new path, so it really loads (dlopen of a path that is
///   already loaded returns the old image);
/// - rebuilding a plugin in place never rewrites a file the process has mapped;
/// - two instances of the same build share one image.
///
/// The cache holds images weakly: a C image is closed once no instance uses it; Swift images are
/// never closed (see ``PluginImage``).
public final class ImageCache: Sendable {
    public let directory: String
    private let images = Mutex<[String: WeakImage]>([:])

    final class WeakImage: Sendable {
        // `weak let` is safe here: the reference is never reassigned, only cleared by the runtime.
        weak let image: PluginImage?
        init(_ image: PluginImage) { self.image = image }
    }

    public init(directory: String) {
        self.directory = directory
    }

    /// The file's SHA-256, lowercase hex.
    public static func sha256(ofFileAt path: String) throws(PluginLoadError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PluginLoadError(.fileNotFound, "No plugin file at '\(path)'. Check the path, or build the plugin first.", path: path)
        }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The image for the file at `path` whose content hashes to `sha256`, loading a private copy
    /// if no image of that content is loaded. Returns the image and the copy's path.
    public func image(for path: String, sha256: String) throws(PluginLoadError) -> PluginImage {
        if let cached = images.withLock({ $0[sha256]?.image }) { return cached }
        // Refuse obviously broken files before copying them anywhere.
        try Self.precheck(path)
        let copy = try makeCopy(of: path, sha256: sha256)
        let image = try PluginImage(path: copy)
        return images.withLock { cache in
            // Another thread may have loaded the same content meanwhile; keep one.
            if let existing = cache[sha256]?.image { return existing }
            cache[sha256] = WeakImage(image)
            cache = cache.filter { $0.value.image != nil }
            return image
        }
    }

    static func precheck(_ path: String) throws(PluginLoadError) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let attributes else {
            throw PluginLoadError(.fileNotFound, "No plugin file at '\(path)'. Check the path, or build the plugin first.", path: path)
        }
        if (attributes[.size] as? NSNumber)?.intValue == 0 {
            throw PluginLoadError(.emptyFile, "'\(path)' is empty. Rebuild the plugin; the copy may have been interrupted.", path: path)
        }
    }

    private func makeCopy(of path: String, sha256: String) throws(PluginLoadError) -> String {
        let fm = FileManager.default
        var stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        if stem.isEmpty { stem = "plugin" }
        let target = (directory as NSString).appendingPathComponent("\(stem)-\(sha256.prefix(16)).so")
        if fm.fileExists(atPath: target), (try? Self.sha256(ofFileAt: target)) == sha256 { return target }
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = target + ".tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
            try fm.copyItem(atPath: path, toPath: temporary)
            // The source may have been replaced since it was hashed (a deploy racing a reload):
            // what is loaded must be exactly what was checked against the pin.
            let copied = try Self.sha256(ofFileAt: temporary)
            guard copied == sha256 else {
                try? fm.removeItem(atPath: temporary)
                throw PluginLoadError(
                    .sha256Mismatch, "'\(path)' changed while it was being loaded (sha256 \(copied), expected \(sha256)). Retry the reload once the deploy is finished.",
                    path: path)
            }
            // rename(2) is atomic: a concurrent loader sees the old file or the whole new one.
            guard rename(temporary, target) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fm.removeItem(atPath: temporary)
                throw PluginLoadError(.openFailed, "Could not place a private copy of '\(path)' in '\(directory)'.", cause: reason, path: path)
            }
        } catch let error as PluginLoadError {
            throw error
        } catch {
            throw PluginLoadError(
                .openFailed, "Could not copy '\(path)' into the plugin cache '\(directory)'; check that the directory is writable (plugins.cacheDirectory).",
                cause: "\(error)", path: path)
        }
        return target
    }
}
