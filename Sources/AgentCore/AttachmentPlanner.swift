import NeutronModel

/// Turns a host's view into the attachments bagpipe-bgp should hold, as networking-bagpipe's agent
/// extensions compute them (reference §1.2, §2.4, §2.5, §4.4): per port, the network's E-VPN
/// (`bagpipe`), then each BGPVPN type's network-level attachment with the union of the route targets
/// of every association that applies, and one attachment per port-association route. No I/O.
public struct AttachmentPlanner: Sendable {
    public enum Dataplane: Sendable, Equatable {
        case ovs(OVSPatchPorts)
        case linux
    }

    public var extensions: Set<AgentExtension>
    /// `[ml2_bagpipe_extension] as_number`: one route target `<AS>:<VNI>` per AS.
    public var asNumbers: [UInt32]
    public var dataplane: Dataplane

    /// The MAC bagpipe-bgp writes as source when it sends a VRF miss back to br-int (§4.6).
    public static let fallbackSourceMAC = "00:00:5e:2a:10:00"

    public init(extensions: Set<AgentExtension>, asNumbers: [UInt32] = [64512], dataplane: Dataplane) {
        self.extensions = extensions
        self.asNumbers = asNumbers
        self.dataplane = dataplane
    }

    /// Every attachment of every plugged port, sorted by key (E-VPN first).
    public func plan(_ view: HostViewModel, plugged: [String: PortPlug]) -> [Attachment] {
        var all: [Attachment] = []
        let index = AssociationIndex(view)
        for (id, plug) in plugged {
            guard let port = view.ports[id] else { continue }
            all += attachments(port, plug, view, index)
        }
        return all.sorted { $0.key < $1.key }
    }

    /// One port's attachments (§2.4's compile): each service's, then the route targets of each
    /// instance made one union, and attachments with one identity merged into one call.
    public func attachments(_ port: ViewPort, _ plug: PortPlug, _ view: HostViewModel, _ index: AssociationIndex? = nil) -> [Attachment] {
        let index = index ?? AssociationIndex(view)
        // A port that is down is never plugged; router interfaces and other network ports never are.
        guard port.adminStateUp, !port.isNetworkOwned, let network = view.networks[port.networkID] else { return [] }
        var list: [Attachment] = []
        if extensions.contains(.bagpipe) { list += networkEVPN(port, network, plug, vni: extensions.contains(.bagpipeBGPVPN) ? l2VNI(network, index) : nil) }
        if extensions.contains(.bagpipeBGPVPN) {
            for type in VPNType.allCases { list += bgpvpnAttachments(port, network, plug, index, type: type, hasNetworkEVPN: extensions.contains(.bagpipe)) }
        }
        // The union of route targets per instance, over services and attachments.
        var imports: [String: [String]] = [:], exports: [String: [String]] = [:]
        for a in list {
            imports[a.key.vpnInstanceID] = orderedUnion(imports[a.key.vpnInstanceID] ?? [], strings(a.attach["import_rt"]))
            exports[a.key.vpnInstanceID] = orderedUnion(exports[a.key.vpnInstanceID] ?? [], strings(a.attach["export_rt"]))
        }
        var merged: [AttachmentKey: Attachment] = [:]
        var order: [AttachmentKey] = []
        for var a in list {
            a.attach["import_rt"] = .strings(imports[a.key.vpnInstanceID] ?? [])
            a.attach["export_rt"] = .strings(exports[a.key.vpnInstanceID] ?? [])
            if var existing = merged[a.key] {
                // The later service's fields complete the earlier's (the BGPVPN's gateway and description).
                for (k, v) in a.attach where existing.attach[k] == nil { existing.attach[k] = v }
                merged[a.key] = existing
            } else {
                merged[a.key] = a
                order.append(a.key)
            }
        }
        return order.compactMap { merged[$0] }
    }

    // MARK: - The network's E-VPN (`bagpipe`, §1.2, §1.5)

    /// `vni`: an L2 BGPVPN's VNI that overrides the network's in the dataplane (the route targets stay
    /// the network's).
    func networkEVPN(_ port: ViewPort, _ network: ViewNetwork, _ plug: PortPlug, vni override: Int?) -> [Attachment] {
        guard network.networkType == "vxlan", let segmentation = network.segmentationID else { return [] }
        let rts = asNumbers.map { "\($0):\(segmentation)" }
        let vni = override ?? segmentation
        var o = JSONObject([("vpn_instance_id", .string("evpn_\(network.id)")), ("vpn_type", "evpn"), ("mac_address", .string(port.macAddress))])
        if let ip = port.firstIPv4 { o["ip_address"] = .string(ip) }
        localPort(.evpn, plug, network: network.id, into: &o, hasNetworkEVPN: true)
        o["vni"] = .int(vni)
        o["import_rt"] = .strings(rts)
        o["export_rt"] = .strings(rts)
        return [attachment(o, port, vni: vni)]
    }

