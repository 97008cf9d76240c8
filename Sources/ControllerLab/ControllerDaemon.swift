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
    /// The network namespace it runs in (nil: this one), and the address it listens on.
    public let namespace: String?
    public let address: String
    public var url: String { "http://\(address):\(port)" }

    /// The users of every test controller: admin, two members, and an agent account per compute
    /// node a lab may start (compute-1 … compute-16).
    public static let users = (["admin = secret, admin, admin", "demo = secret, demo, member", "alt = secret, alt, member"]
        + (1...16).map { "compute-\($0) = secret, service, agent" }).joined(separator: "\n")

    /// `database`: a connection URL; nil is a SQLite file in the daemon's folder. `directory`: reuse
    /// a previous daemon's folder (a restart on the same file).
    /// `namespace`: run inside that network namespace, listening on `address` there (a controller
    /// node on a test's underlay); the HTTP helpers then go through curl in the namespace.
    public init(database: String? = nil, directory: URL? = nil, port: Int? = nil, extra: String = "", namespace: String? = nil, address: String = "127.0.0.1") async throws {
        let port = try port ?? (namespace == nil ? freePort() : 9696)
        self.port = port
        self.namespace = namespace
        self.address = address
        let conf = """
            [DEFAULT]
            bind_host = \(address)
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
        let command = [builtProduct("bagpipe-controller"), "--config-file", "$DIR/controller.conf"]
        if let namespace {
            daemon = try Daemon(name: "controller", executable: "/usr/sbin/ip", arguments: ["netns", "exec", namespace] + command, files: ["controller.conf": conf], directory: directory)
        } else {
            daemon = try Daemon(name: "controller", executable: command[0], arguments: Array(command.dropFirst()), files: ["controller.conf": conf], directory: directory)
        }
        let up = try await eventually(timeout: 60) { (try? await self.send(.GET, "/", token: nil, body: nil, headers: []))?.status == 200 }
        guard up else {
            daemon.stop()
            throw ControllerTestError("bagpipe-controller did not answer within 60 s:\n\(daemon.log)")
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
        let r = try await send(.POST, "/v3/auth/tokens", token: nil, body: body, headers: [])
        guard r.status == 201, let t = r.headers["x-subject-token"] else { throw ControllerTestError("no token for \(user): \(r.status)") }
        return t
    }

    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        public var json: JSON? { try? JSON.parse(body) }
    }

    public func request(_ method: HTTPMethod, _ path: String, token: String?, body: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        let r = try await send(method, path, token: token, body: body, headers: headers)
        return Answer(status: r.status, body: r.body)
    }

    /// One HTTP exchange; the response's header names in lower case.
    func send(_ method: HTTPMethod, _ path: String, token: String?, body: String?, headers: [(String, String)]) async throws -> (status: Int, headers: [String: String], body: String) {
        var all = headers
        if let token { all.append(("X-Auth-Token", token)) }
        if body != nil { all.append(("Content-Type", "application/json")) }
        if let namespace { return try curl(namespace, method, path, body: body, headers: all) }
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        for (k, v) in all { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let r = try await Self.client.execute(request, timeout: .seconds(10))
        var answerHeaders: [String: String] = [:]
        for h in r.headers { answerHeaders[h.name.lowercased()] = h.value }
        return (Int(r.status.code), answerHeaders, String(buffer: try await r.body.collect(upTo: 1 << 26)))
    }

    func curl(_ namespace: String, _ method: HTTPMethod, _ path: String, body: String?, headers: [(String, String)]) throws -> (status: Int, headers: [String: String], body: String) {
        var arguments = ["netns", "exec", namespace, "curl", "-s", "-m", "10", "-D", "-", "-X", method.rawValue]
        for (k, v) in headers { arguments += ["-H", "\(k): \(v)"] }
        if let body { arguments += ["--data-binary", body] }
        let (status, output) = try runProcess("/usr/sbin/ip", arguments + [url + path])
        guard status == 0, let split = output.range(of: "\r\n\r\n") else { throw ControllerTestError("curl \(method) \(path) in \(namespace): exit \(status) \(output.prefix(300))") }
        let head = output[..<split.lowerBound].split(separator: "\r\n")
        var answerHeaders: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            answerHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let code = head.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        return (code, answerHeaders, String(output[split.upperBound...]))
    }
}

public struct ControllerTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

