import Foundation
import Logging
import NeutronModel
import SQLKit

/// One committed write: the resources as they are after it (nil: deleted).
public struct Change: Sendable {
    public var version: Int64
    public var resources: [(ResourceKey, AnyResource?)]

    public init(version: Int64, resources: [(ResourceKey, AnyResource?)]) {
        self.version = version
        self.resources = resources
    }
}

/// The controller's database, on SQLKit: SQLite embedded, PostgreSQL for several replicas. It holds
/// every resource as a row (kind, id, JSON body) and a change log: each write is one transaction
/// that stores the resources it changed and one log entry numbered after the last. The controller
/// keeps the whole state in memory and reads the log to follow the other replicas' writes (the
/// database is the log, each replica a view of it, as Kubernetes' API servers are of etcd).
public final class ControllerStore: Sendable {
    public enum Dialect: Sendable { case sqlite, postgres }

    /// A write lost the race with another replica's: catch up and try again.
    public struct Behind: Error {
        public var latest: Int64
    }

    let dialect: Dialect
    let logger: Logger
    /// Runs `body` with a database bound to one connection (a transaction needs one).
    let session: @Sendable (@escaping @Sendable (any SQLDatabase) async throws -> Void) async throws -> Void
    /// Change-log entries kept for replicas and watchers that catch up; older ones are deleted.
    public let retainedChanges: Int64

    public init(
        dialect: Dialect, logger: Logger, retainedChanges: Int64 = 100_000,
        session: @escaping @Sendable (@escaping @Sendable (any SQLDatabase) async throws -> Void) async throws -> Void
    ) {
        self.dialect = dialect
        self.logger = logger
        self.retainedChanges = retainedChanges
        self.session = session
    }

    /// Forward migrations, each in its own transaction, from the version the database records.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE IF NOT EXISTS bagpipe_resources (kind VARCHAR(32) NOT NULL, id VARCHAR(64) NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id))",
            "CREATE TABLE IF NOT EXISTS bagpipe_changes (version BIGINT PRIMARY KEY, body TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS bagpipe_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)",
        ]
    ]

    public func migrate() async throws {
        try await transaction { db in
            try await db.raw("CREATE TABLE IF NOT EXISTS bagpipe_schema (version BIGINT NOT NULL)").run()
            let current = try await db.raw("SELECT max(version) AS v FROM bagpipe_schema").first()?.decode(column: "v", as: Int64?.self) ?? 0
            guard current < Self.migrations.count else { return }
            for (index, statements) in Self.migrations.enumerated() where index >= current {
                for s in statements { try await db.raw(SQLQueryString(s)).run() }
                try await db.raw("INSERT INTO bagpipe_schema (version) VALUES (\(bind: Int64(index + 1)))").run()
                self.logger.notice("database schema migrated to version \(index + 1)")
            }
        }
    }

    /// Everything, and the version of the last change.
    public func load() async throws -> (resources: [AnyResource], version: Int64) {
        let box = ResultBox<([AnyResource], Int64)>()
        try await session { db in
            let rows = try await db.raw("SELECT body FROM bagpipe_resources").all()
            let decoder = JSONDecoder()
            let resources = try rows.map { try decoder.decode(AnyResource.self, from: Data(try $0.decode(column: "body", as: String.self).utf8)) }
            box.value = (resources, try await Self.latest(db))
        }
        guard let v = box.value else { return ([], 0) }
        return v
    }

    static func latest(_ db: any SQLDatabase) async throws -> Int64 {
        try await db.raw("SELECT max(version) AS v FROM bagpipe_changes").first()?.decode(column: "v", as: Int64?.self) ?? 0
    }

    /// Stores one write, numbered `after + 1`; throws `Behind` when another replica wrote since
    /// `after` (nothing is stored then).
    public func commit(_ resources: [(ResourceKey, AnyResource?)], after: Int64) async throws -> Int64 {
        let version = after + 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let entries = resources.map { key, r in LoggedResource(kind: key.kind, id: key.id, resource: r) }
        let log = String(decoding: try encoder.encode(entries), as: UTF8.self)
        let bodies = try resources.map { key, r in (key, try r.map { String(decoding: try encoder.encode($0), as: UTF8.self) }) }
        try await transaction { db in
            let latest = try await Self.latest(db)
            guard latest == after else { throw Behind(latest: latest) }
            for (key, body) in bodies {
                try await db.raw("DELETE FROM bagpipe_resources WHERE kind = \(bind: key.kind.rawValue) AND id = \(bind: key.id)").run()
                if let body {
                    try await db.raw("INSERT INTO bagpipe_resources (kind, id, body) VALUES (\(bind: key.kind.rawValue), \(bind: key.id), \(bind: body))").run()
                }
            }
            try await db.raw("INSERT INTO bagpipe_changes (version, body) VALUES (\(bind: version), \(bind: log))").run()
            if version % 1000 == 0 {
                try await db.raw("DELETE FROM bagpipe_changes WHERE version <= \(bind: version - self.retainedChanges)").run()
            }
            if self.dialect == .postgres { try await db.raw("SELECT pg_notify('bagpipe_changes', \(bind: String(version)))").run() }
        }
        return version
    }

    /// The changes after `version`, in order; nil when the log no longer goes back that far (load
    /// everything again).
    public func changes(after version: Int64) async throws -> [Change]? {
        let box = ResultBox<[Change]?>()
        try await session { db in
            let oldest = try await db.raw("SELECT min(version) AS v FROM bagpipe_changes").first()?.decode(column: "v", as: Int64?.self)
            if let oldest, oldest > version + 1 {
                box.value = .some(nil)
                return
            }
            let rows = try await db.raw("SELECT version, body FROM bagpipe_changes WHERE version > \(bind: version) ORDER BY version").all()
            let decoder = JSONDecoder()
            box.value = try rows.map { row in
                let entries = try decoder.decode([LoggedResource].self, from: Data(try row.decode(column: "body", as: String.self).utf8))
                return Change(version: try row.decode(column: "version", as: Int64.self), resources: entries.map { (ResourceKey($0.kind, $0.id), $0.resource) })
            }
        }
        return box.value ?? []
    }

    /// A value shared by every replica, created by the first that asks (the token signing key).
    public func sharedSecret(_ key: String, create: @escaping @Sendable () -> String) async throws -> String {
        let box = ResultBox<String>()
        try await transaction { db in
            if let v = try await db.raw("SELECT value FROM bagpipe_meta WHERE key = \(bind: key)").first()?.decode(column: "value", as: String.self) {
                box.value = v
                return
            }
            let v = create()
            try await db.raw("INSERT INTO bagpipe_meta (key, value) VALUES (\(bind: key), \(bind: v))").run()
            box.value = v
        }
        guard let v = box.value else { throw StoreError("no value for \(key)") }
        return v
    }

    /// One transaction on one connection; writers are serialized (SQLite's `BEGIN IMMEDIATE`, a
    /// PostgreSQL advisory lock), so a write sees every write committed before it.
    func transaction(_ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
        let dialect = dialect
        try await session { db in
            try await db.raw(dialect == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN").run()
            do {
                if dialect == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(7242001)").run() }
                try await body(db)
                try await db.raw("COMMIT").run()
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }
}

struct LoggedResource: Codable {
    var kind: ResourceKind
    var id: String
    var resource: AnyResource?
}

public struct StoreError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Carries a result out of a `@Sendable` closure that runs once, before the caller reads it.
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
