import NeutronModel

/// Resources in Neutron's response shapes, with the attributes the caller's policy hides left out
/// (§3.8: owners do not see a BGPVPN's route targets, nor an association's project).
extension ControllerState {
    public func render(_ r: AnyResource, for caller: Caller) -> JSONObject {
        switch r {
        case .network(let n): render(n)
        case .subnet(let s): render(s)
        case .port(let p): render(p)
        case .router(let r): render(r)
        case .bgpvpn(let b): render(b, for: caller)
        case .networkAssociation(let a): Self.hidingProject(render(a), caller)
        case .routerAssociation(let a): Self.hidingProject(render(a), caller)
        case .portAssociation(let a): Self.hidingProject(render(a), caller)
        }
    }

    static func hidingProject(_ o: JSONObject, _ caller: Caller) -> JSONObject {
        caller.isAdmin ? o : o.removing(["project_id", "tenant_id"])
    }

    func base(_ id: String, _ project: String, _ s: StandardAttributes, name: Bool = true) -> JSONObject {
        var o = JSONObject([("id", .string(id))])
        if name { o["name"] = .string(s.name) }
        o["tenant_id"] = .string(project)
        o["project_id"] = .string(project)
        return o
    }

    func standard(_ o: inout JSONObject, _ s: StandardAttributes) {
        o["description"] = .string(s.description)
        o["tags"] = .strings(s.tags)
        o["created_at"] = .string(s.createdAt)
        o["updated_at"] = .string(s.updatedAt)
        o["revision_number"] = .int(s.revisionNumber)
    }

    public func render(_ n: Network) -> JSONObject {
        var o = base(n.id, n.projectID, n.standard)
        o["admin_state_up"] = .bool(n.adminStateUp)
        o["status"] = "ACTIVE"
        o["subnets"] = .strings(subnets(of: n.id).map(\.id))
        o["shared"] = .bool(n.shared)
        o["router:external"] = .bool(n.external)
        o["provider:network_type"] = "vxlan"
        o["provider:physical_network"] = .null
        o["provider:segmentation_id"] = .int(n.segmentationID)
        o["mtu"] = .int(n.mtu)
        o["port_security_enabled"] = .bool(n.portSecurityEnabled)
        o["availability_zone_hints"] = .array([])
        o["availability_zones"] = .array([])
        o["ipv4_address_scope"] = .null
        o["ipv6_address_scope"] = .null
        o["is_default"] = false
        standard(&o, n.standard)
        return o
    }

    public func render(_ s: Subnet) -> JSONObject {
        var o = base(s.id, s.projectID, s.standard)
        o["network_id"] = .string(s.networkID)
        o["ip_version"] = .int(s.ipVersion)
        o["cidr"] = .string(s.cidr)
        o["gateway_ip"] = .string(s.gatewayIP)
        o["allocation_pools"] = .array(s.allocationPools.map { .object(JSONObject([("start", .string($0.start)), ("end", .string($0.end))])) })
        o["enable_dhcp"] = .bool(s.enableDHCP)
        o["dns_nameservers"] = .strings(s.dnsNameservers)
        o["host_routes"] = .array(s.hostRoutes.map { .object(JSONObject([("destination", .string($0.destination)), ("nexthop", .string($0.nexthop))])) })
        o["ipv6_ra_mode"] = .string(s.ipv6RAMode)
        o["ipv6_address_mode"] = .string(s.ipv6AddressMode)
        o["subnetpool_id"] = .null
        o["service_types"] = .array([])
        o["segment_id"] = .null
        standard(&o, s.standard)
        return o
    }

