import BGPWire
import Dataplane
import Logging
import Netlink

#if canImport(Glibc)
import Glibc
#endif

/// The IP VPN `linux` driver. Kernels without MPLS routing (this project's test machines) forward IP
/// VPN traffic over VXLAN instead (encapsulation extended community VXLAN, the route's label as
/// VNI):
/// - per VRF a routing table, which policy rules select for the VRF's ports (`iif`) and for the
///   VNIs of its endpoints (`tun_id`, traffic coming in decapsulated);
/// - one VXLAN device in external (collect-metadata) mode for every VRF; a remote prefix is a route
///   `encap ip id <VNI> dst <remote PE> via <remote PE> dev <it> onlink` (one next hop per PE: ECMP),
///   the remote PE's router MAC a neighbour entry on the device;
/// - a local endpoint is a host route to its port with a neighbour entry for its MAC; the VRF's
///   gateway address is on each port, which answers ARP for the gateway and, by proxy, for the rest;
/// - traffic classifiers (flowspec redirection) are rules before the ports' own.
/// Everything carries protocol 19 (routes and rules) or the alias `bagpipe:ipvpn` (the device), which
/// is how `resetState` finds and removes what an earlier run left, and after a graceful restart how
/// the VRFs made again take it over as it is and `sweepStale` finds what none took over
/// (LinuxIPVPNDriver+Consistency.swift).
///
/// Each host's VXLAN device has a MAC derived from its address (02:b9:<address>): a VXLAN device drops
/// frames whose source MAC is its own, and peers compute the MAC to send to from the next hop.
public final class LinuxIPVPNDriver: DataplaneDriver {
    public let vpnType = VPNType.ipvpn
    public let encapsulations: [TunnelType] = [.vxlan]
    public let supportsECMP = true
    public let localAddress: IPv4Address
    /// `vxlan_dst_port`: 4790 by default; an external-mode device cannot share the E-VPN devices' 4789.
    public let vxlanPort: UInt16
    let netlink: NetlinkSocket
    let logger: Logger
    var instances: [UInt32: LinuxVRF] = [:]
    var deviceIndex: Int32 = 0
    /// Neighbour entries of remote PEs on the device, by the routes using them.
    var peUsers: [IPv4Address: Int] = [:]
    /// Rules an earlier run left (`adoptState`), which a VRF takes over instead of adding them again
    /// (a rule added twice is there twice).
    var adoptedRules: Set<String> = []

    public static let alias = "bagpipe:ipvpn"
    public static let deviceName = "bgp-vxip"
    /// Rule priorities: classifiers before ports, ports and VNIs after the local table (0).
    static let classifierPriority: UInt32 = 900, portPriority: UInt32 = 1000, vniPriority: UInt32 = 1001
    /// Table ids: 1,000,000 + the VRF's label (labels are below 2^20).
    static func table(_ label: UInt32) -> UInt32 { 1_000_000 + label }

    public init(localAddress: IPv4Address, options: [String: String], netlink: NetlinkSocket? = nil) throws {
        self.localAddress = localAddress
        logger = DataplaneDrivers.logger(.ipvpn)
        vxlanPort = try DataplaneDrivers.udpPort(options, "vxlan_dst_port", type: .ipvpn) ?? 4790
        self.netlink = try netlink ?? NetlinkSocket()
    }

    /// The router MAC of a PE: 02:b9 and its IPv4 address.
    public static func routerMAC(_ address: IPv4Address) -> MACAddress { MACAddress(0x02b9_0000_0000 | UInt64(address.value)) }

    /// Rules and routes with protocol 19, and our VXLAN device.
    public func resetState() throws {
        let rules = try netlink.rules().filter { $0.protocolID == bagpipeRouteProtocol }
        let routes = try netlink.routes().filter { $0.protocolID == bagpipeRouteProtocol }
        let devices = try netlink.links().filter { $0.alias == Self.alias }
        var requests = rules.map(RuleRequests.delete) + routes.map(RouteRequests.delete)
        requests += devices.map { LinkRequests.delete($0.index, name: $0.name) }
        for case .failure(let e) in netlink.perform(requests) { logger.warning("reset: \(e)") }
        if !requests.isEmpty { logger.notice("removed what an earlier run left: \(rules.count) rules, \(routes.count) routes, \(devices.count) devices") }
    }

