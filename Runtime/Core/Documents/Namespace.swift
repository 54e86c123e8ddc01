/// Tenant namespaces in the document store and in every retriever.
public enum Namespace {
    /// The memory namespace of tenant `id`: `tenant_<id>`.
    public static func forTenant(_ id: String) -> String { "tenant_\(id)" }
}
