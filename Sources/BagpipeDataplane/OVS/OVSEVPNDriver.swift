import BGPWire
import Dataplane
import Logging

/// The E-VPN `ovs` driver (reference §9.3): E-VPN instances on Neutron's tunnel bridge (`br-tun`),
/// where the OVS agent has put each network on a local VLAN. Per instance (VNI from the instance,
/// VLAN from `local_port.vlan`):
/// - table 4: `tun_id=<VNI>` → tag with the VLAN, on to table 10 (the agent's learn-and-deliver);
/// - table 20: a remote MAC → untag, set the VNI, out of the VXLAN port to its VTEP (or back into
///   table 4 when the VTEP is this host);
/// - table 21: an ARP responder entry for each IP of a remote MAC;
/// - group <VLAN> (type all) with a bucket per flood-list member, and table 22 `dl_vlan` → the group.
/// VXLAN ports `vxlan-<remote address in hex>` (the agent's naming) are shared by instances and
/// deleted with their last user. Every rule carries the instance's cookie.
public final class OVSEVPNDriver: DataplaneDriver {
    public let vpnType = VPNType.evpn
    public let encapsulations: [TunnelType] = [.vxlan]
    public let supportsECMP = false
    public let localAddress: IPv4Address
    /// The original asks for route-by-route removals (cleanup assist), as its flows per MAC are not
    /// found by cookie; ours are, but its behaviour is kept for the tunnel references.
    public let needsCleanupAssist = true
    public let bridge: String
    public let reconcileInterval: Double?
    let ovs: OVSClient
    let logger: Logger
    /// Tunnel ports per remote VTEP (their OpenFlow numbers: a lookup is a process), with their
    /// users: (instance, key) where key names a MAC or the flood list (behaviour 59).
    var tunnels = SharedObjects<IPv4Address, TunnelUser, Int>()
    var instances: [UInt32: OVSEVPNInstance] = [:]
    /// Set by `adoptState` (a restart that keeps forwarding) until `sweepStale`: our rules older
    /// than this were left by the earlier run.
    var adoptedAt: ContinuousClock.Instant?

    public struct TunnelUser: Hashable, Sendable {
        public var instance: UInt32
        public var vni: UInt32
        /// A MAC, or nil for the flood list ("flood" in the original).
        public var mac: MACAddress?
        public init(instance: UInt32, vni: UInt32, mac: MACAddress?) { self.instance = instance; self.vni = vni; self.mac = mac }
    }

    /// Who holds the tunnel to a remote VTEP (for the looking glass and tests).
    public func tunnelUsers(of remote: IPv4Address) -> Set<TunnelUser> { tunnels.users(of: remote) }

    /// Neutron's br-tun tables.
    public enum Table {
        public static let vxlanToLocalVLAN = 4, learnFromTunnel = 10, unicastToTunnel = 20, arpResponder = 21, floodToTunnel = 22
    }

    public static let priority = 5
    static func cookie(_ instance: UInt32) -> UInt64 { 0x6261_6765_0000_0000 | UInt64(instance) }
    /// The driver's own rules (tunnel ports' input rules, the canary): instance ids start at 1.
    static let driverCookie = cookie(0)

    public init(localAddress: IPv4Address, options: [String: String], ovs: OVSClient = OVSClient()) throws {
        self.localAddress = localAddress
        logger = DataplaneDrivers.logger(.evpn)
        self.ovs = ovs
        bridge = options["ovs_bridge"] ?? "br-tun"
        reconcileInterval = try DataplaneDrivers.reconcileInterval(options, type: .evpn)
        try ovs.requireBridge(bridge, section: "DATAPLANE_DRIVER_EVPN", role: "Neutron's tunnel bridge")
    }

    public func flush() {
        do { try ovs.flush() } catch { logger.warning("\(bridge): \(error)") }
    }

    /// The agent owns br-tun, so only what carries our cookies goes (the original did nothing, and
    /// a crashed daemon left its rules): every rule of ours, and the flood groups they used.
    public func resetState() throws {
        let ours = "cookie=\(Self.driverCookie)/0xffffffff00000000"
        let groups = try ovs.flows(bridge: bridge, match: "table=\(Table.floodToTunnel),\(ours)").compactMap { rule in
            OVSClient.DumpedFlow.number(after: "group:", in: rule)
        }
        try ovs.apply([.deleteFlows(ours)] + Set(groups).sorted().map { .deleteGroup($0) }, bridge: bridge)
    }