    public func render(_ p: Port) -> JSONObject {
        var o = base(p.id, p.projectID, p.standard)
        o["network_id"] = .string(p.networkID)
        o["mac_address"] = .string(p.macAddress)
        o["fixed_ips"] = .array(p.fixedIPs.map { .object(JSONObject([("subnet_id", .string($0.subnetID)), ("ip_address", .string($0.ipAddress))])) })
        o["device_id"] = .string(p.deviceID)
        o["device_owner"] = .string(p.deviceOwner)
        o["admin_state_up"] = .bool(p.adminStateUp)
        o["status"] = .string(p.status)
        o["binding:host_id"] = .string(p.hostID)
        o["binding:vif_type"] = .string(p.hostID.isEmpty ? "unbound" : "ovs")
        o["binding:vif_details"] = .object(JSONObject())
        o["binding:vnic_type"] = "normal"
        o["binding:profile"] = .object(JSONObject())
        o["port_security_enabled"] = .bool(p.portSecurityEnabled)
        o["security_groups"] = .array([])
        o["allowed_address_pairs"] = .array([])
        o["extra_dhcp_opts"] = .array([])
        standard(&o, p.standard)
        return o
    }

    public func render(_ r: Router) -> JSONObject {
        var o = base(r.id, r.projectID, r.standard)
        o["admin_state_up"] = .bool(r.adminStateUp)
        o["status"] = "ACTIVE"
        o["external_gateway_info"] = .null
        o["routes"] = .array(r.routes.map { .object(JSONObject([("destination", .string($0.destination)), ("nexthop", .string($0.nexthop))])) })
        o["distributed"] = false
        o["ha"] = false
        o["availability_zone_hints"] = .array([])
        o["availability_zones"] = .array([])
        o["flavor_id"] = .null
        standard(&o, r.standard)
        return o
    }

    public func render(_ b: BGPVPN, for caller: Caller) -> JSONObject {
        var o = base(b.id, b.projectID, b.standard)
        o["type"] = .string(b.type.rawValue)
        o["route_targets"] = .strings(b.routeTargets)
        o["import_targets"] = .strings(b.importTargets)
        o["export_targets"] = .strings(b.exportTargets)
        o["route_distinguishers"] = .strings(b.routeDistinguishers)
        o["networks"] = .strings((networkAssociationsByBGPVPN[b.id] ?? []).compactMap { networkAssociations[$0]?.networkID }.sorted())
        o["routers"] = .strings((routerAssociationsByBGPVPN[b.id] ?? []).compactMap { routerAssociations[$0]?.routerID }.sorted())
        o["ports"] = .strings((portAssociationsByBGPVPN[b.id] ?? []).compactMap { portAssociations[$0]?.portID }.sorted())
        o["local_pref"] = .int(b.localPref)
        o["vni"] = .int(b.vni)
        standard(&o, b.standard)
        return caller.isAdmin ? o : o.removing(Set(Self.targetFields + ["vni"]))
    }

    public func render(_ a: NetworkAssociation) -> JSONObject {
        var o = base(a.id, a.projectID, a.standard, name: false)
        o["bgpvpn_id"] = .string(a.bgpvpnID)
        o["network_id"] = .string(a.networkID)
        return o
    }

    public func render(_ a: RouterAssociation) -> JSONObject {
        var o = base(a.id, a.projectID, a.standard, name: false)
        o["bgpvpn_id"] = .string(a.bgpvpnID)
        o["router_id"] = .string(a.routerID)
        o["advertise_extra_routes"] = .bool(a.advertiseExtraRoutes)
        return o
    }

    public func render(_ a: PortAssociation) -> JSONObject {
        var o = base(a.id, a.projectID, a.standard, name: false)
        o["bgpvpn_id"] = .string(a.bgpvpnID)
        o["port_id"] = .string(a.portID)
        o["routes"] = .array(a.routes.map(Self.render))
        o["advertise_fixed_ips"] = .bool(a.advertiseFixedIPs)
        return o
    }

    static func render(_ r: PortRoute) -> JSON {
        var o = JSONObject([("type", .string(r.type.rawValue))])
        switch r.type {
        case .prefix: o["prefix"] = .string(r.prefix)
        case .bgpvpn: o["bgpvpn_id"] = .string(r.bgpvpnID)
        }
        o["local_pref"] = .int(r.localPref)
        return .object(o)
    }
}
