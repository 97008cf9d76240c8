import BGPWire
import Dataplane

/// One VRF of the IP VPN `ovs` driver (reference §9.6).
final class OVSVRF: DataplaneInstance {
    unowned let driver: OVSIPVPNDriver
    let id: UInt32
    let gateway: IPPrefix?

    struct Port {
        var number: Int
        var vlan: Int?
        /// Added to the bridge by us (deleted with its last endpoint).
        var addedName: String?
        var endpoints: Set<Endpoint> = []
        /// Its traffic enters the VRF (an endpoint other than `to-port` plugged it first).
        var input = false
    }

    var ports: [String: Port] = [:]
    /// Endpoints that receive traffic, by label.
    var labels: [UInt32: Set<Endpoint>] = [:]
    var remotes: [IPPrefix: [RemoteEndpoint]] = [:]
    var groupOf: [IPPrefix: UInt32] = [:]
    var classifiers: [TrafficClassifier: UInt32] = [:]
    var fallback: (src: MACAddress, dst: MACAddress, port: Int)?
    /// The VLAN of the VRF's ports (the agent gives them all the same).
    var vlan: Int?

    var cookie: UInt64 { OVSIPVPNDriver.cookie(id) }
    var o: OVSIPVPNDriver.Options { driver.options }
    var bridge: String { driver.bridge }

    init(driver: OVSIPVPNDriver, id: UInt32, gateway: IPPrefix?) {
        self.driver = driver
        self.id = id
        self.gateway = gateway
    }

    // MARK: Ports

    /// The port of an endpoint (reference §1.4): pre-plugged (`ovs.plugged`, by `port_number` or
    /// `port_name`), or added to the bridge by us (`ovs.port_name`, else `linuxif`).
    static func portKey(_ endpoint: Endpoint) -> String { endpoint.port.linuxif ?? endpoint.port.raw.serialized() }

    func resolvePort(_ endpoint: Endpoint) throws -> (key: String, port: Port) {
        let ovs = endpoint.port.ovs
        let key = Self.portKey(endpoint)
        if let existing = ports[key] { return (key, existing) }
        let vlan = ovs?.vlan
        if ovs?.plugged == true {
            if let n = ovs?.portNumber { return (key, Port(number: n, vlan: vlan)) }
            guard let name = ovs?.portName, let n = try driver.ovs.ofport(name) else {
                throw DataplaneRefusal("local_port.ovs: a plugged port needs port_number, or the port_name of a port of \(bridge)")
            }
            return (key, Port(number: n, vlan: vlan))
        }
        guard let name = ovs?.portName ?? endpoint.port.linuxif else { throw DataplaneRefusal("local_port: no port to plug into \(bridge)") }
        try driver.ovs.vsctl([["--may-exist", "add-port", bridge, name]])
        guard let n = try driver.ovs.ofport(name) else { throw DataplaneRefusal("\(name) could not be added to \(bridge) (no such interface?)") }
        return (key, Port(number: n, vlan: vlan, addedName: name))
    }

    func vlanMatch(_ port: Port) -> String { port.vlan.map { ",dl_vlan=\($0)" } ?? "" }
    func pushVLAN(_ vlan: Int?) -> String { vlan.map { "push_vlan:0x8100,mod_vlan_vid:\($0)," } ?? "" }

    /// Traffic from a port enters the VRF: register 0 names it, register 1 keeps the port.
    func inputRules(_ port: Port) -> [OVSClient.Change] {
        ["ip", "arp"].map { proto in
            .addFlow(
                "table=\(o.inputTable),priority=\(0x9000),cookie=\(cookie),in_port=\(port.number),\(proto)\(vlanMatch(port)) actions=\(port.vlan == nil ? "" : "strip_vlan,")load:\(port.number)->NXM_NX_REG1[],load:0->NXM_OF_IN_PORT[],load:\(id)->NXM_NX_REG0[],resubmit(,\(o.vrfTable))")
        }
    }

    /// ARP requests for the gateway (any address with `proxy_arp`) answered with the gateway MAC,
    /// out of the port they came from.
    func arpResponder() -> OVSClient.Change? {
        guard o.arpResponder, case .v4(let gw)? = gateway?.address else { return nil }
        let mac = OVSIPVPNDriver.gatewayMAC
        let target = o.proxyARP ? "" : ",arp_tpa=\(gw)"
        return .addFlow(
            "table=\(o.vrfTable),priority=\(0x9001),cookie=\(cookie),reg0=\(id),arp,arp_op=1\(target) actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:\(mac),load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_TPA[]->NXM_NX_REG2[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG2[]->NXM_OF_ARP_SPA[],load:0x\(String(mac.value, radix: 16))->NXM_NX_ARP_SHA[],\(pushVLAN(vlan))output:NXM_NX_REG1[]"
        )
    }

