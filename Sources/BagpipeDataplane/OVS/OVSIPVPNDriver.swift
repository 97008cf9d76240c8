import BGPWire
import BagpipeConfig
import Dataplane
import Logging
import Netlink

#if canImport(Glibc)
import Glibc
#endif

/// The IP VPN `ovs` driver (reference §9.6): VRFs as OpenFlow tables of one bridge (`br-mpls`),
/// MPLS over GRE (Ethernet-in-GRE by default, MPLS-in-GRE with `gre_tunnel_options =
/// packet_type=legacy_l3`), bare MPLS over `mpls_interface`, and VXLAN when `vxlan_encap` is on.
/// Tables: input (`input_table`, 0), encapsulated traffic in (`ovs_table_id_start`, 1), the VRFs
/// (the next one). A VRF n has cookie 0x62616770_<n> and is selected by register 0 = n. Each prefix
/// is a select group (ECMP) with a bucket per next hop; longer prefixes have higher priorities.
public final class OVSIPVPNDriver: DataplaneDriver {
    public enum Mode: String, Sendable { case gre, bareMPLS = "bare-mpls" }

    public let vpnType = VPNType.ipvpn
    public let encapsulations: [TunnelType]
    public let supportsECMP = true
    public let localAddress: IPv4Address
    public let bridge: String
    public let mode: Mode
    public let vxlan: Bool
    public let reconcileInterval: Double?
    let options: Options
    let ovs: OVSClient
    let logger: Logger
    var groups = IdentifierAllocator.ovsGroups()
    var instances: [UInt32: OVSVRF] = [:]
    /// Ports of the bridge the driver uses for MPLS and VXLAN, resolved at `initialize`.
    var mplsPort: Int?
    var vxlanPort: Int?
    /// The source MAC of bare-MPLS frames.
    var mplsMAC: MACAddress?
    var peMACs: [IPv4Address: MACAddress] = [:]
    /// Set by `adoptState` (a restart that keeps forwarding) until `sweepStale`: our rules older
    /// than this were left by the earlier run.
    var adoptedAt: ContinuousClock.Instant?
    /// The earlier run's group of each (VRF, prefix), taken back by the prefix's route when it
    /// comes again, so that its rule and group stay what they were.
    var adoptedGroups: [AdoptedGroup: UInt32] = [:]
    /// Every group id the earlier run left, held in the allocator until taken back or swept.
    var heldGroupIDs: Set<UInt32> = []

    struct AdoptedGroup: Hashable {
        var vrf: UInt32
        var prefix: IPPrefix
    }

    public static let gatewayMAC = MACAddress("00:00:5e:00:43:64")!

    struct Options {
        var inputTable = 0, encapsulationTable = 1
        var vrfTable: Int { encapsulationTable + 1 }
        var greTunnel = "mpls_gre"
        var greOptions: [String] = []
        var mplsInterface: String?
        var arpResponder = false
        var proxyARP = false
        var hashMethod = "dp_hash"
        var hashParameter: UInt64 = 0
        var hashFields: [String] = []
    }

    static func cookie(_ instance: UInt32) -> UInt64 { 0x6261_6770_0000_0000 | UInt64(instance) }
    /// The driver's own rules (input rules of the tunnel ports, the canary): instance ids start at 1.
    static let driverCookie = cookie(0)
    /// Rule priorities: a prefix rule is 0x9000 − (128 − length); the fallback below every prefix.
    public static func priority(prefixLength: UInt8) -> Int { 0x9000 - (128 - Int(prefixLength)) }
    public static let fallbackPriority = 0x8F00