    // MARK: - BGPVPN associations (`bagpipe_bgpvpn`, §4.4)

    /// The VNI of the first network-level L2 association's BGPVPN that has one (§4.4).
    func l2VNI(_ network: ViewNetwork, _ index: AssociationIndex) -> Int? {
        let net = (index.networkAssociations[network.id] ?? []).filter { $0.bgpvpn.type == .l2 }.map(\.bgpvpn)
        let router = (index.routerAssociations[network.id] ?? []).filter { $0.bgpvpn.type == .l2 }.map(\.bgpvpn)
        return (net + router).lazy.compactMap(\.vni).first
    }

    func bgpvpnAttachments(_ port: ViewPort, _ network: ViewNetwork, _ plug: PortPlug, _ index: AssociationIndex, type: VPNType, hasNetworkEVPN: Bool) -> [Attachment] {
        let bgpvpnType: BGPVPNType = type == .evpn ? .l2 : .l3
        let portAssociations = (index.portAssociations[port.id] ?? []).filter { $0.bgpvpn.type == bgpvpnType }
        let networkAssociations = (index.networkAssociations[network.id] ?? []).filter { $0.bgpvpn.type == bgpvpnType }
        let routerAssociations = (index.routerAssociations[network.id] ?? []).filter { $0.bgpvpn.type == bgpvpnType }
        let networkLevel = networkAssociations.map(\.bgpvpn) + routerAssociations.map(\.bgpvpn)
        let all = portAssociations.map(\.bgpvpn) + networkLevel
        guard !all.isEmpty else { return [] }

        // The gateway: the first IPv4 subnet the associations carry (§4.4 step 1).
        let subnetLists = portAssociations.map(\.subnets) + networkAssociations.map(\.subnets) + routerAssociations.map { $0.connectedNetworks[network.id] ?? [] }
        let gateway = subnetLists.lazy.compactMap { $0.first { $0.ipVersion == 4 } }.first

        let instance = "\(type.rawValue)_\(network.id)"
        var base = JSONObject([("vpn_type", .string(type.rawValue)), ("mac_address", .string(port.macAddress))])
        localPort(type, plug, network: network.id, into: &base, hasNetworkEVPN: hasNetworkEVPN)
        base["gateway_ip"] = .string(gateway?.gatewayIP)
        if type == .ipvpn, let mac = gateway?.gatewayMAC, case .ovs(let patches) = dataplane {
            base["fallback"] = .object(JSONObject([("dst_mac", .string(mac)), ("src_mac", .string(Self.fallbackSourceMAC)), ("ovs_port_number", .int(patches.mplsToInt))]))
        }
        base["description"] = .object(JSONObject([("port", .string(port.id))]))
        base["instance_description"] = .string("BGPVPN \(bgpvpnType.rawValue) of network \(network.id)")
        var vni: Int?
        if type == .evpn {
            // An L2 BGPVPN's own VNI overrides the network's (§4.4); the first one wins.
            vni = networkLevel.lazy.compactMap(\.vni).first ?? network.segmentationID
            if let vni { base["vni"] = .int(vni) }
        }
        if let pref = all.compactMap(\.localPref).max() { base["local_pref"] = .int(pref) }

        var out: [Attachment] = []
        let advertiseFixedIPs = portAssociations.contains { $0.advertiseFixedIPs } || !networkLevel.isEmpty
        if advertiseFixedIPs, let ip = port.fixedIPs.first {
            var o = base
            o["vpn_instance_id"] = .string(instance)
            o["ip_address"] = .string(ip)
            o["import_rt"] = .strings(orderedUnion(all.flatMap(\.importSet)))
            o["export_rt"] = .strings(orderedUnion(all.flatMap(\.exportSet)))
            out.append(attachment(o, port, vni: vni))
        }
        for association in portAssociations {
            for route in association.routes {
                var o = base
                o["direction"] = "to-port"
                o["import_rt"] = .strings(association.bgpvpn.importSet)
                o["export_rt"] = .strings(association.bgpvpn.exportSet)
                // The route's own, else its BGPVPN's; absent when neither has one.
                o["local_pref"] = (route.localPref ?? association.bgpvpn.localPref).map { .int($0) }
                switch route.type {
                case .prefix:
                    guard let prefix = route.prefix else { continue }
                    o["vpn_instance_id"] = .string("\(type.rawValue)_portassoc_\(association.id)_prefix_\(prefix.map { ".:/".contains($0) ? "_" : $0 }.map(String.init).joined())")
                    o["ip_address"] = .string(prefix)
                    if prefix.contains("/") { o["advertise_subnet"] = true }
                case .bgpvpn:
                    guard let leaked = route.bgpvpn, let ip = port.fixedIPs.first else { continue }
                    o["vpn_instance_id"] = .string("\(type.rawValue)_portassoc_\(association.id)_bgpvpn_\(leaked.id)")
                    o["ip_address"] = .string(ip)
                    o["readvertise"] = .object(JSONObject([("from_rt", .strings(leaked.importSet)), ("to_rt", .strings(association.bgpvpn.exportSet))]))
                }
                out.append(attachment(o, port, vni: vni))
            }
        }
        return out
    }

