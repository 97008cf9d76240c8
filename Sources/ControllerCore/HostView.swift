import NeutronModel

/// What one compute host needs to know (the agent's view): the ports bound to it, their networks
/// and subnets (with the gateway's MAC), the routers of those networks (their distributed VRFs),
/// and every BGPVPN association that applies to them, in the
/// shapes networking-bgpvpn's bagpipe driver pushes (reference §4.2: associations carry their
/// BGPVPN and the subnets they concern). Nothing about other hosts' ports: reachability travels
/// over BGP.
extension ControllerState {
    /// The view's objects by key.
    public func hostView(_ host: String) -> [ResourceKey: JSONObject] {
        var view: [ResourceKey: JSONObject] = [:]
        for key in hostViewKeys(host) { if let o = viewObject(key) { view[key] = o } }
        return view
    }

    /// What a host's view holds, without rendering it.
    public func hostViewKeys(_ host: String) -> Set<ResourceKey> {
        var keys = Set<ResourceKey>()
        var networkIDs = Set<String>()
        for id in portsByHost[host] ?? [] {
            guard let p = ports[id] else { continue }
            keys.insert(ResourceKey(.port, p.id))
            networkIDs.insert(p.networkID)
            for a in portAssociationsByPort[p.id] ?? [] where portAssociations[a].map({ bgpvpns[$0.bgpvpnID] != nil }) ?? false {
                keys.insert(ResourceKey(.portAssociation, a))
            }
        }
        var routerIDs = Set<String>()
        for n in networkIDs where networks[n] != nil {
            keys.insert(ResourceKey(.network, n))
            for s in subnetsByNetwork[n] ?? [] { keys.insert(ResourceKey(.subnet, s)) }
            for a in networkAssociationsByNetwork[n] ?? [] where networkAssociations[a].map({ bgpvpns[$0.bgpvpnID] != nil }) ?? false {
                keys.insert(ResourceKey(.networkAssociation, a))
            }
            routerIDs.formUnion(routers(on: n))
        }
        for r in routerIDs {
            for a in routerAssociationsByRouter[r] ?? [] where routerAssociations[a].map({ bgpvpns[$0.bgpvpnID] != nil }) ?? false {
                keys.insert(ResourceKey(.routerAssociation, a))
            }
            // The router itself: its distributed VRF (DistributedRouting.swift).
            if hasDistributedVRF(r) { keys.insert(ResourceKey(.router, r)) }
        }
        return keys
    }

    /// An object as host views show it: ports and networks as the API does, subnets with their
    /// gateway's MAC, associations in the shape the driver pushes (§4.2). The same for every host.
    public func viewObject(_ key: ResourceKey) -> JSONObject? {
        switch key.kind {
        case .port: return ports[key.id].map(render)
        case .network: return networks[key.id].map(render)
        case .subnet:
            guard let s = subnets[key.id] else { return nil }
            var o = render(s)
            o["gateway_mac"] = .string(gatewayMAC(s))
            return o
        case .networkAssociation: return networkAssociations[key.id].flatMap(pushed)
        case .routerAssociation: return routerAssociations[key.id].flatMap(pushed)
        case .portAssociation: return portAssociations[key.id].flatMap(pushed)
        case .router: return routerView(key.id)
        case .bgpvpn: return nil
        }
    }

    /// The hosts whose view a change of `key` may touch, in this state. A write's affected hosts are
    /// those of the state before and after it.
    public func hostsConcerned(by key: ResourceKey) -> Set<String> {
        switch key.kind {
        case .port:
            guard let p = ports[key.id] else { return [] }
            var hosts: Set<String> = p.hostID.isEmpty ? [] : [p.hostID]
            if p.deviceOwner == Port.routerInterfaceOwner {
                hosts.formUnion(hostsOfRouter(p.deviceID))
                hosts.formUnion(hostsOfNetwork(p.networkID))
            }
            return hosts
        case .network: return hostsOfNetwork(key.id)
        case .subnet:
            guard let s = subnets[key.id] else { return [] }
            return routers(on: s.networkID).reduce(hostsOfNetwork(s.networkID)) { $0.union(hostsOfRouter($1)) }
        case .router: return hostsOfRouter(key.id)
        case .bgpvpn:
            var hosts = Set<String>()
            for a in networkAssociationsByBGPVPN[key.id] ?? [] { if let a = networkAssociations[a] { hosts.formUnion(hostsOfNetwork(a.networkID)) } }
            for a in routerAssociationsByBGPVPN[key.id] ?? [] { if let a = routerAssociations[a] { hosts.formUnion(hostsOfRouter(a.routerID)) } }
            for a in portAssociationsByBGPVPN[key.id] ?? [] { if let a = portAssociations[a], let h = ports[a.portID]?.hostID { hosts.insert(h) } }
            // Port associations that leak this BGPVPN embed it in their routes.
            for a in portAssociations.values where a.routes.contains(where: { $0.bgpvpnID == key.id }) { if let h = ports[a.portID]?.hostID { hosts.insert(h) } }
            hosts.remove("")
            return hosts
        case .networkAssociation: return networkAssociations[key.id].map { hostsOfNetwork($0.networkID) } ?? []
        case .routerAssociation: return routerAssociations[key.id].map { hostsOfRouter($0.routerID) } ?? []
        case .portAssociation:
            guard let h = portAssociations[key.id].flatMap({ ports[$0.portID]?.hostID }), !h.isEmpty else { return [] }
            return [h]
        }
    }