    /// MPLS (and VXLAN) traffic for an endpoint's label: to its port, from the gateway MAC.
    func deliveryRules(_ endpoint: Endpoint, _ port: Port) -> [OVSClient.Change] {
        let tail = "\(pushVLAN(port.vlan))mod_dl_src:\(OVSIPVPNDriver.gatewayMAC),mod_dl_dst:\(endpoint.mac),output:\(port.number)"
        var rules: [OVSClient.Change] = [
            .addFlow("table=\(o.encapsulationTable),priority=\(0x9000),cookie=\(cookie),mpls,mpls_label=\(endpoint.label),mpls_bos=1 actions=pop_mpls:0x0800,\(tail)")
        ]
        if let v = driver.vxlanPort { rules.append(.addFlow("table=\(o.encapsulationTable),priority=\(0x9000),cookie=\(cookie),in_port=\(v),tun_id=\(endpoint.label) actions=\(tail)")) }
        return rules
    }

    func plug(_ endpoint: Endpoint) throws {
        var (key, port) = try resolvePort(endpoint)
        if let vlan, let v = port.vlan, vlan != v { throw DataplaneRefusal("local_port.ovs.vlan \(v): this VRF's ports are on VLAN \(vlan)") }
        var changes: [OVSClient.Change] = []
        let firstOfPort = ports[key] == nil
        if firstOfPort, endpoint.direction != .toPort {
            changes += inputRules(port)
            port.input = true
        }
        if ports.isEmpty {
            vlan = port.vlan
            if let r = arpResponder() { changes.append(r) }
        }
        if endpoint.direction != .fromPort, labels[endpoint.label] == nil { changes += deliveryRules(endpoint, port) }
        try driver.ovs.apply(changes, bridge: bridge)
        if firstOfPort { ports[key] = port }
        ports[key]?.endpoints.insert(endpoint)
        if endpoint.direction != .fromPort { labels[endpoint.label, default: []].insert(endpoint) }
    }

    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        let key = Self.portKey(endpoint)
        guard var port = ports[key] else { return }
        var changes: [OVSClient.Change] = []
        if var users = labels[endpoint.label] {
            users.remove(endpoint)
            labels[endpoint.label] = users.isEmpty ? nil : users
            if users.isEmpty {
                changes.append(.deleteFlows("table=\(o.encapsulationTable),cookie=\(cookie)/-1,mpls,mpls_label=\(endpoint.label)"))
                if let v = driver.vxlanPort { changes.append(.deleteFlows("table=\(o.encapsulationTable),cookie=\(cookie)/-1,in_port=\(v),tun_id=\(endpoint.label)")) }
            }
        }
        port.endpoints.remove(endpoint)
        ports[key] = port
        if lastEndpointOfPort || port.endpoints.isEmpty {
            ports[key] = nil
            changes.append(.deleteFlows("table=\(o.inputTable),cookie=\(cookie)/-1,in_port=\(port.number)"))
            if ports.isEmpty { changes.append(.deleteFlows("table=\(o.vrfTable),cookie=\(cookie)/-1,arp")) }
        }
        try driver.ovs.apply(changes, bridge: bridge)
        if ports[key] == nil, let name = port.addedName { try driver.ovs.vsctl([["--if-exists", "del-port", bridge, name]]) }
    }

    // MARK: Remote prefixes

    /// Whether a prefix is outside the VRF's subnet (routed: its TTL is decremented).
    func routed(_ prefix: IPPrefix) -> Bool {
        guard let gateway, case .v4(let g) = gateway.address, case .v4(let p) = prefix.address, prefix.length >= gateway.length else { return true }
        let mask: UInt32 = gateway.length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(gateway.length))
        return g.value & mask != p.value & mask
    }

    /// A bucket's actions: the label (an MPLS label, or the VNI with VXLAN) and the way to the PE.
    func actions(_ r: RemoteEndpoint, routed: Bool) throws -> String {
        let local = r.remotePE == driver.localAddress
        var a = routed ? "dec_ttl," : ""
        // As the original: VXLAN whenever the driver has it and the route offers it.
        if driver.vxlan, r.encapsulations.contains(.vxlan), let v = driver.vxlanPort {
            a += "set_field:\(r.label)->tun_id,"
            return a + (local ? "resubmit(\(v),\(o.encapsulationTable))" : "set_field:\(r.remotePE)->tun_dst,output:\(v)")
        }
        a += "push_mpls:0x8847,set_field:\(r.label)->mpls_label,"
        guard let m = driver.mplsPort else { throw DataplaneNotSupported("MPLS: no GRE tunnel or MPLS interface on \(bridge)") }
        if local { return a + "resubmit(\(m),\(o.encapsulationTable))" }
        switch driver.mode {
        case .gre: return a + "set_field:\(r.remotePE)->tun_dst,output:\(m)"
        case .bareMPLS:
            let peMAC = try driver.resolveMAC(r.remotePE)
            return a + (driver.mplsMAC.map { "mod_dl_src:\($0)," } ?? "") + "mod_dl_dst:\(peMAC),output:\(m)"
        }
    }

    /// The select group of a prefix: a bucket per next hop, numbered from its load-balancing order.
    func group(_ prefix: IPPrefix, id: UInt32) throws -> String {
        var used = Set<UInt32>()
        var buckets: [String] = []
        for r in (remotes[prefix] ?? []).sorted(by: { ($0.loadBalancingOrder, $0.remotePE, $0.label) < ($1.loadBalancingOrder, $1.remotePE, $1.label) }) {
            var bucket = r.loadBalancingOrder
            while used.contains(bucket) { bucket += 1 }
            used.insert(bucket)
            buckets.append("bucket=bucket_id:\(bucket),actions=\(try actions(r, routed: routed(prefix)))")
        }
        let fields = o.hashFields.isEmpty || o.hashMethod != "hash" ? "" : ",fields(\(o.hashFields.joined(separator: ",")))"
        return "group_id=\(id),type=select,selection_method=\(o.hashMethod)\(fields),selection_method_param=\(o.hashParameter)," + buckets.joined(separator: ",")
    }

    func prefixRule(_ prefix: IPPrefix) -> String {
        "table=\(o.vrfTable),priority=\(OVSIPVPNDriver.priority(prefixLength: prefix.length)),reg0=\(id),ip" + (prefix.length == 0 ? "" : ",nw_dst=\(prefix)")
    }

    func setUp(_ remote: RemoteEndpoint) throws {
        guard case .prefix(let prefix) = remote.destination, prefix.isIPv4, !(remotes[prefix] ?? []).contains(remote) else { return }
        let existing = groupOf[prefix]
        let g = try existing ?? driver.allocateGroup(vrf: id, prefix: prefix)
        remotes[prefix, default: []].append(remote)
        let text: String
        do {
            text = try group(prefix, id: g)
        } catch {
            // Its bucket cannot be built (a bare-MPLS PE without a MAC): nothing changes.
            remotes[prefix]?.removeLast()
            if remotes[prefix]?.isEmpty == true { remotes[prefix] = nil }
            if existing == nil { driver.groups.release(g) }
            throw error
        }
        if existing != nil {
            driver.ovs.queue([.modifyGroup(text)], bridge: bridge)
        } else {
            groupOf[prefix] = g
            driver.ovs.queue([.addGroup(text), .addFlow("\(prefixRule(prefix)),cookie=\(cookie) actions=group:\(g)")], bridge: bridge)
        }
    }

    func remove(_ remote: RemoteEndpoint) throws {
        guard case .prefix(let prefix) = remote.destination, let i = remotes[prefix]?.firstIndex(of: remote), let g = groupOf[prefix] else { return }
        remotes[prefix]?.remove(at: i)
        if remotes[prefix]?.isEmpty == true {
            remotes[prefix] = nil
            groupOf[prefix] = nil
            driver.groups.release(g)
            driver.ovs.queue([.deleteFlowStrict(prefixRule(prefix)), .deleteGroup(g)], bridge: bridge)
        } else {
            driver.ovs.queue([.modifyGroup(try group(prefix, id: g))], bridge: bridge)
        }
    }

    // MARK: Redirection and fallback

    /// A port range as value/mask pairs (OpenFlow matches masks, not ranges): the original could not
    /// match one port without the other (quirk Q14).
    static func masks(_ r: TrafficClassifier.PortRange) -> [String] {
        var out: [String] = []
        var low = UInt32(r.lower)
        let high = UInt32(r.upper)
        while low <= high {
            var size: UInt32 = 1
            while low & (size * 2 - 1) == 0, low + size * 2 - 1 <= high, size < 0x10000 { size *= 2 }
            out.append(size == 1 ? "\(low)" : "\(low)/0x\(String(0xFFFF & ~(size - 1), radix: 16))")
            low += size
        }
        return out
    }

    /// The matches of a classifier's rules (one per source and destination port mask).
    func classifierMatches(_ c: TrafficClassifier) -> [String] {
        var base = "table=\(o.vrfTable),priority=\(0x9001),reg0=\(id),ip"
        if let p = c.ipProtocol { base += ",nw_proto=\(p)" }
        if let s = c.sourcePrefix { base += ",nw_src=\(s)" }
        if let d = c.destinationPrefix { base += ",nw_dst=\(d)" }
        let sources = c.sourcePort.map { Self.masks($0).map { ",tp_src=\($0)" } } ?? [""]
        let destinations = c.destinationPort.map { Self.masks($0).map { ",tp_dst=\($0)" } } ?? [""]
        return sources.flatMap { s in destinations.map { d in "\(base)\(s)\(d)" } }
    }

    /// Matching traffic continues in the redirect VRF's rules.
    func classifierRules(_ classifier: TrafficClassifier, redirectTo instance: UInt32) -> [OVSClient.Change] {
        classifierMatches(classifier).map { .addFlow("\($0),cookie=\(cookie) actions=load:\(instance)->NXM_NX_REG0[],resubmit(,\(o.vrfTable))") }
    }

    func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws {
        classifiers[classifier] = instance
        driver.ovs.queue(classifierRules(classifier, redirectTo: instance), bridge: bridge)
    }

    func removeTrafficClassifier(_ classifier: TrafficClassifier) throws {
        guard classifiers.removeValue(forKey: classifier) != nil else { return }
        driver.ovs.queue(classifierMatches(classifier).map { .deleteFlowStrict($0) }, bridge: bridge)
    }

    /// `fallback`: what no prefix matches goes to this MAC and port (the agent's router), below
    /// every prefix rule.
    var fallbackMatch: String { "table=\(o.vrfTable),priority=\(OVSIPVPNDriver.fallbackPriority),reg0=\(id)" }

    func fallbackRule() -> OVSClient.Change? {
        fallback.map { .addFlow("\(fallbackMatch),cookie=\(cookie) actions=\(pushVLAN(vlan))mod_dl_src:\($0.src),mod_dl_dst:\($0.dst),output:\($0.port)") }
    }

    func updateFallback(_ value: Fallback?) {
        guard let value else {
            if fallback != nil { try? driver.ovs.apply([.deleteFlowStrict(fallbackMatch)], bridge: bridge) }
            fallback = nil
            return
        }
        fallback = (value.sourceMAC, value.destinationMAC, value.ovsPortNumber)
        do {
            try driver.ovs.apply(fallbackRule().map { [$0] } ?? [], bridge: bridge)
        } catch {
            driver.logger.warning("VRF \(id) fallback: \(error)")
        }
    }

    /// Every rule and group the VRF holds, from its state (a group whose bucket cannot be built
    /// is left out).
    func rules() -> (groups: [OVSClient.Change], flows: [OVSClient.Change]) {
        var changes: [OVSClient.Change] = []
        for port in ports.values where port.input { changes += inputRules(port) }
        if !ports.isEmpty, let r = arpResponder() { changes.append(r) }
        for endpoints in labels.values {
            if let e = endpoints.first, let port = ports[Self.portKey(e)] { changes += deliveryRules(e, port) }
        }
        var groups: [OVSClient.Change] = []
        for (prefix, g) in groupOf {
            if let text = try? group(prefix, id: g) { groups.append(.addGroup(text)) }
            changes.append(.addFlow("\(prefixRule(prefix)),cookie=\(cookie) actions=group:\(g)"))
        }
        for (classifier, target) in classifiers { changes += classifierRules(classifier, redirectTo: target) }
        if let f = fallbackRule() { changes.append(f) }
        return (groups, changes)
    }

    /// Every rule and group of the VRF, from its state, after the switch lost them; the number of
    /// rules. Ports we added are looked up again (their numbers may have changed).
    func reinstall() throws -> Int {
        for (key, port) in ports {
            if let name = port.addedName, let n = try driver.ovs.ofport(name) { ports[key]?.number = n }
        }
        let (groups, changes) = rules()
        try driver.ovs.apply(groups + changes, bridge: bridge)
        return changes.count
    }

    /// Every rule of the VRF goes (by cookie), its groups and the ports we added.
    func cleanup() {
        do {
            try driver.ovs.apply([.deleteFlows("cookie=\(cookie)/-1")] + groupOf.values.map { .deleteGroup($0) }, bridge: bridge)
            let added = ports.values.compactMap(\.addedName)
            if !added.isEmpty { try driver.ovs.vsctl(added.map { ["--if-exists", "del-port", bridge, $0] }) }
        } catch {
            driver.logger.warning("VRF \(id) cleanup: \(error)")
        }
        for g in groupOf.values { driver.groups.release(g) }
        (ports, labels, remotes, groupOf, classifiers) = ([:], [:], [:], [:], [:])
        driver.instances[id] = nil
    }

    var lookingGlass: JSONValue {
        let tables = [("input", o.inputTable), ("encapsulation", o.encapsulationTable), ("vrf", o.vrfTable)]
        return .object([
            ("flows", .object(tables.map { name, t in ("\(name) (\(t))", .array(((try? driver.ovs.flows(bridge: bridge, match: "table=\(t),cookie=\(cookie)/-1")) ?? []).map { .string($0) })) })),
            ("groups", .array(groupOf.sorted { $0.value < $1.value }.map { .string("\($0.key) -> group \($0.value)") })),
        ])
    }
}