    /// The shared VXLAN device, and IPv4 forwarding.
    public func initialize() throws {
        // Ours from before a restart: taken over as it is (its routes point at its ifindex).
        let existing = try netlink.link(named: Self.deviceName)
        if existing.map({ $0.alias != Self.alias || !$0.vxlanExternal || ($0.vxlanPort ?? vxlanPort) != vxlanPort }) ?? true {
            if let stale = existing { try netlink.perform(LinkRequests.delete(stale.index, name: stale.name)) }
            try netlink.performAll(LinkRequests.createVXLAN(Self.deviceName, VXLANOptions(vni: nil, local: localAddress, port: vxlanPort), alias: Self.alias))
        }
        guard let device = try netlink.link(named: Self.deviceName) else { throw DataplaneNotSupported("\(Self.deviceName) missing after creation") }
        deviceIndex = device.index
        try netlink.perform(LinkRequests.set(device.index, name: Self.deviceName, up: true, address: Self.routerMAC(localAddress)))
        try Sysctl.set("net/ipv4/ip_forward", "1")
        try Sysctl.set("net/ipv4/conf/\(Self.deviceName)/rp_filter", "0")
        logger.info("IP VPN over VXLAN: \(Self.deviceName) (external, port \(vxlanPort)), router MAC \(Self.routerMAC(localAddress))")
    }

    /// The shared VXLAN device goes with the last VRF (the daemon stops).
    public func stop() {
        guard deviceIndex != 0 else { return }
        for case .failure(let e) in netlink.perform([LinkRequests.delete(deviceIndex, name: Self.deviceName)]) { logger.warning("stop: \(e)") }
        (deviceIndex, peUsers) = (0, [:])
    }

    public func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        if deviceIndex == 0 { try initialize() }
        let vrf = LinuxVRF(driver: self, id: id, externalID: externalID, table: Self.table(label), gateway: options.gateway.map { IPPrefix(.v4($0), length: options.prefixLength ?? 32) })
        instances[id] = vrf
        return vrf
    }

    /// The veth pair of an E-VPN to VRF link, tagged as ours.
    public func createGatewayLink(_ link: GatewayLink) throws {
        for existing in try netlink.links() where existing.name == link.eviSide || existing.name == link.vrfSide {
            _ = netlink.perform([LinkRequests.delete(existing.index, name: existing.name)])
        }
        try netlink.performAll(LinkRequests.createVeth(link.eviSide, peer: link.vrfSide, alias: Self.alias, mtu: 65535))
        for name in [link.eviSide, link.vrfSide] {
            if let l = try netlink.link(named: name) { try netlink.perform(LinkRequests.set(l.index, name: name, up: true)) }
        }
    }

    public func deleteGatewayLink(_ link: GatewayLink) {
        if let l = try? netlink.link(named: link.vrfSide) { _ = netlink.perform([LinkRequests.delete(l.index, name: link.vrfSide)]) }
    }

    /// The port of this host's VRF that `label` leads to and that holds an address of `prefix`.
    func localPort(label: UInt32, prefix: IPPrefix) -> Int32? {
        for vrf in instances.values where vrf.labels[label] != nil {
            for (name, endpoints) in vrf.ports where endpoints.contains(where: { $0.ip.map { Self.covers(prefix, $0) } ?? false }) {
                if let index = try? netlink.link(named: name)?.index { return index }
            }
        }
        return nil
    }

    static func covers(_ prefix: IPPrefix, _ ip: IPAddress) -> Bool {
        guard case .v4(let p) = prefix.address, case .v4(let a) = ip else { return prefix == IPPrefix(ip, length: UInt8(ip.bitWidth)) }
        let mask: UInt32 = prefix.length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(min(prefix.length, 32)))
        return p.value & mask == a.value & mask
    }

    /// A remote PE's router MAC on the device, counted by its routes.
    func usePE(_ pe: IPv4Address) -> [NetlinkRequest] {
        peUsers[pe, default: 0] += 1
        return peUsers[pe] == 1 ? [NeighbourRequests.replace(.v4(pe), mac: Self.routerMAC(pe), device: deviceIndex, deviceName: Self.deviceName)] : []
    }

    func releasePE(_ pe: IPv4Address) -> [NetlinkRequest] {
        guard let n = peUsers[pe] else { return [] }
        peUsers[pe] = n > 1 ? n - 1 : nil
        return n == 1 ? [NeighbourRequests.delete(.v4(pe), device: deviceIndex, deviceName: Self.deviceName)] : []
    }

    public var lookingGlass: JSONValue {
        .object(commonLookingGlass + [("vxlan_device", .string(Self.deviceName)), ("vxlan_dst_port", JSONValue(vxlanPort)), ("router_mac", .string("\(Self.routerMAC(localAddress))"))])
    }
}