    /// A restart that keeps forwarding: the earlier run's rules, groups and tunnel ports stay, in
    /// use, while the instances made again add theirs (an `add` of the same rule replaces it, and
    /// starts its `duration` again); `sweepStale` removes what is older than this.
    public func adoptState() throws {
        adoptedAt = .now
        let kept = try ovs.dumpedFlows(bridge: bridge, cookie: Self.driverCookie).count
        logger.notice("restart: \(kept) rules of the earlier run kept on \(bridge) until the routes are back")
    }

    /// Our rules not added again since `adoptState`, the flood groups only they used, and the
    /// tunnel ports whose input rule is among them and that no instance uses now.
    public func sweepStale() -> [String] {
        guard let since = adoptedAt else { return [] }
        adoptedAt = nil
        flush()
        do {
            let stale = try ovs.flows(bridge: bridge, cookie: Self.driverCookie, olderThan: since)
            let groups = Set(stale.compactMap(\.group)).subtracting(floodGroups).sorted()
            let names = try ovs.portNames(bridge: bridge)
            let inUse = Set(tunnels.keys.map(Self.tunnelPortName))
            let ports = stale.filter { $0.cookie == Self.driverCookie && $0.table == 0 }.compactMap { $0.inPort.flatMap { names[$0] } }
                .filter { $0.hasPrefix("vxlan-") && !inUse.contains($0) }
            let removed = try ovs.removeStale(stale, groups: groups, groupName: "flood group", bridge: bridge, logger: logger)
            guard !ports.isEmpty else { return removed }
            try ovs.vsctl(ports.map { ["--if-exists", "del-port", bridge, $0] })
            logger.notice("restart over: removed from \(bridge) the tunnel ports nothing uses: \(ports.joined(separator: " "))")
            return removed + ports.map { "tunnel port \($0)" }
        } catch {
            logger.warning("\(bridge): removing the earlier run's stale rules: \(error)")
            return []
        }
    }

    /// The flood groups the instances hold (id = the VLAN of an instance with flood members).
    var floodGroups: Set<UInt32> { Set(instances.values.compactMap { $0.floods.isEmpty ? nil : $0.vlan.map(UInt32.init) }) }

    /// Our rules on the bridge against those the instances hold (by match), and our flood groups
    /// (Neutron's agent uses no group on br-tun).
    public func differences() -> [String] {
        var wanted = [OVSClient.canaryRule(cookie: Self.driverCookie)]
        for remote in tunnels.keys.sorted() { if let port = tunnels.object(remote) { wanted.append(tunnelInputRule(port)) } }
        for instance in instances.values { wanted += instance.rules() }
        return ovs.differences(bridge: bridge, cookie: Self.driverCookie, wanted: wanted, groups: floodGroups, groupName: "flood group")
    }

    public func initialize() throws {
        try ovs.apply([OVSClient.canaryRule(cookie: Self.driverCookie)], bridge: bridge)
    }

    /// After ovs-vswitchd lost the rules: the tunnel ports' input rules, every instance's rules and
    /// flood groups, the canary last (a failure half-way is tried again at the next check).
    public func reconcile() throws -> String? {
        guard try !ovs.hasCanary(bridge: bridge, cookie: Self.driverCookie) else { return nil }
        var changes: [OVSClient.Change] = []
        // The ports come back with the switch; their numbers are looked up again.
        for remote in tunnels.keys {
            guard let port = try ovs.ofport(Self.tunnelPortName(remote)) else { continue }
            tunnels.replace(remote, with: port)
            changes.append(tunnelInputRule(port))
        }
        try ovs.apply(changes, bridge: bridge)
        var rules = changes.count
        for instance in instances.values.sorted(by: { $0.id < $1.id }) { rules += try instance.reinstall() }
        try ovs.apply([OVSClient.canaryRule(cookie: Self.driverCookie)], bridge: bridge)
        return "\(bridge) had lost its rules (ovs-vswitchd restarted?): installed again \(rules) rules of \(instances.count) E-VPN instance(s)"
    }

