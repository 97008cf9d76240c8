import BGPEngine
import BGPSession
import BGPWire
import Dataplane

/// An E-VPN instance (EVI, reference §8.4). At creation it advertises an inclusive-multicast
/// (type 3) route with an ingress-replication PMSI tunnel, and per endpoint a MAC/IP (type 2) route
/// with the instance VNI. Its best remote routes become dataplane state: MACs towards VTEPs, and the
/// flood list.
///
/// Beyond the original:
/// - remote MAC/IP routes are tracked per (MAC, IP), not per MAC, so that every IP of a MAC reaches
///   the dataplane (ARP/ND proxy entries); drivers count references to the MAC's FDB entry;
/// - MAC mobility (RFC 7432 §15): a MAC plugged here while another PE advertises it is advertised
///   with that PE's sequence number plus one; among received routes the highest sequence number
///   wins; and when another PE advertises one of our MACs with a higher number, the MAC has moved
///   there: our route is withdrawn and traffic follows the other PE's route.
public final class EVPNInstance: VPNInstance {
    override class var subscribedFamilies: [AddressFamily] { [.evpn] }
    override class var namePrefix: String { "EVI" }

    /// RFC 7432 §15.2: the higher sequence number first, then the usual comparison.
    override class func comparison(ecmp: Bool, salt: String) -> BestRouteTracker<TrackedEntry>.Comparison {
        let base = super.comparison(ecmp: ecmp, salt: salt)
        return { a, b in
            let (x, y) = (EVPNInstance.sequence(a.attributes.attributes), EVPNInstance.sequence(b.attributes.attributes))
            return x != y ? (x > y ? 1 : -1) : base(a, b)
        }
    }

    /// The VNI: the label field of our routes (raw 24 bits, RFC 8365).
    public var vni: UInt32 { label }
    /// The sequence number each local MAC is advertised with.
    var sequences: [MACAddress: UInt32] = [:]
    /// Local MACs another PE advertises with a higher sequence number: moved away.
    var movedAway: Set<MACAddress> = []
    /// The VRF this EVI is linked into (reference §8.6): its gateway port and the VRF.
    public internal(set) var gatewayPort: (linuxif: String, vrf: IPVPNInstance)?

