import ControllerCore
import ControllerService
import Foundation
import Hummingbird
import NIOCore
import NeutronModel

/// The Neutron v2.0 and networking-bgpvpn API: one dispatcher for everything under `/v2.0`, so
/// that every path answers in Neutron's shapes (404 for an unknown id or collection, 405 for a
/// method a resource does not take).
struct NeutronAPI: Sendable {
    let controller: Controller
    let identity: Identity

    static let maximumBody = 1 << 20

    static let coreCollections: [String: ResourceKind] = ["networks": .network, "subnets": .subnet, "ports": .port, "routers": .router]
    static let associationCollections: [String: ResourceKind] = [
        "network_associations": .networkAssociation, "router_associations": .routerAssociation, "port_associations": .portAssociation,
    ]

    func handle(_ request: Request, path: [String]) async -> Response {
        do {
            let caller = try authenticate(request)
            return try await dispatch(request, path: path, caller: caller)
        } catch let e as NeutronError {
            return Responses.error(e)
        } catch {
            // Not the request's fault (the database, most likely): a 500 that says what failed.
            return Responses.json(
                .object(JSONObject([("NeutronError", .object(JSONObject([("type", "HTTPInternalServerError"), ("message", .string("Request failed: \(error)")), ("detail", "")])))])),
                status: .internalServerError)
        }
    }

    func authenticate(_ request: Request) throws -> Caller {
        guard let text = request.headers[KeystoneAPI.authToken], let token = identity.validate(text) else {
            throw NeutronError(.unauthorized, "HTTPUnauthorized", "The request you have made requires authentication.")
        }
        return token.caller
    }

    func dispatch(_ request: Request, path: [String], caller: Caller) async throws -> Response {
        let method = request.method
        let query = try ListQuery(request.uri.queryParameters.map { (String($0.key).removingPercentEncoding ?? String($0.key), String($0.value)) })
        switch path.count {
        case 0:
            guard method == .get else { throw Self.notAllowed(method, allowed: ["GET"]) }
            return Responses.json(.object(JSONObject([("resources", .array((Self.coreCollections.keys.sorted() + ["bgpvpn/bgpvpns"]).map { c in
                .object(JSONObject([("name", .string(c)), ("collection", .string(c)), ("links", .array([]))]))
            }))])))
        case _ where path[0] == "extensions":
            guard method == .get else { throw Self.notAllowed(method, allowed: ["GET"]) }
            if path.count == 1 { return Responses.json(.object(JSONObject([("extensions", .array(Responses.extensions.map(Responses.extensionJSON)))]))) }
            guard path.count == 2, let e = Responses.extensions.first(where: { $0.alias == path[1] }) else {
                throw NeutronError(.notFound, "HTTPNotFound", "Extension with alias \(path.count > 1 ? path[1] : "") does not exist")
            }
            return Responses.json(.object(JSONObject([("extension", Responses.extensionJSON(e))])))
        case _ where path[0] == "agent":
            return try await AgentAPI(controller: controller).handle(request, path: Array(path.dropFirst()), caller: caller)
        case _ where path[0] == "bgpvpn":
            guard path.count >= 2, path[1] == "bgpvpns" else { throw Self.noSuchResource(path) }
            let rest = Array(path.dropFirst(2))
            if rest.count <= 1 { return try await resource(.bgpvpn, id: rest.first, parent: nil, request, query, caller) }
            guard Identifiers.isUUID(rest[0]) else { throw NeutronError.notFound(.bgpvpn, rest[0]) }
            guard let kind = Self.associationCollections[rest[1]], rest.count <= 3 else { throw Self.noSuchResource(path) }
            return try await resource(kind, id: rest.count == 3 ? rest[2] : nil, parent: rest[0].lowercased(), request, query, caller)
        default:
            guard let kind = Self.coreCollections[path[0]] else { throw Self.noSuchResource(path) }
            if kind == .router, path.count == 3, ["add_router_interface", "remove_router_interface"].contains(path[2]) {
                guard method == .put else { throw Self.notAllowed(method, allowed: ["PUT"]) }
                guard Identifiers.isUUID(path[1]) else { throw NeutronError.notFound(.router, path[1]) }
                return try await routerInterface(path[1].lowercased(), add: path[2] == "add_router_interface", request, caller)
            }
            guard path.count <= 2 else { throw Self.noSuchResource(path) }
            return try await resource(kind, id: path.count == 2 ? path[1] : nil, parent: nil, request, query, caller)
        }
    }

    static func noSuchResource(_ path: [String]) -> NeutronError {
        NeutronError(.notFound, "HTTPNotFound", "The resource could not be found: /v2.0/\(path.joined(separator: "/"))")
    }

    static func notAllowed(_ method: HTTPRequest.Method, allowed: [String]) -> NeutronError {
        var e = NeutronError(.notAllowed, "HTTPMethodNotAllowed", "The method \(method.rawValue) is not allowed for this resource: \(allowed.joined(separator: ", ")).")
        e.allowedMethods = allowed
        return e
    }

