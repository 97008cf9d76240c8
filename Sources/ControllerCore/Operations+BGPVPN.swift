import NeutronModel

/// networking-bgpvpn's plugin and DB rules (reference §3.3-§3.8) with the bagpipe driver's checks.
extension ControllerState {
    public func bgpvpn(_ id: String, for caller: Caller) throws -> BGPVPN { try visible(bgpvpns[id], .bgpvpn, id, caller) }

    static let targetFields = ["route_targets", "import_targets", "export_targets", "route_distinguishers"]

    public mutating func createBGPVPN(_ body: inout RequestAttributes, _ c: WriteContext) throws -> BGPVPN {
        guard c.caller.isAdmin else { throw NeutronError.policy("create_bgpvpn") }
        try body.forbid(["id", "networks", "routers", "ports", "created_at", "updated_at", "revision_number"])
        let project = try c.caller.project(for: body.project())
        var standard = StandardAttributes(at: c.now)
        try readStandard(&body, into: &standard)
        var b = BGPVPN(id: Identifiers.newUUID(), projectID: project, standard: standard)
        if let t = try body.choice("type", ["l2", "l3"]) { b.type = BGPVPNType(rawValue: t) ?? .l3 }
        try readTargets(&body, into: &b)
        try checkRouterRouteTargets(b, c.settings)
        if let v = try body.integer("local_pref", in: 0...4_294_967_295, allowNull: true) { b.localPref = v }
        if let v = try body.integer("vni", in: 1...16_777_215, allowNull: true) { b.vni = v.map(Int.init) }
        try body.finish()
        put(b)
        return b
    }

