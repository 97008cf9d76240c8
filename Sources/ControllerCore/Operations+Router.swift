import NeutronModel

/// The answer of `add_router_interface` / `remove_router_interface` (unwrapped, as Neutron's).
public struct RouterInterfaceInfo: Sendable, Equatable {
    public var routerID: String
    public var subnetID: String
    public var portID: String
    public var networkID: String
    public var projectID: String
}

extension ControllerState {
    public mutating func createRouter(_ body: inout RequestAttributes, _ c: WriteContext) throws -> Router {
        try body.forbid(["id", "status", "created_at", "updated_at", "revision_number"])
        let project = try c.caller.project(for: body.project())
        var standard = StandardAttributes(at: c.now)
        try readStandard(&body, into: &standard)
        let adminUp = try body.bool("admin_state_up") ?? true
        if let gw = body.raw("external_gateway_info"), !gw.isNull, gw != .object(JSONObject()) {
            throw NeutronError.badRequest("External gateways are not supported by this controller")
        }
        for key in ["distributed", "ha", "availability_zone_hints", "flavor_id", "enable_ndp_proxy"] { _ = body.raw(key) }
        try body.finish()
        var router = Router(id: Identifiers.newUUID(), projectID: project, standard: standard, adminStateUp: adminUp)
        router.routeTarget = try allocateRouterRouteTarget(c.settings)
        put(router)
        return router
    }