    /// A collection (`id` nil) or one member, of a kind; `parent` is the BGPVPN of an association.
    func resource(_ kind: ResourceKind, id rawID: String?, parent: String?, _ request: Request, _ query: ListQuery, _ caller: Caller) async throws -> Response {
        let member = kind.rawValue
        guard let rawID else {
            switch request.method {
            case .get:
                // A non-owner's list of a BGPVPN's associations is empty, not a 404 (tempest checks it).
                let items = try await controller.read { state -> [JSONObject] in
                    try query.apply(state.visibleResources(kind, for: caller, bgpvpn: parent), filterable: Filterable.attributes(kind))
                }
                return Responses.json(.object(JSONObject([(kind.collection, .array(items.map(JSON.object)))])))
            case .post:
                let document = try await Self.body(request)
                let now = Identifiers.timestamp()
                let settings = await controller.settings
                let context = WriteContext(caller: caller, now: now, settings: settings)
                // Bulk: `{"<collection>": [...]}`, all in one transaction.
                if case .object(let outer) = document, let list = outer[kind.collection]?.arrayValue, outer.count == 1 {
                    let created = try await controller.write { state -> [JSONObject] in
                        try list.map { item in
                            var body = try RequestAttributes.unwrap(.object(JSONObject([(member, item)])), member: member)
                            let r = try Self.create(kind, parent: parent, &body, context, &state)
                            return state.render(r, for: caller)
                        }
                    }
                    return Responses.json(.object(JSONObject([(kind.collection, .array(created.map(JSON.object)))])), status: .created)
                }
                let created = try await controller.write { state -> JSONObject in
                    var body = try RequestAttributes.unwrap(document, member: member)
                    let r = try Self.create(kind, parent: parent, &body, context, &state)
                    return state.render(r, for: caller)
                }
                return Responses.member(member, created, status: .created)
            default: throw Self.notAllowed(request.method, allowed: ["GET", "POST"])
            }
        }
        // A path id that is not a UUID is an unknown resource (clients look names up this way first).
        guard Identifiers.isUUID(rawID) else { throw NeutronError.notFound(kind, rawID) }
        let id = rawID.lowercased()
        switch request.method {
        case .get:
            let o = try await controller.read { state -> JSONObject in
                let r = try Self.find(kind, id, parent: parent, state, caller)
                return state.render(r, for: caller)
            }
            return Responses.member(member, query.fields.isEmpty ? o : o.keeping(Set(query.fields)))
        case .put:
            let document = try await Self.body(request)
            let context = WriteContext(caller: caller, settings: await controller.settings)
            let updated = try await controller.write { state -> JSONObject in
                var body = try RequestAttributes.unwrap(document, member: member)
                let r = try Self.update(kind, id, parent: parent, &body, context, &state)
                return state.render(r, for: caller)
            }
            return Responses.member(member, updated)
        case .delete:
            let context = WriteContext(caller: caller, settings: await controller.settings)
            try await controller.write { state in try Self.delete(kind, id, parent: parent, context, &state) }
            return Responses.noContent()
        default: throw Self.notAllowed(request.method, allowed: ["GET", "PUT", "DELETE"])
        }
    }

    func routerInterface(_ id: String, add: Bool, _ request: Request, _ caller: Caller) async throws -> Response {
        let document = try await Self.body(request)
        let context = WriteContext(caller: caller, settings: await controller.settings)
        let info = try await controller.write { state -> RouterInterfaceInfo in
            guard case .object(let o) = document else { throw NeutronError.badRequest("The request body must be a JSON object") }
            var body = RequestAttributes(o, resource: "router_interface")
            return add ? try state.addRouterInterface(id, &body, context) : try state.removeRouterInterface(id, &body, context)
        }
        return Responses.json(.object(JSONObject([
            ("id", .string(info.routerID)), ("subnet_id", .string(info.subnetID)), ("subnet_ids", .strings(info.subnetID.isEmpty ? [] : [info.subnetID])),
            ("port_id", .string(info.portID)), ("network_id", .string(info.networkID)), ("tenant_id", .string(info.projectID)), ("project_id", .string(info.projectID)),
        ])))
    }

    static func body(_ request: Request) async throws -> JSON {
        var request = request
        let bytes: ByteBuffer
        do {
            bytes = try await request.collectBody(upTo: maximumBody)
        } catch {
            throw NeutronError(.tooLarge, "HTTPRequestEntityTooLarge", "Request is too large: the limit is \(maximumBody) bytes.")
        }
        guard bytes.readableBytes > 0 else { throw NeutronError.badRequest("Resource body required") }
        do {
            return try JSON.parse(bytes.readableBytesView)
        } catch {
            throw NeutronError.badRequest("Malformed request body: \(error)")
        }
    }

    // MARK: - Per kind

