import ControllerCore
import NeutronModel

/// The OpenAPI 3.0 description of the API (`GET /openapi.json`), built from the same attribute
/// lists the API reads and writes, so that it cannot drift from them. Clients and schemathesis
/// read it; every operation documents its error answers (a NeutronError body).
enum OpenAPI {
    enum Kind { case string, boolean, integer, stringList, object, objectList, uuid, nullableString, nullableInteger }

    /// Writable attributes per resource (request bodies) and their types.
    static let writable: [ResourceKind: [(String, Kind)]] = [
        .network: [("name", .string), ("description", .string), ("admin_state_up", .boolean), ("shared", .boolean), ("router:external", .boolean), ("mtu", .integer),
                   ("port_security_enabled", .boolean), ("provider:network_type", .string), ("provider:segmentation_id", .integer), ("project_id", .string), ("tenant_id", .string)],
        .subnet: [("name", .string), ("description", .string), ("network_id", .uuid), ("cidr", .string), ("ip_version", .integer), ("gateway_ip", .nullableString),
                  ("allocation_pools", .objectList), ("enable_dhcp", .boolean), ("dns_nameservers", .stringList), ("host_routes", .objectList), ("project_id", .string)],
        .port: [("name", .string), ("description", .string), ("network_id", .uuid), ("mac_address", .string), ("fixed_ips", .objectList), ("device_id", .string),
                ("device_owner", .string), ("admin_state_up", .boolean), ("binding:host_id", .string), ("port_security_enabled", .boolean), ("project_id", .string)],
        .router: [("name", .string), ("description", .string), ("admin_state_up", .boolean), ("project_id", .string)],
        .bgpvpn: [("name", .string), ("type", .string), ("route_targets", .stringList), ("import_targets", .stringList), ("export_targets", .stringList),
                  ("route_distinguishers", .stringList), ("local_pref", .nullableInteger), ("vni", .nullableInteger), ("project_id", .string)],
        .networkAssociation: [("network_id", .uuid), ("project_id", .string)],
        .routerAssociation: [("router_id", .uuid), ("advertise_extra_routes", .boolean), ("project_id", .string)],
        .portAssociation: [("port_id", .uuid), ("routes", .objectList), ("advertise_fixed_ips", .boolean), ("project_id", .string)],
    ]

    static func schema(_ k: Kind) -> JSON {
        switch k {
        case .string: .object(JSONObject([("type", "string")]))
        case .uuid: .object(JSONObject([("type", "string"), ("format", "uuid")]))
        case .boolean: .object(JSONObject([("type", "boolean")]))
        case .integer: .object(JSONObject([("type", "integer")]))
        case .nullableString: .object(JSONObject([("type", "string"), ("nullable", true)]))
        case .nullableInteger: .object(JSONObject([("type", "integer"), ("nullable", true)]))
        case .stringList: .object(JSONObject([("type", "array"), ("items", .object(JSONObject([("type", "string")])))]))
        case .object: .object(JSONObject([("type", "object")]))
        case .objectList: .object(JSONObject([("type", "array"), ("items", .object(JSONObject([("type", "object")])))]))
        }
    }

    static func ref(_ name: String) -> JSON { .object(JSONObject([("$ref", .string("#/components/schemas/\(name)"))])) }

    static func content(_ schema: JSON) -> JSON { .object(JSONObject([("application/json", .object(JSONObject([("schema", schema)])))])) }

    static func wrapped(_ member: String, _ inner: JSON) -> JSON {
        .object(JSONObject([("type", "object"), ("required", .strings([member])), ("properties", .object(JSONObject([(member, inner)])))]))
    }

    static let errorCodes = ["400", "401", "403", "404", "405", "409", "410", "413"]

    static func responses(_ success: String, _ schema: JSON?) -> JSON {
        var r = JSONObject()
        r[success] = .object(JSONObject([("description", "success")] + (schema.map { [("content", content($0))] } ?? [])))
        for code in errorCodes { r[code] = .object(JSONObject([("description", "a NeutronError"), ("content", content(ref("NeutronError")))])) }
        return .object(r)
    }

    static func parameter(_ name: String) -> JSON {
        .object(JSONObject([("name", .string(name)), ("in", "path"), ("required", true), ("schema", .object(JSONObject([("type", "string")])))]))
    }

    static func operation(_ id: String, parameters: [String], body: JSON?, success: String, response: JSON?) -> JSON {
        var o = JSONObject([("operationId", .string(id)), ("security", .array([.object(JSONObject([("token", .array([]))]))]))])
        if !parameters.isEmpty { o["parameters"] = .array(parameters.map(parameter)) }
        if let body { o["requestBody"] = .object(JSONObject([("required", true), ("content", content(body))])) }
        o["responses"] = responses(success, response)
        return .object(o)
    }

