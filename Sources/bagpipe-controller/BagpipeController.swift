import ArgumentParser
import ControllerAPI
import ControllerService
import ControllerStore
import Foundation
import Hummingbird
import INIConfig
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLiteKit

@main
struct BagpipeController: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-controller",
        abstract: "The Neutron and networking-bgpvpn API server of bagpipe, with a minimal Keystone and a per-host watch for agents.",
        discussion: ControllerConfiguration.help)

    @Option(name: .customLong("config-file"), help: "controller.conf; may be repeated (later files override earlier ones).")
    var configFiles: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        let config: ControllerConfiguration
        do {
            config = try ControllerConfiguration(try INIFile(files: configFiles))
        } catch let e as ConfigurationError {
            throw ValidationError(e.description)
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "bagpipe.controller")
        let (store, closeDatabase, listen) = try await Self.openStore(config.database, logger: logger)
        defer { closeDatabase() }
        let controller = try await Controller(store: store, settings: config.settings, logger: logger)
        let secret = try await store.sharedSecret("token_key") { (0..<4).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 16) }.joined() }
        let identity = Identity(users: config.users, secret: secret, lifetime: config.tokenLifetime)
        // Other replicas' writes: a notification when PostgreSQL sends one, and a poll as a safety net.
        let follower = Task {
            await withTaskGroup(of: Void.self) { group in
                if let listen { group.addTask { await listen { try? await controller.catchUp() } } }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(config.pollInterval * 1e9))
                        do { try await controller.catchUp() } catch { logger.warning("reading the change log failed: \(error)") }
                    }
                }
            }
        }
        defer { follower.cancel() }
        let router = ControllerAPI.router(controller: controller, identity: identity, publicURL: config.endpoint, region: config.region)
        let app = Application(router: router, configuration: .init(address: .hostname(config.bindHost, port: config.bindPort), serverName: "bagpipe-controller"), logger: logger)
        logger.notice("bagpipe-controller on \(config.bindHost):\(config.bindPort) (public URL \(config.endpoint)), \(config.users.count) users, database \(Self.describe(config.database))")
        try await app.runService()
        await controller.shutdown()
    }

    static func describe(_ d: ControllerConfiguration.Database) -> String {
        switch d {
        case .sqlite(let path): "sqlite \(path)"
        case .postgres(let url): "postgresql \(url.replacingOccurrences(of: #":[^:@/]*@"#, with: ":***@", options: .regularExpression))"
        }
    }

    typealias Listener = @Sendable (@escaping @Sendable () async -> Void) async -> Void

    static func openStore(_ database: ControllerConfiguration.Database, logger: Logger) async throws -> (ControllerStore, @Sendable () -> Void, Listener?) {
        switch database {
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            let db = connection.sql()
            // WAL: readers never wait for the writer; FULL: a commit is on disk when it returns.
            _ = try await db.raw("PRAGMA journal_mode=WAL").all()
            try await db.raw("PRAGMA synchronous=FULL").run()
            let store = ControllerStore(dialect: .sqlite, logger: logger) { body in try await body(db) }
            return (store, { try? connection.close().wait() }, nil)
        case .postgres(let url):
            let configuration = try SQLPostgresConfiguration(url: url.replacingOccurrences(of: "postgresql://", with: "postgres://"))
            let pool = PoolBox(EventLoopGroupConnectionPool(
                source: PostgresConnectionSource(sqlConfiguration: configuration), maxConnectionsPerEventLoop: 2, pruneInterval: nil, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton))
            let store = ControllerStore(dialect: .postgres, logger: logger) { body in
                let connection = try await pool.pool.requestConnection(logger: logger).get()
                defer { pool.pool.releaseConnection(connection, logger: logger) }
                try await body(connection.sql())
            }
            let listen: Listener = { changed in
                while !Task.isCancelled {
                    do {
                        let connection = try await PostgresConnection.connect(
                            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration.coreConfiguration, id: 1, logger: logger)
                        for try await _ in try await connection.listen("bagpipe_changes") { await changed() }
                        try? await connection.close()
                    } catch {
                        logger.warning("listening for other replicas' changes failed (\(error)); the poll goes on, retrying in 1 s")
                        try? await Task.sleep(nanoseconds: 1_000_000_000)
                    }
                }
            }
            return (store, { pool.pool.shutdown() }, listen)
        }
    }
}

/// AsyncKit's pool locks its own state (it is made to be shared across event loops) but is not
/// marked Sendable.
final class PoolBox: @unchecked Sendable {
    let pool: EventLoopGroupConnectionPool<PostgresConnectionSource>
    init(_ pool: EventLoopGroupConnectionPool<PostgresConnectionSource>) { self.pool = pool }
}