    public init(
        id: UInt32, externalID: String, vni: UInt32, routeDistinguisher: RouteDistinguisher, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity],
        engine: RouteEngine, driver: any DataplaneDriver, bgpAddress: IPv4Address, salt: String,
        options: InstanceOptions = InstanceOptions()
    ) throws {
        try super.init(
            id: id, externalID: externalID, label: vni, routeDistinguisher: routeDistinguisher, importRTs: importRTs, exportRTs: exportRTs, engine: engine,
            driver: driver, bgpAddress: bgpAddress, salt: salt, options: options)
        advertiseInstanceRoutes()
    }

    var inclusiveMulticastRoute: NLRIElement {
        NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: routeDistinguisher, originatingRouter: .v4(bgpAddress)))))
    }

    override func advertiseInstanceRoutes() {
        guard !exportRTs.isEmpty else { return }
        let pmsi = PathAttribute(.pmsiTunnel(.ingressReplication(endpoint: .v4(driver.localAddress), labelField: vni)))
        engine.advertise(from: worker, family: .evpn, inclusiveMulticastRoute, nextHop: .ipv4(bgpAddress), attributes: attributes(localPref: nil, more: [pmsi]))
    }

    override func withdrawInstanceRoutes() { engine.withdraw(from: worker, family: .evpn, inclusiveMulticastRoute) }

    func macRoute(_ endpoint: Endpoint) -> NLRIElement {
        NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: routeDistinguisher, mac: endpoint.mac, ip: endpoint.ip, labelField1: vni))))
    }

    // MARK: Endpoints

    /// The MAC/IP route, with the instance RD and VNI whatever the placement says; none while the
    /// MAC has moved to another PE.
    override func endpointRoute(_ endpoint: Endpoint, _ placement: Placement) -> (family: AddressFamily, element: NLRIElement)? {
        movedAway.contains(endpoint.mac) ? nil : (.evpn, macRoute(endpoint))
    }

    override func endpointCommunities(_ endpoint: Endpoint, _ placement: Placement) -> [ExtendedCommunity] {
        let sequence = sequences[endpoint.mac] ?? 0
        return sequence > 0 ? [.macMobility(sequence: sequence)] : []
    }

    /// Plugs an endpoint and advertises its MAC/IP route (unless `from-port`).
    public func plug(_ endpoint: Endpoint, localPref: UInt32?) throws {
        try plug(endpoint, Placement(prefix: nil, routeDistinguisher: routeDistinguisher, localPref: localPref))
    }

    public override func plug(_ endpoint: Endpoint, _ placement: Placement) throws {
        let mac = endpoint.mac
        let isNew = !plugged.keys.contains { $0.mac == mac }
        if isNew {
            // RFC 7432 §15.1: a MAC another PE advertises has moved here.
            let received = receivedRoutes(for: mac)
            sequences[mac] = received.isEmpty ? 0 : (received.map { Self.sequence($0.attributes.attributes) }.max() ?? 0) + 1
            movedAway.remove(mac)
        }
        try super.plug(endpoint, placement)
        if isNew { reconcileDataplane(for: mac) }
    }

    public func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        try unplug(endpoint, Placement(prefix: nil, routeDistinguisher: routeDistinguisher, localPref: nil), lastEndpointOfPort: lastEndpointOfPort)
    }

    public override func unplug(_ endpoint: Endpoint, _ placement: Placement, lastEndpointOfPort: Bool) throws {
        try super.unplug(endpoint, placement, lastEndpointOfPort: lastEndpointOfPort)
        let mac = endpoint.mac
        if !plugged.keys.contains(where: { $0.mac == mac }) {
            sequences[mac] = nil
            movedAway.remove(mac)
            reconcileDataplane(for: mac)
        }
    }

    /// Routes received for a MAC, every IP of it.
    func receivedRoutes(for mac: MACAddress) -> [RouteEngine.Route] {
        tracker.entries.flatMap { entry -> [RouteEngine.Route] in
            if case .mac(let m, _) = entry, m == mac { return tracker.allRoutes(entry) }
            return []
        }
    }

    /// A MAC plugged here (and not moved away) is reached locally: remote routes for it stay tracked
    /// but out of the dataplane.
    func isLocal(_ mac: MACAddress) -> Bool { sequences[mac] != nil && !movedAway.contains(mac) }

    /// Brings the dataplane's entries for a MAC in line with its best routes and whether it is local.
    func reconcileDataplane(for mac: MACAddress) {
        for entry in tracker.entries {
            guard case .mac(let m, _) = entry, m == mac else { continue }
            let wanted = Set(tracker.bestRoutes(entry).compactMap { installation($0) })
            let have = Set(tracker.allRoutes(entry).compactMap { installation($0, forRemoval: true) }).intersection(installed)
            for case .remote(let r) in have.subtracting(wanted) {
                installed.remove(.remote(r))
                do { try dataplane.remove(r) } catch { logger.warning("\(name): the dataplane could not remove \(r.destination): \(error)") }
            }
            for case .remote(let r) in wanted.subtracting(have) {
                do {
                    try dataplane.setUp(r)
                    installed.insert(.remote(r))
                } catch {
                    logger.warning("\(name): the dataplane refused \(r.destination): \(error)")
                }
            }
        }
    }

    // MARK: Routes we receive

    /// The MAC mobility sequence number of a route (0 without the community).
    static func sequence(_ attributes: [PathAttribute]) -> UInt32 {
        for c in attributes.extendedCommunities { if case .macMobility(let s, _) = c.kind { return s } }
        return 0
    }

    override func entry(_ route: RouteEngine.Route) -> TrackedEntry? {
        switch route.element.nlri {
        case .evpn(.macIPAdvertisement(let r)): .mac(r.mac, ip: r.ip)
        case .evpn(.inclusiveMulticast(let r)): .flood(originator: r.originatingRouter, routeDistinguisher: r.routeDistinguisher)
        default: nil  // other route types are not used (no multihoming, no type 5)
        }
    }

    override func isUsable(_ route: RouteEngine.Route, entry: TrackedEntry) -> Bool { installation(route, forRemoval: true) != nil }

    override func installation(_ route: RouteEngine.Route, forRemoval: Bool = false) -> Installation? {
        let encapsulations = driver.usableEncapsulations(route.attributes.attributes.extendedCommunities)
        guard !encapsulations.isEmpty else { return nil }
        switch route.element.nlri {
        case .evpn(.macIPAdvertisement(let r)):
            guard let pe = Self.ipv4(route.attributes.nextHop), forRemoval || !isLocal(r.mac) else { return nil }
            return .remote(RemoteEndpoint(destination: .mac(r.mac, ip: r.ip), remotePE: pe, label: r.labelField1 & 0xFF_FFFF, encapsulations: encapsulations, loadBalancingOrder: 0))
        case .evpn(.inclusiveMulticast):
            // Flooding needs an ingress-replication PMSI tunnel naming the remote VTEP.
            guard let pmsi = route.attributes.attributes.pmsiTunnel, pmsi.tunnelType == .ingressReplication, pmsi.tunnelIdentifier.count == 4 else { return nil }
            let t = pmsi.tunnelIdentifier
            return .flood(FloodEndpoint(remotePE: IPv4Address(t[0], t[1], t[2], t[3]), vni: pmsi.labelField & 0xFF_FFFF, encapsulations: encapsulations))
        default:
            return nil
        }
    }

    /// A received route for one of our MACs with a higher sequence number: the MAC moved to that PE;
    /// our routes for it are withdrawn and the dataplane follows the other PE.
    /// When the other PE withdraws it while it is still plugged here, it is ours again, with a
    /// higher sequence number.
    override func bestRoutesChanged(_ call: BestRouteTracker<TrackedEntry>.Call) {
        if case .bestRemoved(.mac(let mac, _), let route, last: true) = call, movedAway.contains(mac), receivedRoutes(for: mac).isEmpty {
            movedAway.remove(mac)
            sequences[mac] = Self.sequence(route.attributes.attributes) + 1
            logger.notice("\(name): MAC \(mac) is back here (sequence \(sequences[mac] ?? 0))")
            for (_, p) in plugged where p.endpoint.mac == mac { advertise(p.endpoint, p.placement) }
            reconcileDataplane(for: mac)
            return
        }
        guard case .newBest(.mac(let mac, _), let route) = call, let ours = sequences[mac], !movedAway.contains(mac) else { return }
        let theirs = Self.sequence(route.attributes.attributes)
        guard theirs > ours else { return }
        logger.notice("\(name): MAC \(mac) moved to \(route.attributes.nextHop) (sequence \(theirs) > \(ours)); withdrawing our route")
        movedAway.insert(mac)
        for (_, o) in advertised {
            if case .evpn(.macIPAdvertisement(let r)) = o.element.nlri, r.mac == mac { withdrawEndpointRoute(o.element) }
        }
        reconcileDataplane(for: mac)
    }

    // MARK: Gateway port (EVI linked into a VRF)

    func setGatewayPort(_ linuxif: String, vrf: IPVPNInstance) throws {
        try dataplane.setGatewayPort(linuxif, gateway: vrf.gateway)
        gatewayPort = (linuxif, vrf)
    }

    func gatewayPortDown() {
        guard let port = gatewayPort else { return }
        try? dataplane.gatewayPortDown(port.linuxif)
        gatewayPort = nil
    }

    override func lookingGlassFields(href: (String) -> JSONValue) -> [(String, JSONValue)] {
        guard let port = gatewayPort else { return [("gateway_port", .null)] }
        return [("gateway_port", .object([
            ("interface", .string(port.linuxif)),
            ("ipvpn", .object([("href", href(port.vrf.externalID)), ("id", .string(port.vrf.name)), ("external_instance_id", .string(port.vrf.externalID))])),
        ]))]
    }
}