    /// Traffic from a tunnel goes to table 4, as the agent's tunnel setup does.
    func tunnelInputRule(_ port: Int) -> OVSClient.Change {
        .addFlow("table=0,priority=1,cookie=\(Self.driverCookie),in_port=\(port) actions=resubmit(,\(Table.vxlanToLocalVLAN))")
    }

    public func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        let instance = OVSEVPNInstance(driver: self, id: id, vni: label)
        instances[id] = instance
        return instance
    }

    /// The agent's tunnel port name: `vxlan-` and the remote IPv4 address in hex.
    public static func tunnelPortName(_ remote: IPv4Address) -> String {
        let hex = String(remote.value, radix: 16)
        return "vxlan-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The tunnel port to a VTEP for one user, created (with its table-0 rule) for the first.
    func acquireTunnel(_ remote: IPv4Address, by user: TunnelUser) throws {
        _ = try tunnels.acquire(remote, by: user) {
            let name = Self.tunnelPortName(remote)
            try ovs.vsctl([
                ["--may-exist", "add-port", bridge, name],
                ["set", "Interface", name, "type=vxlan", "options:remote_ip=\(remote)", "options:local_ip=\(localAddress)", "options:key=flow", "options:in_key=flow", "options:out_key=flow"],
            ])
            guard let port = try ovs.ofport(name) else { throw OVSClient.Failure(command: "ofport of \(name)", output: "not on \(bridge)") }
            ovs.queue([tunnelInputRule(port)], bridge: bridge)
            return port
        }
    }

    func releaseTunnel(_ remote: IPv4Address, by user: TunnelUser) {
        guard let port = tunnels.release(remote, by: user) else { return }
        let name = Self.tunnelPortName(remote)
        do {
            try ovs.apply([.deleteFlowStrict("table=0,priority=1,in_port=\(port)")], bridge: bridge)
            try ovs.vsctl([["--if-exists", "del-port", bridge, name]])
        } catch {
            logger.warning("deleting tunnel port \(name): \(error)")
        }
    }

    public var lookingGlass: JSONValue {
        .object(commonLookingGlass + [("ovs_bridge", .string(bridge)), ("tunnels", .object(tunnels.keys.sorted().map { ("\($0)", .array(tunnels.users(of: $0).map { .string("\($0.instance) \($0.vni) \($0.mac.map { "\($0)" } ?? "flood")") }.sorted { $0.serialized() < $1.serialized() })) }))])
    }
}

final class OVSEVPNInstance: DataplaneInstance {
    unowned let driver: OVSEVPNDriver
    let id: UInt32
    let vni: UInt32
    /// The local VLAN of the network on br-tun (from the first plug).
    var vlan: Int?
    var macs: [MACAddress: RemoteEndpoint] = [:]
    var floods: [IPv4Address: FloodEndpoint] = [:]
    var cookie: UInt64 { OVSEVPNDriver.cookie(id) }
    var bridge: String { driver.bridge }

    init(driver: OVSEVPNDriver, id: UInt32, vni: UInt32) {
        self.driver = driver
        self.id = id
        self.vni = vni
    }

    func plug(_ endpoint: Endpoint) throws {
        guard let v = endpoint.port.vlan, (1...4094).contains(v) else {
            throw DataplaneRefusal("local_port.vlan (the network's local VLAN on \(bridge)) is required by the E-VPN ovs driver")
        }
        if let vlan, vlan != v { throw DataplaneRefusal("local_port.vlan \(v): this E-VPN instance is on VLAN \(vlan); all its ports must be") }
        guard vlan == nil else { return }
        try driver.ovs.apply([vniRule(vlan: v)], bridge: bridge)
        vlan = v
    }

    /// The VNI to the network's local VLAN (table 4), then on to the agent's table 10.
    func vniRule(vlan: Int) -> OVSClient.Change {
        .addFlow("table=\(OVSEVPNDriver.Table.vxlanToLocalVLAN),priority=\(OVSEVPNDriver.priority),cookie=\(cookie),tun_id=\(vni) actions=mod_vlan_vid:\(vlan),resubmit(,\(OVSEVPNDriver.Table.learnFromTunnel))")
    }

    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {}

    func local(_ pe: IPv4Address) -> Bool { pe == driver.localAddress }

