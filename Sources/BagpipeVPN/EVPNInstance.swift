import BGPEngine
import BGPSession
import BGPWire

/// An E-VPN instance (EVI, reference §8.4). At creation it advertises an inclusive-multicast
/// (type 3) route with an ingress-replication PMSI tunnel, and per endpoint a MAC/IP (type 2) route
/// with the instance VNI. Its best remote routes become dataplane state: MACs towards VTEPs, and the
/// flood list.
///
/// Unlike the original, remote MAC/IP routes are tracked per (MAC, IP), not per MAC, so that every
/// IP of a MAC reaches the dataplane (ARP/ND proxy entries); drivers count references to the MAC's
/// FDB entry.
public final class EVPNInstance: VPNInstance {
    override class var family: AddressFamily { .evpn }
    override class var namePrefix: String { "EVI" }

    /// The VNI: the label field of our routes (raw 24 bits, RFC 8365).
    public var vni: UInt32 { label }

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
        NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: routeDistinguisher, mac: endpoint.mac, ip: endpoint.ip.map { .v4($0) }, labelField1: vni))))
    }

    // MARK: Endpoints

    /// The MAC/IP route, with the instance RD and VNI whatever the placement says.
    override func endpointRoute(_ endpoint: Endpoint, _ placement: Placement) -> NLRIElement? { macRoute(endpoint) }

    /// Plugs an endpoint and advertises its MAC/IP route (unless `from-port`).
    public func plug(_ endpoint: Endpoint, localPref: UInt32?) throws {
        try plug(endpoint, Placement(prefix: nil, routeDistinguisher: routeDistinguisher, localPref: localPref))
    }

    public func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        try unplug(endpoint, Placement(prefix: nil, routeDistinguisher: routeDistinguisher, localPref: nil), lastEndpointOfPort: lastEndpointOfPort)
    }

    // MARK: Routes we receive

    override func entry(_ route: RouteEngine.Route) -> TrackedEntry? {
        switch route.element.nlri {
        case .evpn(.macIPAdvertisement(let r)): .mac(r.mac, ip: r.ip)
        case .evpn(.inclusiveMulticast(let r)): .flood(originator: r.originatingRouter, routeDistinguisher: r.routeDistinguisher)
        default: nil  // other route types are not used (no multihoming, no type 5)
        }
    }

    override func installation(_ route: RouteEngine.Route, forRemoval: Bool = false) -> Installation? {
        let encapsulations = driver.usableEncapsulations(route.attributes.attributes.extendedCommunities)
        guard !encapsulations.isEmpty else { return nil }
        switch route.element.nlri {
        case .evpn(.macIPAdvertisement(let r)):
            guard let pe = Self.ipv4(route.attributes.nextHop) else { return nil }
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
}
