import AsyncHTTPClient
import BagpipeLab
import Foundation
import NIOCore
import NIOHTTP1
import NeutronModel

/// A `bagpipe-controller` process for a test: its own port and SQLite file (or a PostgreSQL URL),
/// the users tempest and the client tests log in as, and HTTP helpers that authenticate.
public final class ControllerDaemon: @unchecked Sendable {
    public let daemon: Daemon
    public let port: Int
    public var url: String { "http://127.0.0.1:\(port)" }

    public static let users = """
        admin = secret, admin, admin
        demo = secret, demo, member
        alt = secret, alt, member
        compute-1 = secret, service, agent
        compute-2 = secret, service, agent
        """

    /// `database`: a connection URL; nil is a SQLite file in the daemon's folder. `directory`: reuse
    /// a previous daemon's folder (a restart on the same file).
    public init(database: String? = nil, directory: URL? = nil, port: Int? = nil, extra: String = "") async throws {
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

    public func stop() { daemon.stop() }

    public static let client = HTTPClient(eventLoopGroupProvider: .singleton)

    public static func get(_ url: String) async throws -> String {
        let r = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        return String(buffer: try await r.body.collect(upTo: 1 << 24))
    }

    /// A token for a configured user.
    public func token(_ user: String, project: String? = nil) async throws -> String {
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

    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        public var json: JSON? { try? JSON.parse(body) }
    }

    public func request(_ method: HTTPMethod, _ path: String, token: String?, body: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
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

public struct ControllerTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

