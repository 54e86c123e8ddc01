import Foundation
import Logging
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The state several nodes share, in one PostgreSQL database (`store.postgresUrl`): tenants, usage
/// records, budget accounts, idempotency keys, runs with their steps and tool calls, and the audit
/// trail. Every query names the tenant (or tenant namespace) it reads or writes, except the
/// operator's usage summary across tenants, a node closing its own interrupted runs, and the
/// expiry sweeps.
///
/// A tenant change is announced with `NOTIFY orion_tenants` in its transaction; every node listens
/// on that channel and drops its cached resolution of the tenant (see ``service``). A cancel asked
/// of a run another node runs goes to that node on `orion_run_cancel`.
public final class PostgresState: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// Seconds an unsettled budget hold counts against the caps.
    let budgetHoldSeconds: Double
    /// Seconds a stored idempotent response is replayed.
    let idempotencyTTL: Double
    private let observers = Mutex<[@Sendable (String?) -> Void]>([])
    private let cancelObservers = Mutex<[@Sendable (CancelRequest) -> Void]>([])
    /// The last readiness check: when, and what it found.
    private let lastProbe = Mutex<(at: ContinuousClock.Instant, problem: String?)?>(nil)
    /// The client's connection pool runs in this task from ``connect`` until ``close()``.
    private let clientTask: Mutex<Task<Void, Never>?>

    /// The channel tenant changes are announced on.
    static let tenantChannel = "orion_tenants"
    /// The channel cancels of another node's runs are asked on (a JSON ``CancelRequest``).
    static let runCancelChannel = "orion_run_cancel"

    private init(client: PostgresClient, clientTask: Task<Void, Never>, logger: Logger, budgetHoldSeconds: Double, idempotencyTTL: Double) {
        self.client = client
        self.clientTask = Mutex(clientTask)
        self.logger = logger
        self.budgetHoldSeconds = budgetHoldSeconds
        self.idempotencyTTL = idempotencyTTL
    }

    /// Connects, checks that the server answers, and brings the schema up to date.
    public static func connect(
        url: RuntimeConfig.PostgresURL, poolSize: Int = 10, budgetHoldSeconds: Double = 900, idempotencyTTL: Double = 86_400, logger: Logger
    ) async throws -> PostgresState {
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: url.requireTLS ? .require(.makeClientConfiguration()) : .disable)
        // One more than the pool: the tenant-change listener holds a connection for as long as it runs.
        configuration.options.maximumConnections = poolSize + 1
        configuration.options.connectTimeout = .seconds(5)
        // The pool starts first, so it is running by the time the schema is up to date.
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let task = Task { await client.run() }
        let state = PostgresState(client: client, clientTask: task, logger: logger, budgetHoldSeconds: budgetHoldSeconds, idempotencyTTL: idempotencyTTL)
        do {
            try await withSetupConnection(url: url, logger: logger) { connection in try await migrate(connection, logger: logger) }
        } catch let error as StoreError {
            state.close()
            throw error
        } catch {
            state.close()
            throw StoreError("PostgreSQL at \(url) could not be prepared: \(cause(error))")
        }
        return state
    }

    /// Why the database does not answer `SELECT 1` within `limit`, or nil; checked at most once a
    /// second (readiness probes may come often). The cause is logged, not returned: `/ready` is public.
    func problem(within limit: Duration) async -> String? {
        if let cached = lastProbe.withLock({ probe in probe.map { ContinuousClock.now - $0.at < .seconds(1) ? $0 : nil } ?? nil }) {
            return cached.problem
        }
        let problem = await probe(within: limit)
        lastProbe.withLock { $0 = (ContinuousClock.now, problem) }
        return problem
    }

    private func probe(within limit: Duration) async -> String? {
        let client = self.client
        let logger = self.logger
        let answered = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                do {
                    try await client.query("SELECT 1")
                    return nil
                } catch {
                    logger.warning("the shared PostgreSQL store failed a readiness check", metadata: ["orion.error": "\(PostgresState.cause(error))"])
                    return "the shared PostgreSQL store failed a query (the node's log says why)"
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return "the shared PostgreSQL store did not answer within \(limit)"
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return answered
    }

    /// Runs `body` on a connection of its own, outside the pool: a wrong address, password or TLS
    /// setting fails at once with its own cause, instead of after the pool's retries.
    static func withSetupConnection(url: RuntimeConfig.PostgresURL, logger: Logger, _ body: (PostgresConnection) async throws -> Void) async throws {
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: url.requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable)
        configuration.options.connectTimeout = .seconds(5)
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        } catch {
            throw StoreError("PostgreSQL at \(url) refused the connection: \(Self.cause(error)); check store.postgresUrl (host, port, user, password, database, sslmode)")
        }
        do {
            try await body(connection)
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }

    /// What went wrong, in the server's words when it sent some.
    static func cause(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }

    /// Stops the connection pool (``service`` does it at graceful shutdown).
    public func close() {
        clientTask.withLock { $0?.cancel() }
    }

    /// Listens for tenant changes until graceful shutdown, then closes the pool. Run it with the
    /// node's services, started before and stopped after everything that uses the store.
    public var service: any Service { Listener(state: self) }

    struct Listener: Service {
        let state: PostgresState

        func run() async throws {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        try await state.client.withConnection { connection in
                            // Both channels on one connection: when either ends, the connection
                            // is gone, and both are listened to again on a new one.
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    try await connection.listen(on: PostgresState.tenantChannel) { notifications in
                                        // Changes made while no connection listened were missed: every cached tenant is stale.
                                        state.announce(nil)
                                        for try await notification in notifications { state.announce(notification.payload) }
                                    }
                                }
                                group.addTask {
                                    try await connection.listen(on: PostgresState.runCancelChannel) { notifications in
                                        for try await notification in notifications { state.cancelRequested(notification.payload) }
                                    }
                                }
                                try await group.next()
                                group.cancelAll()
                            }
                        }
                    } catch {
                        guard !Task.isCancelled else { break }
                        state.logger.warning("the tenant-change listener lost its connection; reconnecting", metadata: ["orion.error": "\(error)"])
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
            state.close()
        }
    }

    public func onChange(_ observer: @escaping @Sendable (String?) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    func announce(_ tenant: String?) {
        for observer in observers.withLock({ $0 }) { observer(tenant) }
    }

    public func onCancelRequest(_ observer: @escaping @Sendable (CancelRequest) -> Void) {
        cancelObservers.withLock { $0.append(observer) }
    }

    func cancelRequested(_ payload: String) {
        guard let request = try? JSONDecoder().decode(CancelRequest.self, from: Data(payload.utf8)) else {
            logger.warning("ignored a run cancel that is not a cancel request", metadata: ["orion.payload": "\(payload.prefix(200))"])
            return
        }
        for observer in cancelObservers.withLock({ $0 }) { observer(request) }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Ends every session listening for tenant changes in this database (as a restart of the
    /// server or a network cut would): for tests and for operators checking the reconnection.
    public func terminateListeners() async throws {
        try await client.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'",
            logger: logger)
    }

    /// Runs `body` in one transaction; an error the body threw (a refused budget, say) comes out
    /// as itself, not wrapped.
    func transaction<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await client.withTransaction(logger: logger, isolation: isolation, body)
        } catch let error as PostgresTransactionError {
            if let thrown = error.closureError, error.rollbackError == nil { throw thrown }
            throw error
        }
    }
}

/// A store that could not be opened or used, with what to do about it.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
