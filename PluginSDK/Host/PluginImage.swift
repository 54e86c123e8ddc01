import Foundation
import OrionPluginABI
import OrionPluginSDK

/// One loaded shared object and its validated info.
///
/// Opening applies every check that needs only the file: ELF magic, `dlopen` with `RTLD_NOW |
/// RTLD_LOCAL`, the entry symbol, ABI major and minor, struct sizes, toolchain, the tables of the
/// declared kinds and the manifest. A Swift image is pinned with `RTLD_NODELETE` and never closed
/// (the Swift runtime keeps its type metadata); a C image is closed when the last reference goes.
public final class PluginImage: @unchecked Sendable {
    // @unchecked: all stored properties are immutable after init; `info` points into the plugin's
    // static storage, which the ABI requires to live as long as the image.
    public let path: String
    public let info: PluginInfo
    public let raw: UnsafePointer<orion_plugin_info>
    /// The plugin's info as this host's struct: the fields an older plugin does not have are zero.
    public let entry: orion_plugin_info
    public let isSwift: Bool
    private let handle: UnsafeMutableRawPointer

    /// The host's ABI version.
    public static let hostABI = (major: UInt16(ORION_ABI_MAJOR), minor: UInt16(ORION_ABI_MINOR))

    /// Opens `path` and validates it. `host` is handed to the plugin's entry point.
    public init(path: String, host: UnsafePointer<orion_host_api> = HostAPI.table) throws(PluginLoadError) {
        self.path = path
        try Self.checkFile(path)
        dlerror()
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let cause = Self.lastDLError()
            if cause.contains("undefined symbol") {
                throw PluginLoadError(
                    .unresolvedSymbol,
                    "'\(path)' needs a symbol that no loaded library provides. Link the plugin with every library it uses (and -z defs to catch this at build time), or install the missing library.",
                    cause: cause, path: path)
            }
            throw PluginLoadError(.openFailed, "'\(path)' could not be loaded as a shared library.", cause: cause, path: path)
        }
        // A Swift image must never be unloaded: pin it before anything can fail.
        let swift = dlsym(handle, "swift_retain") != nil
        if swift { _ = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD | RTLD_NODELETE) }
        self.handle = handle
        self.isSwift = swift
        do {
            let raw = try Self.callEntry(handle: handle, path: path, host: host)
            self.raw = raw
            self.info = try Self.validate(raw, path: path, isSwift: swift)
            self.entry = Self.copy(raw)
        } catch {
            if !swift { dlclose(handle) }
            throw error
        }
    }

    deinit {
        if !isSwift { dlclose(handle) }
    }

    static func lastDLError() -> String {
        guard let text = dlerror() else { return "unknown dlopen error" }
        return String(cString: text)
    }

    static func checkFile(_ path: String) throws(PluginLoadError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PluginLoadError(.fileNotFound, "No plugin file at '\(path)'. Check the path, or build the plugin first.", path: path)
        }
        defer { try? handle.close() }
        let magic = (try? handle.read(upToCount: 4)) ?? nil
        guard let magic, !magic.isEmpty else {
            throw PluginLoadError(.emptyFile, "'\(path)' is empty. Rebuild the plugin; the copy may have been interrupted.", path: path)
        }
        guard magic.elementsEqual([0x7F, 0x45, 0x4C, 0x46]) else {
            throw PluginLoadError(.notELF, "'\(path)' is not an ELF shared object. Point the instance at the plugin's .so file.", path: path)
        }
    }

    static func callEntry(handle: UnsafeMutableRawPointer, path: String, host: UnsafePointer<orion_host_api>) throws(PluginLoadError) -> UnsafePointer<orion_plugin_info> {
        guard let symbol = dlsym(handle, ORION_PLUGIN_ENTRY_SYMBOL) else {
            let cause = lastDLError()
            for major in 2...9 where dlsym(handle, "orion_plugin_v\(major)_entry") != nil {
                throw PluginLoadError(
                    .abiMajorMismatch,
                    "'\(path)' was built for plugin ABI \(major), but this runtime supports \(hostABI.major). Rebuild it against PluginSDK \(hostABI.major).x.",
                    cause: cause, path: path)
            }
            throw PluginLoadError(
                .missingEntrySymbol,
                "'\(path)' does not export \(ORION_PLUGIN_ENTRY_SYMBOL). Is it an Orion plugin? Export the entry with @c(orion_plugin_v1_entry) in Swift or ORION_EXPORT in C.",
                cause: cause, path: path)
        }
        let entry = unsafeBitCast(symbol, to: orion_plugin_v1_entry_fn.self)
        guard let info = entry(host) else {
            throw PluginLoadError(
                .entryRefused, "'\(path)' refused to start with this host (its entry returned NULL); see the plugin's log lines for why.",
                path: path)
        }
        return info
    }

    /// Minimum sizes for ABI 1.0: every struct must reach its last 1.0 field.
    static let minimumInfoSize = MemoryLayout<orion_plugin_info>.offset(of: \orion_plugin_info.connector)! + MemoryLayout<UnsafeRawPointer>.size

    /// ABI 1.0 sizes of the kind tables. Fixed: a later minor grows the structs, and must still
    /// accept a 1.0 plugin's smaller tables.
    static let minimumTableSizes: [PluginKind: Int] = [
        .retriever: MemoryLayout<orion_retriever_v1>.size, .rateLimiter: MemoryLayout<orion_rate_limiter_v1>.size,
        .engine: MemoryLayout<orion_engine_v1>.size, .pricing: MemoryLayout<orion_pricing_v1>.size,
        .connector: MemoryLayout<orion_connector_v1>.size, .tool: MemoryLayout<orion_tool_v1>.size,
    ]

    /// Copies the plugin's info, reading only the `struct_size` bytes it declared (a 1.0 plugin's
    /// info ends before the 1.1 `tool` field).
    static func copy(_ raw: UnsafePointer<orion_plugin_info>) -> orion_plugin_info {
        var info = orion_plugin_info()
        let declared = Int(UnsafeRawPointer(raw).load(as: UInt32.self))
        withUnsafeMutableBytes(of: &info) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: min(declared, MemoryLayout<orion_plugin_info>.size)))
        }
        return info
    }

    static func validate(_ raw: UnsafePointer<orion_plugin_info>, path: String, isSwift: Bool) throws(PluginLoadError) -> PluginInfo {
        // Read struct_size alone first: a plugin's info may be smaller than this host's struct.
        let declaredSize = UnsafeRawPointer(raw).load(as: UInt32.self)
        guard Int(declaredSize) >= minimumInfoSize else {
            throw PluginLoadError(
                .structTooSmall,
                "'\(path)' reports orion_plugin_info of \(declaredSize) bytes; ABI \(hostABI.major).0 needs at least \(minimumInfoSize). Set struct_size = sizeof(orion_plugin_info) and rebuild against the current header.",
                path: path)
        }
        let info = copy(raw)
        guard info.abi_major == hostABI.major else {
            throw PluginLoadError(
                .abiMajorMismatch,
                "'\(path)' was built for plugin ABI \(info.abi_major), but this runtime supports \(hostABI.major). Rebuild it against PluginSDK \(hostABI.major).x.",
                path: path)
        }
        guard info.abi_minor <= hostABI.minor else {
            throw PluginLoadError(
                .pluginNewerThanHost,
                "'\(path)' needs plugin ABI \(info.abi_major).\(info.abi_minor), newer than this runtime's \(hostABI.major).\(hostABI.minor). Upgrade Orion, or rebuild the plugin against the SDK this runtime ships.",
                path: path)
        }
        let id = info.id.map { String(cString: $0) } ?? ""
        guard !id.isEmpty, id.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else {
            throw PluginLoadError(.invalidInfo, "'\(path)' reports the plugin id '\(id)'; ids are lowercase letters, digits and '-'.", path: path)
        }
        let version = info.version.map { String(cString: $0) } ?? ""
        guard !version.isEmpty else {
            throw PluginLoadError(.invalidInfo, "Plugin '\(id)' reports no version; set orion_plugin_info.version.", path: path)
        }
        let toolchain = info.toolchain.map { String(cString: $0) } ?? ""
        if !toolchain.isEmpty, toolchain != Toolchain.tag {
            throw PluginLoadError(
                .toolchainMismatch,
                "Plugin '\(id)' was built with \(toolchain), but this runtime was built with \(Toolchain.tag). Swift plugins must be built with the host's toolchain: rebuild it with \(Toolchain.tag).",
                path: path)
        }
        guard info.create != nil, info.destroy != nil else {
            throw PluginLoadError(.invalidInfo, "Plugin '\(id)' provides no create/destroy functions.", path: path)
        }
        let kinds = PluginKind(rawValue: info.kinds)
        guard !kinds.isEmpty, kinds.rawValue & ~PluginKind.all.reduce(0, { $0 | $1.rawValue }) == 0 else {
            throw PluginLoadError(.invalidInfo, "Plugin '\(id)' declares kinds 0x\(String(info.kinds, radix: 16)); declare one or more ORION_KIND_* bits.", path: path)
        }
        try checkTables(info, kinds: kinds, id: id, path: path)
        let manifest = try PluginManifest.parse(info.manifest.map { String(cString: $0) } ?? "", pluginID: id)
        if kinds.contains(.tool), manifest.tool == nil {
            throw PluginLoadError(
                .invalidManifest, "Plugin '\(id)' declares kind tool but its manifest has no 'tool' object (name, description, input_schema, output_schema).",
                path: path)
        }
        return PluginInfo(id: id, version: version, abiMajor: info.abi_major, abiMinor: info.abi_minor, toolchain: toolchain, kinds: kinds, manifest: manifest)
    }

    static func checkTables(_ info: orion_plugin_info, kinds: PluginKind, id: String, path: String) throws(PluginLoadError) {
        func check(_ kind: PluginKind, _ table: UnsafeRawPointer?, size: UInt32?, minimum: Int) throws(PluginLoadError) {
            guard kinds.contains(kind) else { return }
            guard table != nil, let size else {
                throw PluginLoadError(.invalidInfo, "Plugin '\(id)' declares kind \(kind) but provides no \(kind) table.", path: path)
            }
            guard Int(size) >= minimum else {
                throw PluginLoadError(
                    .structTooSmall,
                    "Plugin '\(id)' has a \(kind) table of \(size) bytes; ABI 1.0 needs at least \(minimum). Rebuild against the current header.",
                    path: path)
            }
        }
        func size(_ kind: PluginKind) -> Int { minimumTableSizes[kind] ?? 0 }
        try check(.retriever, UnsafeRawPointer(info.retriever), size: info.retriever?.pointee.struct_size, minimum: size(.retriever))
        try check(.rateLimiter, UnsafeRawPointer(info.rate_limiter), size: info.rate_limiter?.pointee.struct_size, minimum: size(.rateLimiter))
        try check(.engine, UnsafeRawPointer(info.engine), size: info.engine?.pointee.struct_size, minimum: size(.engine))
        try check(.pricing, UnsafeRawPointer(info.pricing), size: info.pricing?.pointee.struct_size, minimum: size(.pricing))
        try check(.connector, UnsafeRawPointer(info.connector), size: info.connector?.pointee.struct_size, minimum: size(.connector))
        try check(.tool, UnsafeRawPointer(info.tool), size: info.tool?.pointee.struct_size, minimum: size(.tool))
        // Every ABI 1.0 function of a declared kind must be present: a NULL would crash the host
        // at its first call.
        for kind in PluginKind.all where kinds.contains(kind) {
            guard let table = UnsafeRawPointer(tablePointer(info, kind)) else { continue }
            let slots = (size(kind) - MemoryLayout<UInt64>.size) / MemoryLayout<UnsafeRawPointer>.size
            for slot in 0..<slots {
                let offset = MemoryLayout<UInt64>.size + slot * MemoryLayout<UnsafeRawPointer>.size
                if table.load(fromByteOffset: offset, as: UInt.self) == 0 {
                    throw PluginLoadError(
                        .invalidInfo, "Plugin '\(id)' leaves function \(slot + 1) of its \(kind) table NULL; every ABI 1.0 function of a declared kind must be implemented.",
                        path: path)
                }
            }
        }
    }

    /// The C table for `kind`, if the plugin provides it.
    public func table(for kind: PluginKind) -> UnsafeRawPointer? { Self.tablePointer(entry, kind) }

    static func tablePointer(_ info: orion_plugin_info, _ kind: PluginKind) -> UnsafeRawPointer? {
        switch kind {
        case .retriever: UnsafeRawPointer(info.retriever)
        case .rateLimiter: UnsafeRawPointer(info.rate_limiter)
        case .engine: UnsafeRawPointer(info.engine)
        case .pricing: UnsafeRawPointer(info.pricing)
        case .connector: UnsafeRawPointer(info.connector)
        case .tool: UnsafeRawPointer(info.tool)
        default: nil
        }
    }
}