    public func hostsOfNetwork(_ network: String) -> Set<String> {
        var hosts = Set<String>()
        for p in portsByNetwork[network] ?? [] { if let h = ports[p]?.hostID, !h.isEmpty { hosts.insert(h) } }
        return hosts
    }

    public func hostsOfRouter(_ router: String) -> Set<String> {
        networks(of: router).reduce(into: Set<String>()) { $0.formUnion(hostsOfNetwork($1)) }
    }

    /// The MAC of the port holding the subnet's gateway IP (a router interface), if any.
    public func gatewayMAC(_ s: Subnet) -> String? {
        guard let g = s.gatewayIP else { return nil }
        return routerInterfaces(on: s.networkID).first { $0.fixedIPs.contains { $0.subnetID == s.id && $0.ipAddress == g } }?.macAddress
    }

    // MARK: - Pushed shapes (§4.2)

    /// The BGPVPN as pushed to agents: every attribute, route targets included.
    func pushed(_ b: BGPVPN) -> JSON {
        .object(JSONObject([
            ("id", .string(b.id)), ("project_id", .string(b.projectID)), ("type", .string(b.type.rawValue)), ("name", .string(b.standard.name)),
            ("route_targets", .strings(b.routeTargets)), ("import_targets", .strings(b.importTargets)), ("export_targets", .strings(b.exportTargets)),
            ("route_distinguishers", .strings(b.routeDistinguishers)), ("local_pref", .int(b.localPref)), ("vni", .int(b.vni)),
        ]))
    }

    func subnetInfo(_ network: String) -> JSON {
        .array(subnets(of: network).map { s in
            .object(JSONObject([
                ("ip_version", .int(s.ipVersion)), ("id", .string(s.id)), ("cidr", .string(s.cidr)), ("gateway_ip", .string(s.gatewayIP)), ("gateway_mac", .string(gatewayMAC(s))),
            ]))
        })
    }

    func pushed(_ a: NetworkAssociation) -> JSONObject? {
        guard let b = bgpvpns[a.bgpvpnID] else { return nil }
        return JSONObject([
            ("id", .string(a.id)), ("project_id", .string(a.projectID)), ("bgpvpn_id", .string(a.bgpvpnID)), ("bgpvpn", pushed(b)), ("network_id", .string(a.networkID)),
            ("subnets", subnetInfo(a.networkID)),
        ])
    }

    /// `connected_networks` of a router: each network its interfaces are on, with its subnets.
    func connectedNetworks(_ router: String) -> JSON {
        .array(networks(of: router).sorted().map { n in JSON.object(JSONObject([("network_id", .string(n)), ("subnets", subnetInfo(n))])) })
    }

    func pushed(_ a: RouterAssociation) -> JSONObject? {
        guard let b = bgpvpns[a.bgpvpnID] else { return nil }
        return JSONObject([
            ("id", .string(a.id)), ("project_id", .string(a.projectID)), ("bgpvpn_id", .string(a.bgpvpnID)), ("bgpvpn", pushed(b)), ("router_id", .string(a.routerID)),
            ("advertise_extra_routes", .bool(a.advertiseExtraRoutes)), ("connected_networks", connectedNetworks(a.routerID)),
        ])
    }

    func pushed(_ a: PortAssociation) -> JSONObject? {
        guard let b = bgpvpns[a.bgpvpnID], let port = ports[a.portID] else { return nil }
        let routes: [JSON] = a.routes.map { r in
            .object(JSONObject([
                ("type", .string(r.type.rawValue)), ("prefix", .string(r.prefix)), ("local_pref", .int(r.localPref)), ("bgpvpn_id", .string(r.bgpvpnID)),
                ("bgpvpn", r.bgpvpnID.flatMap { bgpvpns[$0] }.map(pushed) ?? .null),
            ]))
        }
        return JSONObject([
            ("id", .string(a.id)), ("project_id", .string(a.projectID)), ("bgpvpn_id", .string(a.bgpvpnID)), ("bgpvpn", pushed(b)), ("port_id", .string(a.portID)),
            ("subnets", subnetInfo(port.networkID)), ("routes", .array(routes)), ("advertise_fixed_ips", .bool(a.advertiseFixedIPs)),
        ])
    }
}
