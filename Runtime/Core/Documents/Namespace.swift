/// Tenant namespaces in the document store and in every retriever.
public enum Namespace {
    /// The memory namespace of tenant `id`: `tenant_<id>`.
    public static func forTenant(_ id: String) -> String { "tenant_\(id)" }

    /// The tenant id of a namespace made by ``forTenant(_:)``; nil for any other namespace.
    public static func tenantID(of namespace: String) -> String? {
        namespace.hasPrefix("tenant_") ? String(namespace.dropFirst("tenant_".count)) : nil
    }
}
