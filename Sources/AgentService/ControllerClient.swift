import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NeutronModel

/// bagpipe-controller's agent API: a Keystone v3 token, the host's view, its watch (newline-delimited
/// JSON events) and port status reports. A token that expired is replaced on the next call.
public final class ControllerClient: Sendable {
    public let baseURL: String
    let host: String
    let username: String
    let password: String
    let project: String?
    let http: HTTPClient
    let timeout: TimeAmount
    private let token = NIOLockedValueBox<String?>(nil)

    public init(configuration c: AgentConfiguration, http: HTTPClient) {
        baseURL = c.controllerURL
        host = c.host
        username = c.username
        password = c.password
        project = c.project
        self.http = http
        timeout = .milliseconds(Int64(c.requestTimeout * 1000))
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public var status: Int?
    }

    /// The watch asked for a version the controller no longer keeps: list again.
    public struct Gone: Error, CustomStringConvertible {
        public var description: String
    }

    var hostPath: String { "/v2.0/agent/hosts/\(host.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? host)" }

    /// The host's view document (`resource_version` and `objects`).
    public func view() async throws -> JSON {
        let (status, body) = try await call(.GET, hostPath + "/view", nil)
        guard status == 200 else { throw Failure(description: "GET \(hostPath)/view: HTTP \(status) \(body.prefix(300))", status: status) }
        return try JSON.parse(body)
    }

    /// Reports many ports at once, in one controller write; the ports it does not know.
    public func setPortStatuses(_ statuses: [String: Bool]) async throws -> [String] {
        let ports = JSONObject(statuses.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value ? "ACTIVE" : "DOWN")) })
        let (status, body) = try await call(.PUT, hostPath + "/port_status", JSON.object(JSONObject([("ports", .object(ports))])).serialized)
        guard status == 200 else { throw Failure(description: "PUT \(hostPath)/port_status: HTTP \(status) \(body.prefix(300))", status: status) }
        return (try? JSON.parse(body))?["unknown"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// The events after `version`, as they come; bookmarks included. Ends (throws) when the stream
    /// breaks; `Gone` when the version is no longer kept.
    public func watch(from version: Int64, heartbeat: Double) async throws -> AsyncThrowingStream<JSON, any Error> {
        var request = HTTPClientRequest(url: baseURL + hostPath + "/watch?resource_version=\(version)&heartbeat=\(heartbeat)")
        request.headers.add(name: "X-Auth-Token", value: try await currentToken())
        var response = try await http.execute(request, timeout: .hours(24 * 365))
        if response.status == .unauthorized {
            token.withLockedValue { $0 = nil }
            request.headers.replaceOrAdd(name: "X-Auth-Token", value: try await currentToken())
            response = try await http.execute(request, timeout: .hours(24 * 365))
        }
        if response.status == .gone { throw Gone(description: String(buffer: try await response.body.collect(upTo: 1 << 16))) }
        guard response.status == .ok else {
            throw Failure(description: "GET \(hostPath)/watch: HTTP \(response.status.code) \(String(buffer: try await response.body.collect(upTo: 1 << 16)).prefix(300))", status: Int(response.status.code))
        }
        let body = response.body
        return AsyncThrowingStream { continuation in
            let reader = Task {
                var pending: [UInt8] = []
                do {
                    for try await chunk in body {
                        pending += chunk.readableBytesView
                        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = pending[..<nl]
                            if !line.isEmpty { continuation.yield(try JSON.parse(line)) }
                            pending.removeSubrange(...nl)
                        }
                    }
                    continuation.finish(throwing: Failure(description: "the watch stream ended", status: nil))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }

    func call(_ method: HTTPMethod, _ path: String, _ body: String?) async throws -> (Int, String) {
        var (status, text) = try await send(method, path, body, token: try await currentToken())
        if status == 401 {
            token.withLockedValue { $0 = nil }
            (status, text) = try await send(method, path, body, token: try await currentToken())
        }
        return (status, text)
    }

    func send(_ method: HTTPMethod, _ path: String, _ body: String?, token: String) async throws -> (Int, String) {
        let r = try await jsonExchange(http, method, baseURL + path, headers: [("X-Auth-Token", token)], body: body, timeout: timeout, limit: 1 << 28)
        return (r.status, r.body)
    }

    func currentToken() async throws -> String {
        if let t = token.withLockedValue({ $0 }) { return t }
        let t = try await login()
        token.withLockedValue { $0 = t }
        return t
    }

    /// Keystone v3, the password method, in domain Default.
    func login() async throws -> String {
        var auth = JSONObject([
            ("identity", .object(JSONObject([
                ("methods", .strings(["password"])),
                ("password", .object(JSONObject([("user", .object(JSONObject([("name", .string(username)), ("domain", .object(JSONObject([("name", "Default")]))), ("password", .string(password))])))]))),
            ]))),
        ])
        if let project { auth["scope"] = .object(JSONObject([("project", .object(JSONObject([("name", .string(project)), ("domain", .object(JSONObject([("name", "Default")])))])))])) }
        let r = try await jsonExchange(
            http, .POST, baseURL + "/v3/auth/tokens", headers: [], body: JSON.object(JSONObject([("auth", .object(auth))])).serialized, timeout: timeout, limit: 1 << 20)
        guard r.status == 201, let t = r.headers.first(name: "X-Subject-Token") else {
            throw Failure(description: "login to \(baseURL) as \(username): HTTP \(r.status) \(r.body.prefix(300))", status: r.status)
        }
        return t
    }
}
