import BGPWire
import Dataplane
import Logging
import Netlink

#if canImport(Glibc)
import Glibc
#endif

/// The E-VPN `linux` driver (reference §9.4, over netlink instead of one process per command): per
/// E-VPN instance a Linux bridge and a VXLAN device (VNI = the instance's, no learning, local
/// address = the dataplane address); VM ports join the bridge; a remote MAC is an FDB entry towards
/// its VTEP on the VXLAN device (and on the bridge, so that it forwards there only); a remote VTEP
/// of the flood list is an all-zeros FDB entry. A MAC that moves is re-pointed with one replace.
///
/// ARP and ND: the IPs of remote MACs are neighbour entries of the bridge, whose VXLAN port has
/// neighbour suppression: a request for a known address is answered locally, any other is flooded.
/// (The original set the VXLAN device's `proxy` flag instead, with which the kernel drops every ARP
/// packet it cannot answer: no ARP could cross to a VTEP that advertises MACs without their IPs,
/// such as FRR without an SVI.)
///
/// What it creates is tagged with the interface alias `bagpipe:evpn:<external id>`, so that
/// `resetState` (start-up, `bagpipe-bgp-cleanup`) removes exactly what an earlier run left, and
/// nothing else. After a graceful restart (`adoptState`) an instance made again takes over its
/// bridge and VXLAN device as they are (same ifindexes, MACs and FDB: no packet lost), and
/// `sweepStale` removes what no instance took over (LinuxEVPNDriver+Consistency.swift).
public final class LinuxEVPNDriver: DataplaneDriver {
    public let vpnType = VPNType.evpn
    public let encapsulations: [TunnelType] = [.vxlan]
    public let supportsECMP = false
    public let localAddress: IPv4Address
    /// `vxlan_dst_port` (the original's option; 4789).
    public let vxlanPort: UInt16
    let netlink: NetlinkSocket
    let logger: Logger
    var instances: [UInt32: LinuxEVPNInstance] = [:]

    public static let aliasPrefix = "bagpipe:evpn:"

    /// `netlink`: a socket in another network namespace (benchmarks); this one's by default.
    public init(localAddress: IPv4Address, options: [String: String], netlink: NetlinkSocket? = nil) throws {
        self.localAddress = localAddress
        logger = DataplaneDrivers.logger(.evpn)
        vxlanPort = try DataplaneDrivers.udpPort(options, "vxlan_dst_port", type: .evpn) ?? 4789
        self.netlink = try netlink ?? NetlinkSocket()
    }

    /// Deletes the bridges and VXLAN devices an earlier run created (by their alias).
    public func resetState() throws {
        let stale = try netlink.links().filter { $0.alias?.hasPrefix(Self.aliasPrefix) == true && ($0.kind == "vxlan" || $0.kind == "bridge") }
        // VXLAN devices first: a bridge goes with its ports detached.
        let ordered = stale.filter { $0.kind == "vxlan" } + stale.filter { $0.kind == "bridge" }
        for case .failure(let e) in netlink.perform(ordered.map { LinkRequests.delete($0.index, name: $0.name) }) { logger.warning("reset: \(e)") }
        if !stale.isEmpty { logger.notice("removed \(stale.count) devices left by an earlier run: \(stale.map(\.name).joined(separator: " "))") }
    }

    public func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        let instance = try LinuxEVPNInstance(driver: self, id: id, externalID: externalID, vni: label, linuxbr: options.linuxbr)
        instances[id] = instance
        return instance
    }

    /// A stable short name for an external id (interface names hold 15 characters): the instance's
    /// bridge is `bgpe-<hash>`, its VXLAN device `bgpv-<hash>`.
    public static func shortName(_ prefix: String, _ externalID: String) -> String {
        var h: UInt32 = 0x811c_9dc5
        for b in externalID.utf8 {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        let hex = String(h, radix: 16)
        return prefix + String(repeating: "0", count: 8 - hex.count) + hex
    }

    public func createGatewayLink(_ link: GatewayLink) throws {}

    public var lookingGlass: JSONValue { .object(commonLookingGlass + [("vxlan_dst_port", JSONValue(vxlanPort))]) }
}

final class LinuxEVPNInstance: DataplaneInstance {
    unowned let driver: LinuxEVPNDriver
    let id: UInt32
    let vni: UInt32
    let bridge: String
    let ownBridge: Bool
    let vxlan: String
    let ownVXLAN: Bool
    var bridgeIndex: Int32
    var vxlanIndex: Int32
    /// Remote MACs: the VTEP the FDB entry points to, and the routes that installed it.
    var remoteMACs: [MACAddress: (pe: IPv4Address, routes: Set<RemoteEndpoint>)] = [:]
    /// The gateway address of a linked VRF, a neighbour entry of the bridge (setGatewayPort).
    var gatewayNeighbour: IPAddress?
    var floodList: Set<IPv4Address> = []
    var ports: Set<String> = []
    var netlink: NetlinkSocket { driver.netlink }