/// One VRF of the IP VPN `linux` driver.
final class LinuxVRF: DataplaneInstance {
    unowned let driver: LinuxIPVPNDriver
    let id: UInt32
    let externalID: String
    let table: UInt32
    let gateway: IPPrefix?
    /// Endpoints per port; the VNIs (labels) that lead here.
    var ports: [String: Set<Endpoint>] = [:]
    var labels: [UInt32: Int] = [:]
    /// Remote prefixes and their next hops (PE, VNI).
    var remotes: [IPPrefix: [RemoteEndpoint]] = [:]
    var classifiers: [TrafficClassifier: UInt32] = [:]
    var netlink: NetlinkSocket { driver.netlink }

    init(driver: LinuxIPVPNDriver, id: UInt32, externalID: String, table: UInt32, gateway: IPPrefix?) {
        self.driver = driver
        self.id = id
        self.externalID = externalID
        self.table = table
        self.gateway = gateway
    }

    func index(of port: String) throws -> Int32 {
        guard let link = try netlink.link(named: port) else { throw NetlinkError(what: "port \(port)", errno: 19) }
        return link.index
    }

    func portRule(_ port: String) -> Rule { Rule(priority: LinuxIPVPNDriver.portPriority, table: table, inputInterface: port) }
    func vniRule(_ label: UInt32) -> Rule { Rule(priority: LinuxIPVPNDriver.vniPriority, table: table, tunnelID: UInt64(label)) }

