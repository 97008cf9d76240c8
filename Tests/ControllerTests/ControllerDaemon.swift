import AsyncHTTPClient
import BagpipeLab
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NeutronModel
import Testing

/// A `bagpipe-controller` process for a test: its own port and SQLite file (or a PostgreSQL URL),
/// the users tempest and the client tests log in as, and HTTP helpers that authenticate.
final class ControllerDaemon: @unchecked Sendable {
    let daemon: Daemon
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    static let users = """
        admin = secret, admin, admin
        demo = secret, demo, member
        alt = secret, alt, member
        compute-1 = secret, service, agent
        compute-2 = secret, service, agent
        """

    /// `database`: a connection URL; nil is a SQLite file in the daemon's folder. `directory`: reuse
    /// a previous daemon's folder (a restart on the same file).
    init(database: String? = nil, directory: URL? = nil, port: Int? = nil, extra: String = "") async throws {
        let port = try port ?? freePort()
        self.port = port
        let conf = """
            [DEFAULT]
            bind_host = 127.0.0.1
            bind_port = \(port)
            [database]
            connection = \(database ?? "sqlite:///$DIR/controller.db")
            poll_interval = 0.2
            [ml2_type_vxlan]
            vni_ranges = 1000:2999
            [identity]
            \(Self.users)
            \(extra)
            """
        daemon = try Daemon(
            name: "controller", executable: builtProduct("bagpipe-controller"), arguments: ["--config-file", "$DIR/controller.conf"],
            files: ["controller.conf": conf], directory: directory)
        let up = try await eventually(timeout: 20) { (try? await Self.get("\(self.url)/")) != nil }
        guard up else {
            daemon.stop()
            throw ControllerTestError("bagpipe-controller did not answer within 20 s:\n\(daemon.log)")
        }
    }

    func stop() { daemon.stop() }

    static let client = HTTPClient(eventLoopGroupProvider: .singleton)

    static func get(_ url: String) async throws -> String {
        let r = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        return String(buffer: try await r.body.collect(upTo: 1 << 24))
    }

    /// A token for a configured user.
    func token(_ user: String, project: String? = nil) async throws -> String {
        let body = """
            {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "\(user)", "domain": {"name": "Default"}, "password": "secret"}}}\
            \(project.map { #", "scope": {"project": {"name": "\#($0)", "domain": {"name": "Default"}}}"# } ?? "")}}
            """
        var request = HTTPClientRequest(url: "\(url)/v3/auth/tokens")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let r = try await Self.client.execute(request, timeout: .seconds(5))
        guard r.status == .created, let t = r.headers.first(name: "X-Subject-Token") else { throw ControllerTestError("no token for \(user): \(r.status)") }
        return t
    }

    struct Answer {
        var status: Int
        var body: String
        var json: JSON? { try? JSON.parse(body) }
    }

    func request(_ method: HTTPMethod, _ path: String, token: String?, body: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        if let token { request.headers.add(name: "X-Auth-Token", value: token) }
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let r = try await Self.client.execute(request, timeout: .seconds(10))
        return Answer(status: Int(r.status.code), body: String(buffer: try await r.body.collect(upTo: 1 << 26)))
    }
}

struct ControllerTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The virtualenv with tempest, neutron-tempest-plugin, openstacksdk and python-openstackclient:
/// `BAGPIPE_OPENSTACK_VENV`, else `.build/python-openstack` (scripts/test.sh makes it).
enum OpenStackVenv {
    static var path: String {
        if let v = ProcessInfo.processInfo.environment["BAGPIPE_OPENSTACK_VENV"] { return v }
        let here = URL(fileURLWithPath: builtProduct("bagpipe-controller")).deletingLastPathComponent()
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("python-openstack").path
    }

    static var installed: Bool { FileManager.default.isExecutableFile(atPath: "\(path)/bin/tempest") }

    /// Runs a tool of the virtualenv; returns its exit status and output (stdout and stderr).
    static func run(_ tool: String, _ arguments: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
        let searchPath = "\(path)/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return try runProcess("\(path)/bin/\(tool)", arguments, environment: ["PATH": searchPath], in: directory)
    }
}

/// The PostgreSQL server `scripts/test.sh` starts for the run (`BAGPIPE_POSTGRES_URL`, from
/// `scripts/postgres.sh`); each test takes a database of its own on it.
enum TestPostgres {
    static var url: String? { ProcessInfo.processInfo.environment["BAGPIPE_POSTGRES_URL"] }

    /// A new empty database; its URL.
    static func freshDatabase() throws -> String? {
        guard let url else {
            Issue.record("no PostgreSQL server: BAGPIPE_POSTGRES_URL is unset (scripts/test.sh starts one with scripts/postgres.sh)")
            return nil
        }
        let name = "bagpipe_\(UUID().uuidString.prefix(8).lowercased())"
        let out = try shell("/usr/bin/psql", [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"])
        guard let base = url.range(of: "/", options: .backwards) else { throw ControllerTestError("bad BAGPIPE_POSTGRES_URL \(url): \(out)") }
        return String(url[..<base.lowerBound]) + "/" + name
    }
}

/// Where a test's controller keeps its data.
enum Storage: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// The `[database] connection` URL (nil: SQLite in the daemon's folder); throws when PostgreSQL
    /// is wanted and missing (the issue is recorded).
    func database() throws -> String?? {
        switch self {
        case .sqlite: return .some(nil)
        case .postgres: return try TestPostgres.freshDatabase().map { .some($0) } ?? nil
        }
    }
}