    /// Untag, set the VNI, to the VTEP's tunnel port (or back into table 4 for this host).
    func tunnelActions(_ pe: IPv4Address, vni: UInt32) throws -> String {
        if local(pe) { return "strip_vlan,load:0->NXM_OF_IN_PORT[],set_tunnel:\(vni),resubmit(,\(OVSEVPNDriver.Table.vxlanToLocalVLAN))" }
        guard let port = driver.tunnels.object(pe) else { throw OVSClient.Failure(command: "tunnel port to \(pe)", output: "missing") }
        return "strip_vlan,set_tunnel:\(vni),output:\(port)"
    }

    func setUp(_ remote: RemoteEndpoint) throws {
        guard case .mac(let mac, let ip) = remote.destination, let vlan else { return }
        let user = OVSEVPNDriver.TunnelUser(instance: id, vni: remote.label, mac: mac)
        if !local(remote.remotePE) { try driver.acquireTunnel(remote.remotePE, by: user) }
        if let old = macs[mac], old.remotePE != remote.remotePE, !local(old.remotePE) {
            driver.releaseTunnel(old.remotePE, by: OVSEVPNDriver.TunnelUser(instance: id, vni: old.label, mac: mac))
        }
        macs[mac] = remote
        driver.ovs.queue(try macRules(remote, mac: mac, ip: ip, vlan: vlan), bridge: bridge)
    }

    /// A MAC to its VTEP (table 20), and its ARP responder entry when its IP is known (table 21).
    func macRules(_ remote: RemoteEndpoint, mac: MACAddress, ip: IPAddress?, vlan: Int) throws -> [OVSClient.Change] {
        var changes: [OVSClient.Change] = [
            .addFlow("table=\(OVSEVPNDriver.Table.unicastToTunnel),priority=\(OVSEVPNDriver.priority),cookie=\(cookie),dl_vlan=\(vlan),dl_dst=\(mac) actions=\(try tunnelActions(remote.remotePE, vni: remote.label))")
        ]
        if case .v4(let address)? = ip { changes.append(.addFlow(arpResponder(vlan: vlan, ip: address, mac: mac))) }
        return changes
    }

    /// Every rule the instance holds, from its state (its flood group aside).
    func rules() -> [OVSClient.Change] {
        guard let vlan else { return [] }
        var changes = [vniRule(vlan: vlan)]
        for (mac, remote) in macs {
            guard case .mac(_, let ip) = remote.destination, let rules = try? macRules(remote, mac: mac, ip: ip, vlan: vlan) else { continue }
            changes += rules
        }
        if !floods.isEmpty { changes.append(floodRule(vlan: vlan)) }
        return changes
    }

    /// Every rule of the instance and its flood group, from its state; the number of rules.
    func reinstall() throws -> Int {
        let changes = rules()
        try driver.ovs.apply((try floodGroup().map { [$0] } ?? []) + changes, bridge: bridge)
        return changes.count
    }

    func floodRule(vlan: Int) -> OVSClient.Change {
        .addFlow("table=\(OVSEVPNDriver.Table.floodToTunnel),priority=\(OVSEVPNDriver.priority),cookie=\(cookie),dl_vlan=\(vlan) actions=group:\(vlan)")
    }

    /// Neutron's ARP responder entry: the request becomes the reply, from `mac`.
    func arpResponder(vlan: Int, ip: IPv4Address, mac: MACAddress) -> String {
        "table=\(OVSEVPNDriver.Table.arpResponder),priority=1,cookie=\(cookie),arp,dl_vlan=\(vlan),arp_tpa=\(ip) actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:\(mac),load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0x\(String(mac.value, radix: 16))->NXM_NX_ARP_SHA[],load:0x\(String(ip.value, radix: 16))->NXM_OF_ARP_SPA[],in_port"
    }