    func plug(_ endpoint: Endpoint) throws {
        guard let name = endpoint.port.linuxif else { throw DataplaneNotSupported("an IP VPN port without linuxif") }
        let port = try index(of: name)
        var requests: [NetlinkRequest] = []
        if ports[name] == nil {
            requests.append(LinkRequests.set(port, name: name, up: true))
            if let gateway { requests.append(AddressRequests.add(gateway, device: port, deviceName: name)) }
            requests += driver.add(portRule(name))
            requests += classifiers.flatMap { driver.add(classifierRule($0.key, port: name, to: $0.value)) }
        }
        labels[endpoint.label, default: 0] += 1
        if labels[endpoint.label] == 1 { requests += driver.add(vniRule(endpoint.label)) }
        if let ip = endpoint.ip {
            let host = IPPrefix(ip, length: UInt8(ip.bitWidth))
            requests.append(RouteRequests.replace(Route(table: table, prefix: host, nextHops: [RouteNextHop(device: port)])))
            requests.append(NeighbourRequests.replace(ip, mac: endpoint.mac, device: port, deviceName: name))
        }
        try netlink.performAll(requests)
        if ports[name] == nil {
            // Proxy ARP: the port answers for every destination the VRF routes elsewhere.
            try Sysctl.set("net/ipv4/conf/\(name)/proxy_arp", "1")
            try Sysctl.set("net/ipv4/conf/\(name)/proxy_arp_pvlan", "1")
            try Sysctl.set("net/ipv4/conf/\(name)/rp_filter", "0")
        }
        ports[name, default: []].insert(endpoint)
    }

    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        guard let name = endpoint.port.linuxif else { return }
        var requests: [NetlinkRequest] = []
        if let ip = endpoint.ip { requests.append(RouteRequests.delete(Route(table: table, prefix: IPPrefix(ip, length: UInt8(ip.bitWidth)), nextHops: []))) }
        if let n = labels[endpoint.label] {
            labels[endpoint.label] = n > 1 ? n - 1 : nil
            if n == 1 { requests.append(RuleRequests.delete(vniRule(endpoint.label))) }
        }
        ports[name]?.remove(endpoint)
        if lastEndpointOfPort || ports[name]?.isEmpty == true {
            ports[name] = nil
            requests.append(RuleRequests.delete(portRule(name)))
            requests += classifiers.map { RuleRequests.delete(classifierRule($0.key, port: name, to: $0.value)) }
            if let gateway, let port = try? index(of: name) { requests.append(AddressRequests.delete(gateway, device: port, deviceName: name)) }
        }
        for case .failure(let e) in netlink.perform(requests) { driver.logger.warning("VRF \(id) unplug: \(e)") }
    }

    /// The route of a prefix with all its next hops (one per remote PE and VNI: ECMP). A route of
    /// another VRF of this host (its next hop is our own address, which the kernel refuses as a
    /// gateway) goes straight to that VRF's port of the address.
    func routeRequest(_ prefix: IPPrefix) -> NetlinkRequest {
        var hops: [RouteNextHop] = []
        for r in remotes[prefix] ?? [] {
            if r.remotePE == driver.localAddress {
                if let device = driver.localPort(label: r.label, prefix: prefix) { hops.append(RouteNextHop(device: device)) }
            } else {
                hops.append(RouteNextHop(device: driver.deviceIndex, gateway: .v4(r.remotePE), tunnel: (UInt64(r.label), r.remotePE), onLink: true))
            }
        }
        return hops.isEmpty ? RouteRequests.delete(Route(table: table, prefix: prefix, nextHops: [])) : RouteRequests.replace(Route(table: table, prefix: prefix, nextHops: hops))
    }

    func setUp(_ remote: RemoteEndpoint) throws {
        guard case .prefix(let prefix) = remote.destination, prefix.isIPv4 else { return }
        guard !(remotes[prefix] ?? []).contains(remote) else { return }
        remotes[prefix, default: []].append(remote)
        try netlink.performAll((remote.remotePE == driver.localAddress ? [] : driver.usePE(remote.remotePE)) + [routeRequest(prefix)])
    }

    func remove(_ remote: RemoteEndpoint) throws {
        guard case .prefix(let prefix) = remote.destination, let i = remotes[prefix]?.firstIndex(of: remote) else { return }
        remotes[prefix]?.remove(at: i)
        let request = routeRequest(prefix)
        if remotes[prefix]?.isEmpty == true { remotes[prefix] = nil }
        try netlink.performAll([request] + (remote.remotePE == driver.localAddress ? [] : driver.releasePE(remote.remotePE)))
    }

    /// A classifier rule for one port of this VRF, to the redirect VRF's table.
    func classifierRule(_ c: TrafficClassifier, port: String, to instance: UInt32) -> Rule {
        Rule(
            priority: LinuxIPVPNDriver.classifierPriority, table: driver.instances[instance]?.table ?? 0, inputInterface: port, source: c.sourcePrefix, destination: c.destinationPrefix,
            ipProtocol: c.ipProtocol, sourcePorts: c.sourcePort.map { $0.lower...$0.upper }, destinationPorts: c.destinationPort.map { $0.lower...$0.upper })
    }

    func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws {
        guard driver.instances[instance] != nil else { throw DataplaneNotSupported("redirect to an instance of another driver") }
        classifiers[classifier] = instance
        try netlink.performAll(ports.keys.flatMap { driver.add(classifierRule(classifier, port: $0, to: instance)) })
    }

    func removeTrafficClassifier(_ classifier: TrafficClassifier) throws {
        guard let instance = classifiers.removeValue(forKey: classifier) else { return }
        try netlink.performAll(ports.keys.map { RuleRequests.delete(classifierRule(classifier, port: $0, to: instance)) })
    }

    /// Rules, routes, addresses of this VRF go.
    func cleanup() {
        var requests: [NetlinkRequest] = []
        for name in ports.keys {
            requests.append(RuleRequests.delete(portRule(name)))
            requests += classifiers.map { RuleRequests.delete(classifierRule($0.key, port: name, to: $0.value)) }
            if let gateway, let port = try? index(of: name) { requests.append(AddressRequests.delete(gateway, device: port, deviceName: name)) }
        }
        requests += labels.keys.map { RuleRequests.delete(vniRule($0)) }
        if let routes = try? netlink.routes(table: table) { requests += routes.map(RouteRequests.delete) }
        for remote in remotes.values.joined() { requests += driver.releasePE(remote.remotePE) }
        for case .failure(let e) in netlink.perform(requests) { driver.logger.warning("VRF \(id) cleanup: \(e)") }
        (ports, labels, remotes, classifiers) = ([:], [:], [:], [:])
        driver.instances[id] = nil
    }

    var lookingGlass: JSONValue {
        let routes = (try? netlink.routes(table: table)) ?? []
        return .object([
            ("route_table", JSONValue(table)), ("ports", .array(ports.keys.sorted().map { .string($0) })),
            ("routes", .array(routes.map { r in .string("\(r.prefix) " + r.nextHops.map { h in h.tunnel.map { "encap ip id \($0.id) dst \($0.destination)" } ?? "dev \(h.device)" }.joined(separator: " | ")) })),
            ("classifiers", .array(classifiers.map { .string("\($0.key) -> VRF \($0.value)") }.sorted { $0.serialized() < $1.serialized() })),
        ])
    }
}

/// Writes under /proc/sys (of this network namespace).
enum Sysctl {
    static func set(_ key: String, _ value: String) throws {
        let path = "/proc/sys/" + key
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError(what: "sysctl \(String(key.map { $0 == "/" ? "." : $0 }))", errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw NetlinkError(what: "sysctl \(String(key.map { $0 == "/" ? "." : $0 })) = \(value)", errno: errno) }
    }
}