    static func create(_ kind: ResourceKind, parent: String?, _ body: inout RequestAttributes, _ c: WriteContext, _ s: inout ControllerState) throws -> AnyResource {
        switch kind {
        case .network: return .network(try s.createNetwork(&body, c))
        case .subnet: return .subnet(try s.createSubnet(&body, c))
        case .port: return .port(try s.createPort(&body, c))
        case .router: return .router(try s.createRouter(&body, c))
        case .bgpvpn: return .bgpvpn(try s.createBGPVPN(&body, c))
        case .networkAssociation: return .networkAssociation(try s.createNetworkAssociation(parent ?? "", &body, c))
        case .routerAssociation: return .routerAssociation(try s.createRouterAssociation(parent ?? "", &body, c))
        case .portAssociation: return .portAssociation(try s.createPortAssociation(parent ?? "", &body, c))
        }
    }

    static func update(_ kind: ResourceKind, _ id: String, parent: String?, _ body: inout RequestAttributes, _ c: WriteContext, _ s: inout ControllerState) throws -> AnyResource {
        switch kind {
        case .network: return .network(try s.updateNetwork(id, &body, c))
        case .subnet: return .subnet(try s.updateSubnet(id, &body, c))
        case .port: return .port(try s.updatePort(id, &body, c))
        case .router: return .router(try s.updateRouter(id, &body, c))
        case .bgpvpn: return .bgpvpn(try s.updateBGPVPN(id, &body, c))
        case .networkAssociation:
            // As the reference: accepted, changes nothing.
            let a = try s.association(s.networkAssociations[id], kind, parent ?? "", id, c.caller)
            _ = try body.string("name")
            try body.finish()
            return .networkAssociation(a)
        case .routerAssociation: return .routerAssociation(try s.updateRouterAssociation(parent ?? "", id, &body, c))
        case .portAssociation: return .portAssociation(try s.updatePortAssociation(parent ?? "", id, &body, c))
        }
    }

    static func delete(_ kind: ResourceKind, _ id: String, parent: String?, _ c: WriteContext, _ s: inout ControllerState) throws {
        switch kind {
        case .network: try s.deleteNetwork(id, c)
        case .subnet: try s.deleteSubnet(id, c)
        case .port: try s.deletePort(id, c)
        case .router: try s.deleteRouter(id, c)
        case .bgpvpn: try s.deleteBGPVPN(id, c)
        case .networkAssociation, .routerAssociation, .portAssociation: try s.deleteAssociation(kind, parent ?? "", id, c)
        }
    }

    static func find(_ kind: ResourceKind, _ id: String, parent: String?, _ s: ControllerState, _ caller: Caller) throws -> AnyResource {
        switch kind {
        case .network: return .network(try s.network(id, for: caller))
        case .subnet: return .subnet(try s.subnet(id, for: caller))
        case .port: return .port(try s.port(id, for: caller))
        case .router: return .router(try s.router(id, for: caller))
        case .bgpvpn: return .bgpvpn(try s.bgpvpn(id, for: caller))
        case .networkAssociation: return .networkAssociation(try s.association(s.networkAssociations[id], kind, parent ?? "", id, caller))
        case .routerAssociation: return .routerAssociation(try s.association(s.routerAssociations[id], kind, parent ?? "", id, caller))
        case .portAssociation: return .portAssociation(try s.association(s.portAssociations[id], kind, parent ?? "", id, caller))
        }
    }
}

/// The attributes each collection can be filtered and sorted on (Neutron validates list filters).
enum Filterable {
    static let standard: Set<String> = ["id", "name", "tenant_id", "project_id", "description", "created_at", "updated_at", "revision_number", "tags"]

    static func attributes(_ kind: ResourceKind) -> Set<String> {
        switch kind {
        case .network:
            standard.union([
                "admin_state_up", "status", "shared", "router:external", "provider:network_type", "provider:physical_network", "provider:segmentation_id", "mtu",
                "port_security_enabled", "subnets", "is_default",
            ])
        case .subnet:
            standard.union(["network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "segment_id"])
        case .port:
            standard.union([
                "network_id", "mac_address", "fixed_ips", "device_id", "device_owner", "admin_state_up", "status", "binding:host_id", "binding:vif_type",
                "binding:vnic_type", "port_security_enabled", "security_groups",
            ])
        case .router: standard.union(["admin_state_up", "status", "distributed", "ha", "flavor_id"])
        case .bgpvpn: standard.union(["type", "route_targets", "import_targets", "export_targets", "route_distinguishers", "networks", "routers", "ports", "local_pref", "vni"])
        case .networkAssociation: ["id", "tenant_id", "project_id", "bgpvpn_id", "network_id"]
        case .routerAssociation: ["id", "tenant_id", "project_id", "bgpvpn_id", "router_id", "advertise_extra_routes"]
        case .portAssociation: ["id", "tenant_id", "project_id", "bgpvpn_id", "port_id", "advertise_fixed_ips"]
        }
    }
}
