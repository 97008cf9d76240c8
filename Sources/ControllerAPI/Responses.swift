import ControllerCore
import Hummingbird
import NIOCore
import NeutronModel

/// Neutron's response conventions: JSON bodies, errors as `{"NeutronError": {type, message, detail}}`.
enum Responses {
    static func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.serialized)))
    }

    static func member(_ name: String, _ o: JSONObject, status: HTTPResponse.Status = .ok) -> Response {
        json(.object(JSONObject([(name, .object(o))])), status: status)
    }

    static func noContent() -> Response { Response(status: .noContent) }

    static func status(_ kind: NeutronError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .badRequest: .badRequest
        case .notAuthorized, .forbidden: .forbidden
        case .unauthorized: .unauthorized
        case .notFound: .notFound
        case .conflict: .conflict
        case .gone: .gone
        case .tooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .notAllowed: .methodNotAllowed
        }
    }

    static func error(_ e: NeutronError) -> Response {
        var r = json(
            .object(JSONObject([("NeutronError", .object(JSONObject([("type", .string(e.type)), ("message", .string(e.message)), ("detail", .string(e.detail))])))])),
            status: status(e.kind))
        if !e.allowedMethods.isEmpty { r.headers[.allow] = e.allowedMethods.joined(separator: ", ") }
        return r
    }

    /// `GET /`: the versions document openstacksdk's discovery reads.
    static func versions(base: String) -> JSON {
        .object(JSONObject([
            ("versions", .array([.object(JSONObject([
                ("id", "v2.0"), ("status", "CURRENT"), ("links", .array([.object(JSONObject([("href", .string(base + "/v2.0/")), ("rel", "self")]))])),
            ]))]))
        ]))
    }

    /// The API extensions this controller implements (`GET /v2.0/extensions`).
    static let extensions: [(alias: String, name: String, description: String)] = [
        ("bgpvpn", "BGPVPN Extension", "Provides support for BGP VPN interconnections"),
        ("bgpvpn-routes-control", "BGPVPN Routes Control Extension", "Provides support for controlling routes advertised to a BGPVPN"),
        ("bgpvpn-vni", "BGPVPN VNI Extension", "Provides support for the VNI of a BGPVPN"),
        ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks"),
        ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
        ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
        ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
        ("network-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
        ("port-security", "Port Security", "Provides port security"),
        ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
        ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
        ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
        ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
        ("filter-validation", "Filter parameters validation", "Provides validation on filtering parameters."),
        ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
        ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
        ("fields", "Fields filter", "Extension that indicates that the fields filter is supported."),
    ]

    static func extensionJSON(_ e: (alias: String, name: String, description: String)) -> JSON {
        .object(JSONObject([("alias", .string(e.alias)), ("name", .string(e.name)), ("description", .string(e.description)), ("updated", "2026-12-01T00:00:00-00:00"), ("links", .array([]))]))
    }
}