    // MARK: - Shapes

    /// `local_port` (and `linuxbr`) for this dataplane (§2.5): on OVS a label naming the local VLAN,
    /// with br-mpls' patch port for an IP VPN; on Linux the tap, or for an IP VPN the network's
    /// E-VPN stitched in (the Linux bridge agent's way) when the network has one.
    func localPort(_ type: VPNType, _ plug: PortPlug, network: String, into o: inout JSONObject, hasNetworkEVPN: Bool) {
        switch (plug, type, dataplane) {
        case (.ovs(let vlan), .evpn, _):
            o["local_port"] = .object(JSONObject([("linuxif", .string("patch2tun:\(vlan)")), ("vlan", .int(vlan))]))
        case (.ovs(let vlan), .ipvpn, .ovs(let patches)):
            let ovs = JSONObject([("plugged", true), ("port_number", .int(patches.mplsFromTun)), ("vlan", .int(vlan))])
            o["local_port"] = .object(JSONObject([("linuxif", .string("patch2tun:\(vlan)")), ("ovs", .object(ovs))]))
        case (.ovs(let vlan), .ipvpn, .linux):
            o["local_port"] = .object(JSONObject([("linuxif", .string("patch2tun:\(vlan)"))]))
        case (.linux(let tap, let bridge), .evpn, _):
            o["local_port"] = .object(JSONObject([("linuxif", .string(tap))]))
            o["linuxbr"] = .string(bridge)
        case (.linux(let tap, _), .ipvpn, _):
            o["local_port"] = hasNetworkEVPN ? .object(JSONObject([("evpn", .object(JSONObject([("id", .string("evpn_\(network)"))])))])) : .object(JSONObject([("linuxif", .string(tap))]))
        }
    }

    func attachment(_ o: JSONObject, _ port: ViewPort, vni: Int?) -> Attachment {
        let type = VPNType(rawValue: o["vpn_type"]?.stringValue ?? "") ?? .evpn
        let localPort = o["local_port"] ?? .null
        let key = AttachmentKey(
            vpnType: type, vpnInstanceID: o["vpn_instance_id"]?.stringValue ?? "", portID: port.id, macAddress: port.macAddress, ipAddress: o["ip_address"]?.stringValue,
            localPort: localPort.serialized, vni: type == .evpn ? vni : nil)
        // A detach names the instance, the MAC, the address and the port; on OVS without the VLAN
        // and the br-mpls sub-object (§2.5).
        var d = JSONObject([("vpn_instance_id", o["vpn_instance_id"] ?? .null), ("vpn_type", .string(type.rawValue)), ("mac_address", .string(port.macAddress))])
        if let ip = o["ip_address"] { d["ip_address"] = ip }
        d["local_port"] = localPort.objectValue.map { .object($0.keeping(["linuxif", "evpn"])) } ?? localPort
        return Attachment(key: key, attach: o, detach: d)
    }

    func strings(_ v: JSON?) -> [String] { v?.arrayValue?.compactMap(\.stringValue) ?? [] }
}

/// The associations of a view by the network (or port) they apply to, each list in id order: built
/// once per plan, so that planning is linear in the ports.
public struct AssociationIndex: Sendable {
    var networkAssociations: [String: [NetworkAssociationInfo]] = [:]
    var routerAssociations: [String: [RouterAssociationInfo]] = [:]
    var portAssociations: [String: [PortAssociationInfo]] = [:]

    public init(_ view: HostViewModel) {
        for a in view.networkAssociations.values.sorted(by: { $0.id < $1.id }) { networkAssociations[a.networkID, default: []].append(a) }
        // A router's distributed VRF is a router association like the others, after them.
        for a in view.routerAssociations.values.sorted(by: { $0.id < $1.id }) + view.routers.values.sorted(by: { $0.id < $1.id }) {
            for network in a.connectedNetworks.keys { routerAssociations[network, default: []].append(a) }
        }
        for a in view.portAssociations.values.sorted(by: { $0.id < $1.id }) { portAssociations[a.portID, default: []].append(a) }
    }
}