    init(driver: LinuxEVPNDriver, id: UInt32, externalID: String, vni: UInt32, linuxbr: String?) throws {
        let alias = String((LinuxEVPNDriver.aliasPrefix + externalID).prefix(120))
        let links = try driver.netlink.links()
        let bridge = linuxbr ?? LinuxEVPNDriver.shortName("bgpe-", externalID)
        var requests: [NetlinkRequest] = []
        let ownBridge: Bool
        let bridgeLink = links.first { $0.name == bridge }
        if let existing = bridgeLink {
            guard existing.kind == "bridge" else { throw DataplaneNotSupported("\(bridge) exists and is not a bridge: an E-VPN instance") }
            ownBridge = existing.alias?.hasPrefix(LinuxEVPNDriver.aliasPrefix) == true
        } else {
            ownBridge = true
            requests += LinkRequests.createBridge(bridge, alias: alias)
        }
        // The original reused a VXLAN port of this VNI already on a given bridge.
        let vxlan: String, ownVXLAN: Bool
        if let b = bridgeLink, let reused = links.first(where: { $0.kind == "vxlan" && $0.vxlanID == vni && $0.master == b.index }) {
            // Ours when it is the one this instance created before a restart.
            (vxlan, ownVXLAN) = (reused.name, reused.alias == alias)
        } else {
            (vxlan, ownVXLAN) = (LinuxEVPNDriver.shortName("bgpv-", externalID), true)
            let existing = links.first { $0.name == vxlan }
            // Ours from before a restart, with this VNI and port: taken over as it is.
            let adopted = existing.map { $0.kind == "vxlan" && $0.alias == alias && $0.vxlanID == vni && ($0.vxlanPort ?? driver.vxlanPort) == driver.vxlanPort } ?? false
            if !adopted {
                if let stale = existing { requests.append(LinkRequests.delete(stale.index, name: vxlan)) }
                requests += LinkRequests.createVXLAN(vxlan, VXLANOptions(vni: vni, local: driver.localAddress, port: driver.vxlanPort), alias: alias)
            }
        }
        try driver.netlink.performAll(requests)
        let now = try driver.netlink.links()
        guard let b = now.first(where: { $0.name == bridge }), let v = now.first(where: { $0.name == vxlan }) else {
            throw DataplaneNotSupported("E-VPN instance \(externalID): \(bridge) or \(vxlan) missing after creation")
        }
        try driver.netlink.performAll([
            LinkRequests.set(v.index, name: vxlan, up: true, master: b.index), LinkRequests.setBridgePort(v.index, name: vxlan, neighbourSuppression: true),
        ])
        self.driver = driver
        self.id = id
        self.vni = vni
        (self.bridge, self.ownBridge, self.vxlan, self.ownVXLAN) = (bridge, ownBridge, vxlan, ownVXLAN)
        (bridgeIndex, vxlanIndex) = (b.index, v.index)
        driver.logger.info("EVI \(id) (\(externalID)): bridge \(bridge), VXLAN \(vxlan) VNI \(vni) port \(driver.vxlanPort)")
    }

    func index(of port: String) throws -> Int32 {
        guard let link = try netlink.link(named: port) else { throw NetlinkError(what: "port \(port)", errno: 19) }
        return link.index
    }

