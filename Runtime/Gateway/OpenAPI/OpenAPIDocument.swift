import Foundation

/// The OpenAPI 3.1 document of the gateway (`OpenAPI/openapi.json`, kept by hand beside the
/// routes and checked against them by a test), served at `/openapi.json`.
///
/// It ships in the `orion_OrionGateway.resources` folder that the build puts beside the `orion`
/// executable; keep that folder with the executable (as the plugin `.so` files are).
public enum OpenAPIDocument {
    /// The document's bytes, or nil when the resources folder is missing.
    public static let data: Data? = {
        let name = "orion_OrionGateway.resources"
        var folders = [Bundle.main.bundleURL.appendingPathComponent(name)]
        if let executable = Bundle.main.executableURL {
            folders.append(executable.deletingLastPathComponent().appendingPathComponent(name))
        }
        for folder in folders {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent("openapi.json").path) { return data }
        }
        return nil
    }()
}