    public mutating func updateBGPVPN(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> BGPVPN {
        var b = try bgpvpn(id, for: c.caller)
        guard c.caller.owns(b.projectID) else { throw NeutronError.policy("update_bgpvpn") }
        try body.forbid(["id", "type", "vni", "networks", "routers", "ports", "tenant_id", "project_id"], reason: "PUT")
        if !c.caller.isAdmin, let field = Self.targetFields.first(where: body.has) { throw NeutronError.policy("update_bgpvpn:\(field)") }
        try readStandard(&body, into: &b.standard)
        try readTargets(&body, into: &b)
        try checkRouterRouteTargets(b, c.settings)
        if let v = try body.integer("local_pref", in: 0...4_294_967_295, allowNull: true) { b.localPref = v }
        try body.finish()
        bump(&b.standard, c)
        put(b)
        return b
    }

    public mutating func deleteBGPVPN(_ id: String, _ c: WriteContext) throws {
        _ = try bgpvpn(id, for: c.caller)
        guard c.caller.isAdmin else { throw NeutronError.policy("delete_bgpvpn") }
        for a in networkAssociationsByBGPVPN[id] ?? [] { remove(ResourceKey(.networkAssociation, a)) }
        for a in routerAssociationsByBGPVPN[id] ?? [] { remove(ResourceKey(.routerAssociation, a)) }
        for a in portAssociationsByBGPVPN[id] ?? [] { remove(ResourceKey(.portAssociation, a)) }
        // Routes of other port associations that leak this BGPVPN go with it.
        for var a in portAssociations.values where a.routes.contains(where: { $0.bgpvpnID == id }) {
            a.routes.removeAll { $0.bgpvpnID == id }
            put(a)
        }
        remove(ResourceKey(.bgpvpn, id))
    }

    mutating func readTargets(_ body: inout RequestAttributes, into b: inout BGPVPN) throws {
        let check = RouteTargetSyntax.isValid
        if let v = try body.stringList("route_targets", each: check, what: "route target") { b.routeTargets = v }
        if let v = try body.stringList("import_targets", each: check, what: "route target") { b.importTargets = v }
        if let v = try body.stringList("export_targets", each: check, what: "route target") { b.exportTargets = v }
        if let v = try body.stringList("route_distinguishers", each: check, what: "route distinguisher") {
            guard v.isEmpty else { throw NeutronError.badRequest("BaGPipe driver does not support specifying route distinguishers", type: "BGPVPNRDNotSupported") }
            b.routeDistinguishers = v
        }
        for (name, list) in b.targetLists where list.joined(separator: ",").utf8.count > 255 {
            throw NeutronError.invalidInput(name, "the list is longer than 255 characters once joined")
        }
    }

    // MARK: - Associations

    /// The association's project: the caller's (or the admin's choice); it must be the BGPVPN's.
    func associationProject(_ body: inout RequestAttributes, _ bgpvpn: BGPVPN, _ c: WriteContext) throws -> String {
        let project = try c.caller.project(for: body.project())
        guard c.caller.owns(bgpvpn.projectID) else { throw NeutronError.policy("create_bgpvpn_association") }
        guard project == bgpvpn.projectID else { throw NeutronError.notAuthorized("the association's project \(project) is not the BGPVPN's (\(bgpvpn.projectID))") }
        return project
    }

    public mutating func createNetworkAssociation(_ bgpvpnID: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> NetworkAssociation {
        let b = try bgpvpn(bgpvpnID, for: c.caller)
        try body.forbid(["id"])
        guard let networkID = try body.uuid("network_id") else { throw NeutronError.badRequest("Failed to parse request. Required attribute 'network_id' not specified") }
        let project = try associationProject(&body, b, c)
        _ = try body.string("name")
        try body.finish()
        let network = try network(networkID, for: c.caller)
        guard network.projectID == b.projectID || c.caller.isAdmin && network.shared else {
            throw NeutronError.notAuthorized("network \(networkID) belongs to another project than BGPVPN \(bgpvpnID)")
        }
        if network.external { throw NeutronError.badRequest("BGPVPN \(bgpvpnID): the bagpipe driver does not associate external network \(networkID)", type: "BGPVPNExternalNetAssociation") }
        if (networkAssociationsByNetwork[networkID] ?? []).contains(where: { networkAssociations[$0]?.bgpvpnID == bgpvpnID }) {
            throw NeutronError.badRequest("network \(networkID) is already associated to BGPVPN \(bgpvpnID)", type: "BGPVPNNetAssocAlreadyExists")
        }
        if b.type == .l3 {
            for router in routers(on: networkID) where (routerAssociationsByRouter[router] ?? []).contains(where: { routerAssociations[$0]?.projectID == network.projectID }) {
                throw NeutronError.badRequest("network \(networkID) is behind router \(router), which is associated to a BGPVPN: its subnets would be reachable through both")
            }
        }
        let a = NetworkAssociation(id: Identifiers.newUUID(), projectID: project, standard: StandardAttributes(at: c.now), bgpvpnID: bgpvpnID, networkID: networkID)
        put(a)
        return a
    }

    public mutating func createRouterAssociation(_ bgpvpnID: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> RouterAssociation {
        let b = try bgpvpn(bgpvpnID, for: c.caller)
        try body.forbid(["id"])
        guard let routerID = try body.uuid("router_id") else { throw NeutronError.badRequest("Failed to parse request. Required attribute 'router_id' not specified") }
        let project = try associationProject(&body, b, c)
        let advertise = try body.bool("advertise_extra_routes") ?? true
        _ = try body.string("name")
        try body.finish()
        let router = try router(routerID, for: c.caller)
        guard router.projectID == b.projectID else { throw NeutronError.notAuthorized("router \(routerID) belongs to another project than BGPVPN \(bgpvpnID)") }
        guard b.type == .l3 else { throw NeutronError.badRequest("Router associations require the bgpvpn to be of type l3") }
        if (routerAssociationsByRouter[routerID] ?? []).contains(where: { routerAssociations[$0]?.bgpvpnID == bgpvpnID }) {
            throw NeutronError.badRequest("router \(routerID) is already associated to BGPVPN \(bgpvpnID)", type: "BGPVPNRouterAssocAlreadyExists")
        }
        for network in networks(of: routerID) {
            let l3 = (networkAssociationsByNetwork[network] ?? []).compactMap { networkAssociations[$0] }.contains { a in
                a.projectID == router.projectID && bgpvpns[a.bgpvpnID]?.type == .l3
            }
            if l3 { throw NeutronError.badRequest("router \(routerID) has an interface on network \(network), which is associated to an L3 BGPVPN: its subnets would be reachable through both") }
        }
        let a = RouterAssociation(id: Identifiers.newUUID(), projectID: project, standard: StandardAttributes(at: c.now), bgpvpnID: bgpvpnID, routerID: routerID, advertiseExtraRoutes: advertise)
        put(a)
        return a
    }

    public mutating func updateRouterAssociation(_ bgpvpnID: String, _ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> RouterAssociation {
        var a = try association(routerAssociations[id], .routerAssociation, bgpvpnID, id, c.caller)
        try body.forbid(["id", "router_id", "tenant_id", "project_id"], reason: "PUT")
        if let v = try body.bool("advertise_extra_routes") { a.advertiseExtraRoutes = v }
        _ = try body.string("name")
        try body.finish()
        bump(&a.standard, c)
        put(a)
        return a
    }

    public mutating func createPortAssociation(_ bgpvpnID: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> PortAssociation {
        let b = try bgpvpn(bgpvpnID, for: c.caller)
        try body.forbid(["id"])
        guard let portID = try body.uuid("port_id") else { throw NeutronError.badRequest("Failed to parse request. Required attribute 'port_id' not specified") }
        let project = try associationProject(&body, b, c)
        let routes = try portRoutes(&body, bgpvpn: b, project: project) ?? []
        let advertise = try body.bool("advertise_fixed_ips") ?? true
        _ = try body.string("name")
        try body.finish()
        let port = try port(portID, for: c.caller)
        guard port.projectID == b.projectID else { throw NeutronError.notAuthorized("port \(portID) belongs to another project than BGPVPN \(bgpvpnID)") }
        if (portAssociationsByPort[portID] ?? []).contains(where: { portAssociations[$0]?.bgpvpnID == bgpvpnID }) {
            throw NeutronError.badRequest("port \(portID) is already associated to BGPVPN \(bgpvpnID)", type: "BGPVPNPortAssocAlreadyExists")
        }
        let a = PortAssociation(
            id: Identifiers.newUUID(), projectID: project, standard: StandardAttributes(at: c.now), bgpvpnID: bgpvpnID, portID: portID, routes: routes, advertiseFixedIPs: advertise)
        put(a)
        return a
    }

    /// As the reference: a PUT replaces the routes with those of the body (none if it has none).
    public mutating func updatePortAssociation(_ bgpvpnID: String, _ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> PortAssociation {
        var a = try association(portAssociations[id], .portAssociation, bgpvpnID, id, c.caller)
        guard let b = bgpvpns[bgpvpnID] else { throw NeutronError.notFound(.bgpvpn, bgpvpnID) }
        try body.forbid(["id", "port_id", "tenant_id", "project_id"], reason: "PUT")
        a.routes = try portRoutes(&body, bgpvpn: b, project: a.projectID) ?? []
        if let v = try body.bool("advertise_fixed_ips") { a.advertiseFixedIPs = v }
        _ = try body.string("name")
        try body.finish()
        bump(&a.standard, c)
        put(a)
        return a
    }

    public mutating func deleteAssociation(_ kind: ResourceKind, _ bgpvpnID: String, _ id: String, _ c: WriteContext) throws {
        switch kind {
        case .networkAssociation: _ = try association(networkAssociations[id], kind, bgpvpnID, id, c.caller)
        case .routerAssociation: _ = try association(routerAssociations[id], kind, bgpvpnID, id, c.caller)
        default: _ = try association(portAssociations[id], kind, bgpvpnID, id, c.caller)
        }
        remove(ResourceKey(kind, id))
    }

    /// An association of this BGPVPN the caller may see (owner or admin), or 404.
    public func association<A: NeutronResource>(_ a: A?, _ kind: ResourceKind, _ bgpvpnID: String, _ id: String, _ caller: Caller) throws -> A {
        _ = try bgpvpn(bgpvpnID, for: caller)
        guard let a, caller.owns(a.projectID), Self.bgpvpnID(of: a) == bgpvpnID else { throw NeutronError.notFound(kind, id) }
        return a
    }

    static func bgpvpnID(of a: any NeutronResource) -> String? {
        switch a {
        case let a as NetworkAssociation: a.bgpvpnID
        case let a as RouterAssociation: a.bgpvpnID
        case let a as PortAssociation: a.bgpvpnID
        default: nil
        }
    }

    /// §3.6's route dicts: `{type: prefix, prefix, local_pref?}` or `{type: bgpvpn, bgpvpn_id, local_pref?}`.
    func portRoutes(_ body: inout RequestAttributes, bgpvpn: BGPVPN, project: String) throws -> [PortRoute]? {
        guard let raw = body.raw("routes") else { return nil }
        guard case .array(let items) = raw else { throw NeutronError.invalidInput("routes", "'\(raw.serialized.prefix(60))' is not a list") }
        var routes: [PortRoute] = []
        for item in items {
            guard case .object(let o) = item, let type = o["type"]?.stringValue else { throw NeutronError.invalidInput("routes", "'\(item.serialized.prefix(60))' has no type") }
            var localPref: Int64?
            if let lp = o["local_pref"], !lp.isNull {
                guard case .int(let v) = lp, (0...4_294_967_295).contains(v) else { throw NeutronError.invalidInput("routes", "local_pref '\(lp.serialized.prefix(30))' is not in range 0 through 4294967295") }
                localPref = v
            }
            switch type {
            case "prefix":
                guard o.keys.allSatisfy({ ["type", "prefix", "local_pref"].contains($0) }), let p = o["prefix"]?.stringValue, let cidr = CIDR(p, strict: false) else {
                    throw NeutronError.invalidInput("routes", "'\(item.serialized.prefix(60))' is not a route {type: prefix, prefix: CIDR, local_pref?}")
                }
                routes.append(PortRoute(type: .prefix, prefix: "\(cidr)", localPref: localPref))
            case "bgpvpn":
                guard o.keys.allSatisfy({ ["type", "bgpvpn_id", "local_pref"].contains($0) }), let id = o["bgpvpn_id"]?.stringValue, Identifiers.isUUID(id) else {
                    throw NeutronError.invalidInput("routes", "'\(item.serialized.prefix(60))' is not a route {type: bgpvpn, bgpvpn_id: UUID, local_pref?}")
                }
                guard let other = bgpvpns[id.lowercased()] else { throw NeutronError.badRequest("BGPVPN \(id) referenced by a port route does not exist", type: "BGPVPNPortAssocRouteNoSuchBGPVPN") }
                guard other.type == bgpvpn.type else {
                    throw NeutronError.badRequest("BGPVPN \(id) of a port route is of type \(other.type.rawValue), not \(bgpvpn.type.rawValue)", type: "BGPVPNPortAssocRouteBGPVPNTypeDiffer")
                }
                guard other.projectID == project else {
                    throw NeutronError.badRequest("BGPVPN \(id) of a port route belongs to another project", type: "BGPVPNPortAssocRouteWrongBGPVPNProject")
                }
                routes.append(PortRoute(type: .bgpvpn, bgpvpnID: other.id, localPref: localPref))
            default:
                throw NeutronError.invalidInput("routes", "route type '\(type.prefix(30))' is not in [prefix, bgpvpn]")
            }
        }
        return routes
    }
}

extension BGPVPN {
    /// The three route-target lists, by attribute name.
    var targetLists: [(name: String, targets: [String])] {
        [("route_targets", routeTargets), ("import_targets", importTargets), ("export_targets", exportTargets)]
    }
}