    static var document: JSON {
        var paths = JSONObject()
        var schemas = JSONObject([
            ("NeutronError", .object(JSONObject([
                ("type", "object"), ("required", .strings(["NeutronError"])),
                ("properties", .object(JSONObject([("NeutronError", .object(JSONObject([
                    ("type", "object"), ("required", .strings(["type", "message", "detail"])),
                    ("properties", .object(JSONObject([("type", schema(.string)), ("message", schema(.string)), ("detail", schema(.string))]))),
                ])))]))),
            ]))),
        ])
        let collections: [(ResourceKind, String, [String])] = [
            (.network, "/v2.0/networks", []), (.subnet, "/v2.0/subnets", []), (.port, "/v2.0/ports", []), (.router, "/v2.0/routers", []),
            (.bgpvpn, "/v2.0/bgpvpn/bgpvpns", []),
            (.networkAssociation, "/v2.0/bgpvpn/bgpvpns/{bgpvpn_id}/network_associations", ["bgpvpn_id"]),
            (.routerAssociation, "/v2.0/bgpvpn/bgpvpns/{bgpvpn_id}/router_associations", ["bgpvpn_id"]),
            (.portAssociation, "/v2.0/bgpvpn/bgpvpns/{bgpvpn_id}/port_associations", ["bgpvpn_id"]),
        ]
        for (kind, path, parents) in collections {
            let member = kind.rawValue, name = kind.rawValue
            let attributes = writable[kind] ?? []
            schemas[name] = .object(JSONObject([("type", "object"), ("required", .strings(["id"])), ("properties", .object(JSONObject([("id", schema(.string))])))]))
            schemas["\(name)_write"] = .object(JSONObject([("type", "object"), ("properties", .object(JSONObject(attributes.map { ($0.0, schema($0.1)) })))]))
            let one = wrapped(member, ref(name)), list = wrapped(kind.collection, .object(JSONObject([("type", "array"), ("items", ref(name))])))
            paths[path] = .object(JSONObject([
                ("get", operation("list_\(kind.collection)", parameters: parents, body: nil, success: "200", response: list)),
                ("post", operation("create_\(member)", parameters: parents, body: wrapped(member, ref("\(name)_write")), success: "201", response: one)),
            ]))
            let item = path + "/{id}"
            paths[item] = .object(JSONObject([
                ("get", operation("show_\(member)", parameters: parents + ["id"], body: nil, success: "200", response: one)),
                ("put", operation("update_\(member)", parameters: parents + ["id"], body: wrapped(member, ref("\(name)_write")), success: "200", response: one)),
                ("delete", operation("delete_\(member)", parameters: parents + ["id"], body: nil, success: "204", response: nil)),
            ]))
        }
        let interface = JSON.object(JSONObject([("type", "object"), ("properties", .object(JSONObject([("subnet_id", schema(.uuid)), ("port_id", schema(.uuid))])))]))
        for action in ["add_router_interface", "remove_router_interface"] {
            paths["/v2.0/routers/{id}/\(action)"] = .object(JSONObject([
                ("put", operation(action, parameters: ["id"], body: interface, success: "200", response: .object(JSONObject([("type", "object")])))),
            ]))
        }
        paths["/v2.0/extensions"] = .object(JSONObject([("get", operation("list_extensions", parameters: [], body: nil, success: "200", response: wrapped("extensions", schema(.objectList))))]))
        let statuses = JSON.object(JSONObject([
            ("type", "object"), ("required", .strings(["ports"])), ("additionalProperties", false),
            ("properties", .object(JSONObject([("ports", .object(JSONObject([("type", "object"), ("additionalProperties", .object(JSONObject([("type", "string"), ("enum", .strings(["ACTIVE", "DOWN"]))])))])))]))),
        ]))
        paths["/v2.0/agent/hosts/{host}/port_status"] = .object(JSONObject([("put", operation("host_port_status", parameters: ["host"], body: statuses, success: "200", response: .object(JSONObject([("type", "object")]))))]))
        paths["/v2.0/agent/hosts/{host}/view"] = .object(JSONObject([("get", operation("host_view", parameters: ["host"], body: nil, success: "200", response: .object(JSONObject([("type", "object")]))))]))
        return .object(JSONObject([
            ("openapi", "3.0.3"),
            ("info", .object(JSONObject([("title", "bagpipe-controller: Neutron and networking-bgpvpn API"), ("version", "2.0")]))),
            ("paths", .object(paths)),
            ("components", .object(JSONObject([
                ("schemas", .object(schemas)),
                ("securitySchemes", .object(JSONObject([("token", .object(JSONObject([("type", "apiKey"), ("in", "header"), ("name", "X-Auth-Token")])))]))),
            ]))),
        ]))
    }
}
