import ControllerCore
import ControllerService
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NeutronModel

/// The part of Keystone v3 that clients need to reach the network endpoint (reference §9): the
/// version document, `POST /v3/auth/tokens` with the password method, token validation, and the
/// project lookup the `openstack` CLI does for `--project`.
struct KeystoneAPI: Sendable {
    let identity: Identity
    /// The URL clients reach this server at (the catalog's network endpoint).
    let publicURL: String
    let region: String

    static let subjectToken = HTTPField.Name("X-Subject-Token") ?? .authorization
    static let authToken = HTTPField.Name("X-Auth-Token") ?? .authorization

    func versionDocument() -> Response {
        Responses.json(.object(JSONObject([("version", version)])))
    }

    var version: JSON {
        .object(JSONObject([
            ("id", "v3.14"), ("status", "stable"), ("updated", "2020-04-07T00:00:00Z"),
            ("links", .array([.object(JSONObject([("rel", "self"), ("href", .string(publicURL + "/v3/"))]))])),
            ("media-types", .array([.object(JSONObject([("base", "application/json"), ("type", "application/vnd.openstack.identity-v3+json")]))])),
        ]))
    }

    static func error(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> Response {
        Responses.json(
            .object(JSONObject([("error", .object(JSONObject([("code", .int(Int64(status.code))), ("title", .string(title)), ("message", .string(message))])))])),
            status: status)
    }

    func issue(_ request: Request) async -> Response {
        let document: JSON
        do {
            document = try await NeutronAPI.body(request)
        } catch {
            return Self.error(.badRequest, "Bad Request", "the body is not JSON")
        }
        guard let auth = document["auth"], let methods = auth["identity"]?["methods"]?.arrayValue, methods.contains(.string("password")),
            let user = auth["identity"]?["password"]?["user"], let password = user["password"]?.stringValue
        else { return Self.error(.badRequest, "Bad Request", "Expected auth.identity.password.user with a name (or id) and a password") }
        if let domain = user["domain"], let d = domain["name"]?.stringValue ?? domain["id"]?.stringValue, d != Identity.domainName, d != Identity.domainID {
            return Self.error(.unauthorized, "Unauthorized", "The request you have made requires authentication.")
        }
        let scope = auth["scope"]?["project"]
        let project = scope?["name"]?.stringValue ?? scope?["id"]?.stringValue
        let token: Identity.Token
        do {
            token = try identity.authenticate(user: user["name"]?.stringValue, userID: user["id"]?.stringValue, password: password, project: project)
        } catch Identity.Failure.badScope(let p) {
            return Self.error(.unauthorized, "Unauthorized", "User has no access to project \(p)")
        } catch {
            return Self.error(.unauthorized, "Unauthorized", "The request you have made requires authentication.")
        }
        var response = Responses.json(tokenBody(token), status: .created)
        response.headers[Self.subjectToken] = token.text
        return response
    }

    func validate(_ request: Request) -> Response {
        guard let caller = request.headers[Self.authToken].flatMap({ identity.validate($0) }) else {
            return Self.error(.unauthorized, "Unauthorized", "The request you have made requires authentication.")
        }
        guard let subject = request.headers[Self.subjectToken].flatMap({ identity.validate($0) }) else {
            return Self.error(.notFound, "Not Found", "Could not find token")
        }
        guard caller.user.roles.contains("admin") || caller.user.name == subject.user.name else {
            return Self.error(.forbidden, "Forbidden", "You are not authorized to perform the requested action")
        }
        var response = Responses.json(tokenBody(subject))
        response.headers[Self.subjectToken] = subject.text
        return response
    }

    /// `GET /v3/projects[?name=]` and `/v3/projects/<id>`: the projects of the configured users.
    func projects(_ request: Request, id: String?) -> Response {
        guard let caller = request.headers[Self.authToken].flatMap({ identity.validate($0) }) else {
            return Self.error(.unauthorized, "Unauthorized", "The request you have made requires authentication.")
        }
        var names = Set(identity.users.values.map(\.project))
        if !caller.user.roles.contains("admin") { names = [caller.user.project] }
        let all = names.sorted().map { project(named: $0) }
        if let id {
            guard let p = all.first(where: { $0["id"]?.stringValue == id || $0["name"]?.stringValue == id }) else { return Self.error(.notFound, "Not Found", "Could not find project: \(id)") }
            return Responses.json(.object(JSONObject([("project", p)])))
        }
        let wanted = request.uri.queryParameters["name"].map(String.init)
        return Responses.json(.object(JSONObject([("projects", .array(all.filter { wanted == nil || $0["name"]?.stringValue == wanted }))])))
    }

    func project(named name: String) -> JSON {
        let id = Identity.User(name: "", password: "", project: name, roles: []).projectID
        return .object(JSONObject([
            ("id", .string(id)), ("name", .string(name)), ("domain_id", .string(Identity.domainID)), ("enabled", true), ("is_domain", false), ("parent_id", .string(Identity.domainID)),
            ("description", ""), ("links", .object(JSONObject([("self", .string(publicURL + "/v3/projects/" + id))]))),
        ]))
    }

    func tokenBody(_ t: Identity.Token) -> JSON {
        let domain = JSON.object(JSONObject([("id", .string(Identity.domainID)), ("name", .string(Identity.domainName))]))
        func endpoint(_ kind: String, _ url: String, _ interface: String) -> JSON {
            .object(JSONObject([
                ("id", .string(Identity.User(name: kind, password: "", project: interface, roles: []).id)), ("interface", .string(interface)), ("region", .string(region)),
                ("region_id", .string(region)), ("url", .string(url)),
            ]))
        }
        let catalog: [JSON] = [
            .object(JSONObject([
                ("id", "network"), ("type", "network"), ("name", "neutron"),
                ("endpoints", .array(["public", "internal", "admin"].map { endpoint("network", publicURL, $0) })),
            ])),
            .object(JSONObject([
                ("id", "identity"), ("type", "identity"), ("name", "keystone"),
                ("endpoints", .array(["public", "internal", "admin"].map { endpoint("identity", publicURL + "/v3", $0) })),
            ])),
        ]
        return .object(JSONObject([
            ("token", .object(JSONObject([
                ("methods", .strings(["password"])), ("expires_at", .string(Self.keystoneTime(t.expiresAt))), ("issued_at", .string(Self.keystoneTime(t.issuedAt))),
                ("audit_ids", .strings([String(t.text.suffix(22))])),
                ("user", .object(JSONObject([("id", .string(t.user.id)), ("name", .string(t.user.name)), ("domain", domain), ("password_expires_at", .null)]))),
                ("project", .object(JSONObject([("id", .string(t.user.projectID)), ("name", .string(t.user.project)), ("domain", domain)]))),
                ("roles", .array(t.user.roles.map { .object(JSONObject([("id", .string(Identity.User(name: $0, password: "", project: "", roles: []).id)), ("name", .string($0))])) })),
                ("is_domain", false), ("catalog", .array(catalog)),
            ])))
        ]))
    }

    /// Keystone's form: `2026-12-04T10:00:00.000000Z`.
    static func keystoneTime(_ d: Date) -> String {
        let base = Identifiers.timestamp(d)
        return String(base.dropLast()) + ".000000Z"
    }
}