    func remove(_ remote: RemoteEndpoint) throws {
        guard case .mac(let mac, let ip) = remote.destination, let vlan else { return }
        var changes: [OVSClient.Change] = []
        // A MAC re-pointed to another VTEP keeps its rule, and its ARP entry while the route it
        // has now carries the same IP.
        if macs[mac]?.remotePE == remote.remotePE {
            macs[mac] = nil
            changes.append(.deleteFlowStrict("table=\(OVSEVPNDriver.Table.unicastToTunnel),priority=\(OVSEVPNDriver.priority),dl_vlan=\(vlan),dl_dst=\(mac)"))
        }
        if case .v4(let address)? = ip, macs[mac]?.destination != remote.destination {
            changes.append(.deleteFlowStrict("table=\(OVSEVPNDriver.Table.arpResponder),priority=1,arp,dl_vlan=\(vlan),arp_tpa=\(address)"))
        }
        driver.ovs.queue(changes, bridge: bridge)
        if !local(remote.remotePE), macs[mac]?.remotePE != remote.remotePE {
            driver.releaseTunnel(remote.remotePE, by: OVSEVPNDriver.TunnelUser(instance: id, vni: remote.label, mac: mac))
        }
    }

    /// The flood group (id = the VLAN) with a bucket per member; nil without members.
    func floodGroup() throws -> OVSClient.Change? {
        guard let vlan, !floods.isEmpty else { return nil }
        var buckets: [String] = []
        for (pe, flood) in floods.sorted(by: { $0.key < $1.key }) {
            buckets.append("bucket=actions=" + (try tunnelActions(pe, vni: flood.vni)))
        }
        return .addGroup("group_id=\(vlan),type=all," + buckets.joined(separator: ","))
    }

    /// The flood group, and the table-22 rule to it with the first member.
    func writeFloodGroup(first: Bool) throws {
        guard let vlan, case .addGroup(let group)? = try floodGroup() else { return }
        driver.ovs.queue(first ? [.addGroup(group), floodRule(vlan: vlan)] : [.modifyGroup(group)], bridge: bridge)
    }

    func addFlood(_ flood: FloodEndpoint) throws {
        guard vlan != nil, floods[flood.remotePE] == nil else { return }
        if !local(flood.remotePE) { try driver.acquireTunnel(flood.remotePE, by: OVSEVPNDriver.TunnelUser(instance: id, vni: flood.vni, mac: nil)) }
        let first = floods.isEmpty
        floods[flood.remotePE] = flood
        try writeFloodGroup(first: first)
    }

    func removeFlood(_ flood: FloodEndpoint) throws {
        guard let vlan, floods.removeValue(forKey: flood.remotePE) != nil else { return }
        if floods.isEmpty {
            driver.ovs.queue([.deleteFlowStrict("table=\(OVSEVPNDriver.Table.floodToTunnel),priority=\(OVSEVPNDriver.priority),dl_vlan=\(vlan)"), .deleteGroup(UInt32(vlan))], bridge: bridge)
        } else {
            try writeFloodGroup(first: false)
        }
        if !local(flood.remotePE) { driver.releaseTunnel(flood.remotePE, by: OVSEVPNDriver.TunnelUser(instance: id, vni: flood.vni, mac: nil)) }
    }

    /// Every rule of the instance goes (by cookie), with its group; its tunnel references too.
    func cleanup() {
        do {
            var changes: [OVSClient.Change] = [.deleteFlows("cookie=\(cookie)/-1")]
            if let vlan, !floods.isEmpty { changes.append(.deleteGroup(UInt32(vlan))) }
            try driver.ovs.apply(changes, bridge: bridge)
        } catch {
            driver.logger.warning("EVI \(id) cleanup: \(error)")
        }
        for (mac, r) in macs where !local(r.remotePE) { driver.releaseTunnel(r.remotePE, by: OVSEVPNDriver.TunnelUser(instance: id, vni: r.label, mac: mac)) }
        for (pe, f) in floods where !local(pe) { driver.releaseTunnel(pe, by: OVSEVPNDriver.TunnelUser(instance: id, vni: f.vni, mac: nil)) }
        (macs, floods) = ([:], [:])
        driver.instances[id] = nil
    }

    var lookingGlass: JSONValue {
        .object([
            ("vlan", vlan.map { JSONValue($0) } ?? .null), ("vni", JSONValue(vni)),
            ("flooding-ports", .array(floods.sorted { $0.key < $1.key }.map { pe, f in .object([("port", .string(local(pe) ? "local" : OVSEVPNDriver.tunnelPortName(pe))), ("vni", JSONValue(f.vni))]) })),
            ("macs", .array(macs.sorted { $0.key < $1.key }.map { .string("\($0.key) -> \($0.value.remotePE)") })),
        ])
    }
}