    public init(localAddress: IPv4Address, options o: [String: String], ovs: OVSClient = OVSClient()) throws {
        func fail(_ key: String, _ message: String) -> DataplaneDrivers.Unavailable { .init(description: "[DATAPLANE_DRIVER_IPVPN] \(key): \(message)") }
        func bool(_ key: String) throws -> Bool { try DataplaneDrivers.bool(o, key, type: .ipvpn) }
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard let t = o[key] else { return fallback }
            guard let v = Int(t), v >= 0, v < 255 else { throw fail(key, "'\(t)' is not a table number") }
            return v
        }
        self.localAddress = localAddress
        logger = DataplaneDrivers.logger(.ipvpn)
        self.ovs = ovs
        bridge = o["ovs_bridge"] ?? "br-mpls"
        var options = Options()
        options.inputTable = try int("input_table", 0)
        options.encapsulationTable = try int("ovs_table_id_start", 1)
        guard options.encapsulationTable != options.inputTable, options.vrfTable != options.inputTable else {
            throw fail("ovs_table_id_start", "\(options.encapsulationTable) and \(options.vrfTable) must differ from input_table \(options.inputTable)")
        }
        options.greTunnel = o["gre_tunnel"] ?? "mpls_gre"
        options.greOptions = (o["gre_tunnel_options"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        options.arpResponder = try bool("arp_responder")
        options.proxyARP = try bool("proxy_arp")
        options.hashMethod = o["hash_method"] ?? "dp_hash"
        guard ["hash", "dp_hash"].contains(options.hashMethod) else { throw fail("hash_method", "'\(options.hashMethod)' is not hash or dp_hash") }
        if let t = o["hash_method_param"] {
            guard let v = UInt64(t) else { throw fail("hash_method_param", "'\(t)' is not a number") }
            options.hashParameter = v
        }
        options.hashFields = (o["hash_fields"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // `mpls_over_gre`: auto (the interface decides), True, False. The original forced GRE for any
        // value but auto (quirk Q12); False means bare MPLS here.
        let mplsInterface = o["mpls_interface"].flatMap { $0.isEmpty ? nil : $0 }
        let overGRE = o["mpls_over_gre"] ?? "auto"
        if overGRE.lowercased() == "auto" {
            mode = mplsInterface == nil || mplsInterface?.contains("gre") == true ? .gre : .bareMPLS
        } else if let gre = parseBoolean(overGRE) {
            guard gre || mplsInterface != nil else { throw fail("mpls_over_gre", "False needs an mpls_interface") }
            mode = gre ? .gre : .bareMPLS
        } else {
            throw fail("mpls_over_gre", "'\(overGRE)' is not auto, True or False")
        }
        options.mplsInterface = mode == .bareMPLS ? mplsInterface : nil
        vxlan = try bool("vxlan_encap")
        reconcileInterval = try DataplaneDrivers.reconcileInterval(o, type: .ipvpn)
        encapsulations = (mode == .gre ? [TunnelType.gre, .default] : [.mpls, .default]) + (vxlan ? [.vxlan] : [])
        self.options = options
        try ovs.requireBridge(bridge, section: "DATAPLANE_DRIVER_IPVPN", role: "the MPLS bridge the OVS agent sets up")
        if let i = options.mplsInterface, (try? ovs.ofport(i)) == nil { throw fail("mpls_interface", "\(i) is not a port of \(bridge)") }
    }

    /// Our rules and groups of an earlier run go: the input table's MPLS, IP and ARP rules and those
    /// of our tunnel ports, every rule of the other two tables, every group.
    public func resetState() throws {
        var changes: [OVSClient.Change] = [
            .deleteFlows("table=\(options.encapsulationTable)"), .deleteFlows("table=\(options.vrfTable)"),
            .deleteFlows("table=\(options.inputTable),mpls"), .deleteFlows("table=\(options.inputTable),ip"), .deleteFlows("table=\(options.inputTable),arp"),
            OVSClient.deleteCanary(cookie: Self.driverCookie),
        ]
        for port in [options.greTunnel, "vxlan"] { if let n = try? ovs.ofport(port) { changes.append(.deleteFlows("table=\(options.inputTable),in_port=\(n)")) } }
        // Every group, in the same call (one process, not one per group).
        for g in try ovs.groups(bridge: bridge) {
            if let id = g.split(separator: ",").first?.split(separator: "=").last.flatMap({ UInt32($0) }) { changes.append(.deleteGroup(id)) }
        }
        try ovs.apply(changes, bridge: bridge)
    }

    /// A restart that keeps forwarding: the earlier run's rules and groups stay, in use, while the
    /// VRFs made again add theirs (an `add` of the same rule replaces it and starts its `duration`
    /// again); its group ids are held, each prefix's taken back by its route; `sweepStale`
    /// removes what is older than this.
    public func adoptState() throws {
        adoptedAt = .now
        for flow in try ovs.dumpedFlows(bridge: bridge, cookie: Self.driverCookie) where flow.table == options.vrfTable {
            if let g = flow.group, let key = Self.adoptedGroup(flow) { adoptedGroups[key] = g }
        }
        for g in try ovs.groupIDs(bridge: bridge) where !groups.isAllocated(g) {
            _ = try groups.allocate(for: "left by the earlier run", hint: g)
            heldGroupIDs.insert(g)
        }
        logger.notice("restart: the rules and \(heldGroupIDs.count) groups of the earlier run kept on \(bridge) until the routes are back")
    }

    /// The VRF and prefix of a prefix rule ("priority=…,ip,reg0=0x2,nw_dst=10.0.0.0/24").
    static func adoptedGroup(_ flow: OVSClient.DumpedFlow) -> AdoptedGroup? {
        var vrf: UInt32?
        var prefix = IPPrefix(IPv4Address(0), length: 0)
        for field in flow.match.split(separator: ",") {
            if field.hasPrefix("reg0=0x") { vrf = UInt32(field.dropFirst(7), radix: 16) }
            if field.hasPrefix("reg0="), !field.hasPrefix("reg0=0x") { vrf = UInt32(field.dropFirst(5)) }
            if field.hasPrefix("nw_dst=") {
                let text = field.dropFirst(7)
                guard let p = text.contains("/") ? IPPrefix(text) : IPv4Address(text).map({ IPPrefix($0, length: 32) }) else { return nil }
                prefix = p
            }
        }
        return vrf.map { AdoptedGroup(vrf: $0, prefix: prefix) }
    }

    /// A group id for a VRF's prefix: the one the earlier run used for it, when adopted.
    func allocateGroup(vrf: UInt32, prefix: IPPrefix) throws -> UInt32 {
        let description = "VRF \(vrf) \(prefix)"
        if let g = adoptedGroups.removeValue(forKey: AdoptedGroup(vrf: vrf, prefix: prefix)), heldGroupIDs.remove(g) != nil {
            groups.release(g)
            return try groups.allocate(for: description, hint: g)
        }
        return try groups.allocate(for: description)
    }

    /// Our rules not added again since `adoptState`, and every group no VRF uses now.
    public func sweepStale() -> [String] {
        guard let since = adoptedAt else { return [] }
        adoptedAt = nil
        flush()
        defer {
            for g in heldGroupIDs { groups.release(g) }
            (heldGroupIDs, adoptedGroups) = ([], [:])
        }
        do {
            let stale = try ovs.flows(bridge: bridge, cookie: Self.driverCookie, olderThan: since)
            let unused = Set(try ovs.groupIDs(bridge: bridge)).subtracting(groupsInUse).sorted()
            return try ovs.removeStale(stale, groups: unused, groupName: "group", bridge: bridge, logger: logger)
        } catch {
            logger.warning("\(bridge): removing the earlier run's stale rules: \(error)")
            return []
        }
    }

    /// The groups the VRFs hold, one per remote prefix.
    var groupsInUse: Set<UInt32> { Set(instances.values.flatMap { $0.groupOf.values }) }

    /// Our rules on the bridge against those the VRFs hold (by match), and the groups (all of the
    /// bridge's are ours).
    public func differences() -> [String] {
        var wanted = baseRules() + [OVSClient.canaryRule(cookie: Self.driverCookie)]
        for vrf in instances.values { wanted += vrf.rules().flows }
        return ovs.differences(bridge: bridge, cookie: Self.driverCookie, wanted: wanted, groups: groupsInUse, groupName: "group")
    }

    /// The tunnel ports, the input rules that send encapsulated traffic to its table, then the canary.
    public func initialize() throws {
        try installPortsAndBaseRules()
        try ovs.apply([OVSClient.canaryRule(cookie: Self.driverCookie)], bridge: bridge)
    }

    /// After ovs-vswitchd lost the rules (a restart, or the bridge wiped): the ports again (their
    /// numbers may change), the base rules, every VRF's rules and groups, and the canary last, so
    /// that a failure half-way is tried again at the next check.
    public func reconcile() throws -> String? {
        guard try !ovs.hasCanary(bridge: bridge, cookie: Self.driverCookie) else { return nil }
        try installPortsAndBaseRules()
        var rules = 0
        for vrf in instances.values.sorted(by: { $0.id < $1.id }) { rules += try vrf.reinstall() }
        try ovs.apply([OVSClient.canaryRule(cookie: Self.driverCookie)], bridge: bridge)
        return "\(bridge) had lost its rules (ovs-vswitchd restarted?): installed again its base rules and \(rules) rules of \(instances.count) VRF(s)"
    }

    func installPortsAndBaseRules() throws {
        var commands: [[String]] = []
        if mode == .gre {
            commands += [
                ["--may-exist", "add-port", bridge, options.greTunnel],
                ["set", "Interface", options.greTunnel, "type=gre", "options:local_ip=\(localAddress)", "options:remote_ip=flow"] + options.greOptions.map { "options:\($0)" },
            ]
        }
        if vxlan {
            commands += [
                ["--may-exist", "add-port", bridge, "vxlan"],
                ["set", "Interface", "vxlan", "type=vxlan", "options:local_ip=\(localAddress)", "options:remote_ip=flow", "options:key=flow"],
            ]
        }
        try ovs.vsctl(commands)
        mplsPort = try ovs.ofport(mode == .gre ? options.greTunnel : options.mplsInterface ?? "")
        vxlanPort = vxlan ? try ovs.ofport("vxlan") : nil
        try ovs.apply(baseRules(), bridge: bridge)
        if mode == .bareMPLS, let i = options.mplsInterface { mplsMAC = try? NetlinkSocket().link(named: i)?.address }
    }

    /// Encapsulated traffic from the tunnel ports to its table.
    func baseRules() -> [OVSClient.Change] {
        var changes: [OVSClient.Change] = []
        if let p = mplsPort { changes.append(.addFlow("table=\(options.inputTable),priority=\(0x9000),cookie=\(Self.driverCookie),in_port=\(p),mpls actions=resubmit(,\(options.encapsulationTable))")) }
        if let p = vxlanPort { changes.append(.addFlow("table=\(options.inputTable),priority=\(0x9000),cookie=\(Self.driverCookie),in_port=\(p) actions=resubmit(,\(options.encapsulationTable))")) }
        return changes
    }

    public var directions: Set<Direction> { [.both, .toPort, .fromPort] }

    public func flush() {
        do { try ovs.flush() } catch { logger.warning("\(bridge): \(error)") }
    }

    public func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        let vrf = OVSVRF(driver: self, id: id, gateway: options.gateway.map { IPPrefix(.v4($0), length: options.prefixLength ?? 32) })
        instances[id] = vrf
        return vrf
    }

    /// The MAC of a remote PE on the bare-MPLS link (the original used fping and `ip neigh`).
    func resolveMAC(_ pe: IPv4Address) throws -> MACAddress {
        if let mac = peMACs[pe] { return mac }
        let netlink = try NetlinkSocket()
        for attempt in 0..<3 {
            // Any state with a usable address: REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT.
            if let mac = try netlink.neighbours().first(where: { $0.ip == .v4(pe) && $0.mac != nil && $0.state & 0xDE != 0 })?.mac {
                peMACs[pe] = mac
                return mac
            }
            if attempt < 2 { _ = try? ovs.run("ping", ["-c", "1", "-W", "1", "\(pe)"]) }
        }
        throw DataplaneNotSupported("bare MPLS to \(pe): its MAC cannot be resolved (need a direct MPLS/Ethernet connection)")
    }

    public var lookingGlass: JSONValue {
        .object(commonLookingGlass + [
            ("ovs_bridge", .string(bridge)), ("mpls_interface", options.mplsInterface.map { .string($0) } ?? .null),
            ("gre", .object([("enabled", .bool(mode == .gre)), ("gre_tunnel_port", .string(options.greTunnel)), ("vxlan_tunnel_port", .string("vxlan"))])),
            ("vxlan", .object([("enabled", .bool(vxlan))])), ("ovs_version", ovs.version().map { .string($0) } ?? .null),
            ("tables", .object([("input", JSONValue(options.inputTable)), ("encapsulation", JSONValue(options.encapsulationTable)), ("vrf", JSONValue(options.vrfTable))])),
        ])
    }
}
