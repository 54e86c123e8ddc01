import Foundation
import Logging
import PostgresNIO

/// A PostgreSQL database of its own for one test, on the loopback server `scripts/test.sh` starts
/// (`scripts/postgres-setup.sh`): created empty, dropped by ``drop()``.
public struct PostgresDatabase: Sendable {
    /// The database's address, with its password.
    public let url: String
    public let name: String
    let admin: PostgresClient.Configuration

    /// The maintenance database's address: `ORION_TEST_POSTGRES_URL`, or the address
    /// `scripts/postgres-setup.sh` makes.
    public static var adminURL: String {
        ProcessInfo.processInfo.environment["ORION_TEST_POSTGRES_URL"] ?? "postgres://orion_test:orion_test@127.0.0.1:5432/postgres"
    }

    /// Creates `orion_test_<random>`.
    public static func create() async throws -> PostgresDatabase {
        guard let parts = URLComponents(string: adminURL), let host = parts.host, let user = parts.user else {
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "ORION_TEST_POSTGRES_URL '\(adminURL)' is not a postgres:// address"])
        }
        let admin = PostgresClient.Configuration(
            host: host, port: parts.port ?? 5432, username: user, password: parts.password, database: String(parts.path.dropFirst()), tls: .disable)
        let name = "orion_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        do {
            try await Self.run(admin, "CREATE DATABASE \(name)")
        } catch {
            throw CocoaError(.fileReadUnknown, userInfo: [
                NSLocalizedDescriptionKey: "no PostgreSQL at \(host):\(parts.port ?? 5432) for the tests (\(String(reflecting: error))): run scripts/test.sh, which installs and starts it"
            ])
        }
        var address = parts
        address.path = "/" + name
        return PostgresDatabase(url: address.string!, name: name, admin: admin)  // built from a parsed address
    }

    /// Drops the database, closing the connections still open to it.
    public func drop() async {
        try? await Self.run(admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs one statement on the maintenance database.
    static func run(_ configuration: PostgresClient.Configuration, _ sql: String) async throws {
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "test.postgres"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.query(PostgresQuery(unsafeSQL: sql))
        }
    }
}