    func plug(_ endpoint: Endpoint) throws {
        guard let name = endpoint.port.linuxif else { throw DataplaneNotSupported("an E-VPN port without linuxif") }
        let port = try index(of: name)
        try netlink.performAll([
            LinkRequests.set(port, name: name, up: true, master: bridgeIndex),
            NeighbourRequests.fdb(endpoint.mac, device: port, deviceName: name, master: true),
        ])
        ports.insert(name)
    }

    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        guard let name = endpoint.port.linuxif, let port = try? index(of: name) else { return }
        _ = netlink.perform([NeighbourRequests.deleteFDB(endpoint.mac, device: port, deviceName: name, master: true)])
        if lastEndpointOfPort {
            ports.remove(name)
            if ownBridge { try netlink.perform(LinkRequests.set(port, name: name, master: 0)) }
        }
    }

    func setUp(_ remote: RemoteEndpoint) throws {
        guard case .mac(let mac, let ip) = remote.destination else { return }
        var requests: [NetlinkRequest] = []
        if let current = remoteMACs[mac], current.pe == remote.remotePE {
            remoteMACs[mac]?.routes.insert(remote)
        } else {
            // New, or moved to another VTEP: one replace each (the bridge's entry already points to the VXLAN device).
            requests.append(NeighbourRequests.fdb(mac, device: vxlanIndex, deviceName: vxlan, destination: remote.remotePE, vni: remote.label, master: false))
            if remoteMACs[mac] == nil { requests.append(NeighbourRequests.fdb(mac, device: vxlanIndex, deviceName: vxlan, master: true)) }
            remoteMACs[mac] = (remote.remotePE, [remote])
        }
        if let ip { requests.append(NeighbourRequests.replace(ip, mac: mac, device: bridgeIndex, deviceName: bridge)) }
        try netlink.performAll(requests)
    }

    func remove(_ remote: RemoteEndpoint) throws {
        guard case .mac(let mac, let ip) = remote.destination, var entry = remoteMACs[mac] else { return }
        var requests: [NetlinkRequest] = []
        if let ip, !entry.routes.contains(where: { $0 != remote && $0.destination == remote.destination }) {
            requests.append(NeighbourRequests.delete(ip, device: bridgeIndex, deviceName: bridge))
        }
        entry.routes.remove(remote)
        if entry.routes.isEmpty {
            remoteMACs[mac] = nil
            requests.append(NeighbourRequests.deleteFDB(mac, device: vxlanIndex, deviceName: vxlan, destination: entry.pe, master: false))
            requests.append(NeighbourRequests.deleteFDB(mac, device: vxlanIndex, deviceName: vxlan, master: true))
        } else {
            // Routes of the MAC through another VTEP stay (a move already re-pointed the entry).
            remoteMACs[mac] = entry
        }
        try netlink.performAll(requests)
    }

    func addFlood(_ flood: FloodEndpoint) throws {
        guard floodList.insert(flood.remotePE).inserted else { return }
        try netlink.perform(NeighbourRequests.fdb(MACAddress(0), device: vxlanIndex, deviceName: vxlan, destination: flood.remotePE, vni: flood.vni, master: false, append: true))
    }

    func removeFlood(_ flood: FloodEndpoint) throws {
        guard floodList.remove(flood.remotePE) != nil else { return }
        try netlink.perform(NeighbourRequests.deleteFDB(MACAddress(0), device: vxlanIndex, deviceName: vxlan, destination: flood.remotePE, master: false))
    }

    /// The VRF's side of the link holds the gateway address, and every host with this E-VPN and that
    /// VRF holds the same one: ARP for the gateway must be answered here, never by another host over
    /// VXLAN, nor by the bridge device itself (the address is local to this namespace). So the
    /// gateway is a neighbour entry of the bridge with a static FDB entry on the gateway port, whose
    /// neighbour suppression makes the bridge answer and not flood the request to the VXLAN port;
    /// and the bridge device answers ARP only for its own addresses (`arp_ignore = 1`; it has none).
    func setGatewayPort(_ linuxif: String, gateway: IPAddress) throws {
        let links = try netlink.links()
        guard let port = links.first(where: { $0.name == linuxif }) else { throw NetlinkError(what: "no interface \(linuxif)", errno: ENODEV) }
        try netlink.performAll([
            LinkRequests.set(port.index, name: linuxif, up: true, master: bridgeIndex), LinkRequests.setBridgePort(port.index, name: linuxif, neighbourSuppression: true),
        ])
        ports.insert(linuxif)
        try Sysctl.set("net/ipv4/conf/\(bridge)/arp_ignore", "1")
        if let mac = port.linkIndex.flatMap({ peer in links.first { $0.index == peer } })?.address {
            // The bridge answers from the neighbour entry only when it knows the MAC's port.
            try netlink.performAll([
                NeighbourRequests.fdb(mac, device: port.index, deviceName: linuxif, master: true),
                NeighbourRequests.replace(gateway, mac: mac, device: bridgeIndex, deviceName: bridge),
            ])
            gatewayNeighbour = gateway
        }
    }

    func gatewayPortDown(_ linuxif: String) throws {
        ports.remove(linuxif)
        if let gateway = gatewayNeighbour {
            _ = netlink.perform([NeighbourRequests.delete(gateway, device: bridgeIndex, deviceName: bridge)])
            gatewayNeighbour = nil
        }
        if let port = try? index(of: linuxif) { try netlink.perform(LinkRequests.set(port, name: linuxif, master: 0)) }
    }

    /// Our VXLAN device and bridge go (the original never deleted its own VXLAN device, quirk Q13);
    /// ports of a bridge we do not own are left on it.
    func cleanup() {
        var requests: [NetlinkRequest] = []
        if ownVXLAN { requests.append(LinkRequests.delete(vxlanIndex, name: vxlan)) } else {
            requests += remoteMACs.map { NeighbourRequests.deleteFDB($0.key, device: vxlanIndex, deviceName: vxlan, destination: $0.value.pe, master: false) }
            requests += floodList.map { NeighbourRequests.deleteFDB(MACAddress(0), device: vxlanIndex, deviceName: vxlan, destination: $0, master: false) }
        }
        if ownBridge { requests.append(LinkRequests.delete(bridgeIndex, name: bridge)) }
        for case .failure(let e) in netlink.perform(requests) { driver.logger.warning("EVI \(id) cleanup: \(e)") }
        driver.instances[id] = nil
        (remoteMACs, floodList, ports) = ([:], [], [])
    }

    var lookingGlass: JSONValue {
        .object([
            ("linux_bridge", .string(bridge)), ("vxlan_if", .string(vxlan)), ("vni", JSONValue(vni)),
            ("ports", .array(ports.sorted().map { .string($0) })),
            ("fdb", .array(remoteMACs.sorted { $0.key < $1.key }.map { .string("\($0.key) dst \($0.value.pe)") })),
            ("flood_list", .array(floodList.sorted().map { .string("\($0)") })),
        ])
    }
}