    public mutating func updateRouter(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> Router {
        var r = try router(id, for: c.caller)
        guard c.caller.owns(r.projectID) else { throw NeutronError.policy("update_router") }
        try body.forbid(["id", "tenant_id", "project_id", "status"], reason: "PUT")
        try readStandard(&body, into: &r.standard)
        if let v = try body.bool("admin_state_up") { r.adminStateUp = v }
        if let raw = body.raw("routes") { r.routes = try Self.hostRoutes(raw, version: 4) }
        if let gw = body.raw("external_gateway_info"), !gw.isNull, gw != .object(JSONObject()) {
            throw NeutronError.badRequest("External gateways are not supported by this controller")
        }
        try body.finish()
        // A router from before distributed routing was on gets its route target now.
        if r.routeTarget == nil { r.routeTarget = try allocateRouterRouteTarget(c.settings) }
        bump(&r.standard, c)
        put(r)
        return r
    }

    public mutating func deleteRouter(_ id: String, _ c: WriteContext) throws {
        let r = try router(id, for: c.caller)
        guard c.caller.owns(r.projectID) else { throw NeutronError.policy("delete_router") }
        guard (interfacesByRouter[id] ?? []).isEmpty else {
            throw NeutronError.conflict("RouterInUse", "Router \(id) still has ports")
        }
        for a in routerAssociationsByRouter[id] ?? [] { remove(ResourceKey(.routerAssociation, a)) }
        remove(ResourceKey(.router, id))
    }

    /// `{"subnet_id"}`: a new port holding the subnet's gateway IP; `{"port_id"}`: that port becomes
    /// the interface.
    public mutating func addRouterInterface(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> RouterInterfaceInfo {
        let router = try router(id, for: c.caller)
        guard c.caller.owns(router.projectID) else { throw NeutronError.policy("add_router_interface") }
        let subnetID = try body.uuid("subnet_id")
        let portID = try body.uuid("port_id")
        try body.finish()
        var port: Port
        switch (subnetID, portID) {
        case (let sid?, nil):
            let subnet = try subnet(sid, for: c.caller)
            guard let gateway = subnet.gatewayIP else { throw NeutronError.badRequest("Bad router request: Subnet \(sid) does not have a gateway IP.") }
            if routerInterfaces(on: subnet.networkID).contains(where: { $0.deviceID == id && $0.fixedIPs.contains { $0.subnetID == sid } }) {
                throw NeutronError.badRequest("Bad router request: Router already has a port on subnet \(sid).")
            }
            try checkBGPVPNConflict(router: id, network: subnet.networkID)
            if ports(of: subnet.networkID).contains(where: { $0.fixedIPs.contains { $0.ipAddress == gateway } }) {
                throw NeutronError.conflict("IpAddressInUse", "Unable to complete operation for network \(subnet.networkID). The IP address \(gateway) is in use.")
            }
            port = Port(
                id: Identifiers.newUUID(), projectID: router.projectID, standard: StandardAttributes(at: c.now), networkID: subnet.networkID,
                macAddress: allocateMAC(on: subnet.networkID, base: c.settings.baseMAC), fixedIPs: [FixedIP(subnetID: sid, ipAddress: gateway)], deviceID: id,
                deviceOwner: Port.routerInterfaceOwner, status: "ACTIVE")
        case (nil, let pid?):
            port = try self.port(pid, for: c.caller)
            guard port.deviceOwner.isEmpty || port.deviceID.isEmpty else { throw NeutronError.conflict("PortInUse", "Port \(pid) is in use by \(port.deviceOwner) \(port.deviceID).") }
            guard !port.fixedIPs.isEmpty else { throw NeutronError.badRequest("Bad router request: Router port must have at least one fixed IP.") }
            try checkBGPVPNConflict(router: id, network: port.networkID)
            port.deviceID = id
            port.deviceOwner = Port.routerInterfaceOwner
            port.status = "ACTIVE"
            bump(&port.standard, c)
        default:
            throw NeutronError.badRequest("Bad router request: Either subnet_id or port_id must be specified.")
        }
        put(port)
        return RouterInterfaceInfo(routerID: id, subnetID: port.fixedIPs.first?.subnetID ?? "", portID: port.id, networkID: port.networkID, projectID: router.projectID)
    }

    public mutating func removeRouterInterface(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> RouterInterfaceInfo {
        let router = try router(id, for: c.caller)
        guard c.caller.owns(router.projectID) else { throw NeutronError.policy("remove_router_interface") }
        let subnetID = try body.uuid("subnet_id")
        let portID = try body.uuid("port_id")
        try body.finish()
        let interfaces = (interfacesByRouter[id] ?? []).compactMap { ports[$0] }
        let port: Port
        if let portID {
            guard let p = interfaces.first(where: { $0.id == portID }) else {
                throw NeutronError(.notFound, "RouterInterfaceNotFound", "Router \(id) does not have an interface with id \(portID)")
            }
            port = p
        } else if let subnetID {
            guard let p = interfaces.first(where: { $0.fixedIPs.contains { $0.subnetID == subnetID } }) else {
                throw NeutronError(.notFound, "RouterInterfaceNotFoundForSubnet", "Router \(id) has no interface on subnet \(subnetID)")
            }
            port = p
        } else {
            throw NeutronError.badRequest("Bad router request: Either subnet_id or port_id must be specified.")
        }
        deletePortCascading(port.id)
        return RouterInterfaceInfo(routerID: id, subnetID: port.fixedIPs.first?.subnetID ?? "", portID: port.id, networkID: port.networkID, projectID: router.projectID)
    }

    /// §3.7: a subnet must not be reachable both through a network association to an L3 BGPVPN and
    /// a router association; adding such an interface is a conflict (Neutron's l3 code answers 409).
    func checkBGPVPNConflict(router: String, network: String) throws {
        let routerAssociated = !(routerAssociationsByRouter[router] ?? []).isEmpty
        let networkL3Associated = (networkAssociationsByNetwork[network] ?? []).contains { a in
            networkAssociations[a].flatMap { bgpvpns[$0.bgpvpnID] }?.type == .l3
        }
        if routerAssociated && networkL3Associated {
            throw NeutronError.conflict(
                "RouterInterfaceAttachmentConflict",
                "Error BGPVPN: the router \(router) is associated with a BGPVPN and the network \(network) with an L3 BGPVPN: its subnet would be reachable through both")
        }
    }
}
