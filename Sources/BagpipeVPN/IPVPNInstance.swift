import BGPEngine
import BGPSession
import BGPWire

/// An IP VPN instance (VRF, reference §8.3): per endpoint a VPNv4 route (the endpoint's address
/// as a /32 with the instance RD, or, with `advertise_subnet`, its prefix with a per-endpoint RD so
/// several ports and hosts can advertise it), labelled with the endpoint's port label; imported best
/// routes become dataplane routes (ECMP when the driver has it).
/// Readvertise, attract-traffic and flowspec redirection (§8.3) are not in this version.
public final class IPVPNInstance: VPNInstance {
    override class var family: AddressFamily { .ipv4VPN }
    override class var subscribedFamilies: [AddressFamily] { [.ipv4VPN, .ipv4FlowSpecVPN] }
    override class var namePrefix: String { "VRF" }

    /// The gateway address and the subnet length of the first attach.
    public let gateway: IPv4Address
    public let prefixLength: UInt8

    public init(
        id: UInt32, externalID: String, label: UInt32, routeDistinguisher: RouteDistinguisher, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity],
        gateway: IPv4Address, prefixLength: UInt8, engine: RouteEngine, driver: any DataplaneDriver, bgpAddress: IPv4Address, salt: String,
        options: InstanceOptions = InstanceOptions()
    ) throws {
        self.gateway = gateway
        self.prefixLength = prefixLength
        try super.init(
            id: id, externalID: externalID, label: label, routeDistinguisher: routeDistinguisher, importRTs: importRTs, exportRTs: exportRTs, engine: engine,
            driver: driver, bgpAddress: bgpAddress, salt: salt, options: options)
    }

    func route(_ prefix: IPPrefix, label: UInt32, routeDistinguisher: RouteDistinguisher) -> NLRIElement {
        NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [label]), routeDistinguisher: routeDistinguisher, prefix: prefix)))
    }

    /// The placement's prefix with its RD (the instance's for a /32, a per-endpoint one otherwise)
    /// and the endpoint's port label.
    override func endpointRoute(_ endpoint: Endpoint, _ placement: Placement) -> NLRIElement? {
        placement.prefix.map { route($0, label: endpoint.label, routeDistinguisher: placement.routeDistinguisher) }
    }

    override func endpointCommunities(_ placement: Placement) -> [ExtendedCommunity] { [.consistentHashSortOrder(placement.loadBalancingOrder)] }

    /// Plugs an endpoint and advertises `prefix` for it (unless `from-port`).
    public func plug(_ endpoint: Endpoint, prefix: IPPrefix, routeDistinguisher: RouteDistinguisher, localPref: UInt32?, loadBalancingOrder: UInt32) throws {
        try plug(endpoint, Placement(prefix: prefix, routeDistinguisher: routeDistinguisher, localPref: localPref, loadBalancingOrder: loadBalancingOrder))
    }

    public func unplug(_ endpoint: Endpoint, prefix: IPPrefix, routeDistinguisher: RouteDistinguisher, lastEndpointOfPort: Bool) throws {
        try unplug(endpoint, Placement(prefix: prefix, routeDistinguisher: routeDistinguisher, localPref: nil), lastEndpointOfPort: lastEndpointOfPort)
    }

    // MARK: Routes we receive

    override func entry(_ route: RouteEngine.Route) -> TrackedEntry? {
        if case .vpnPrefix(let p) = route.element.nlri { return .prefix(p.prefix) }
        return nil  // flowspec redirection is not in this version
    }

    /// Installed only with one label, an IPv4 next hop, an imported route target and an
    /// encapsulation in common with the driver.
    override func installation(_ route: RouteEngine.Route, forRemoval: Bool = false) -> Installation? {
        guard case .vpnPrefix(let p) = route.element.nlri, p.labels.count == 1, let pe = Self.ipv4(route.attributes.nextHop) else { return nil }
        guard forRemoval || !Set(route.attributes.routeTargetKeys).isDisjoint(with: importRTs.compactMap(RouteTargetKey.init)) else { return nil }
        let communities = route.attributes.attributes.extendedCommunities
        let encapsulations = driver.usableEncapsulations(communities)
        guard !encapsulations.isEmpty, let label = p.labels.labels.first else { return nil }
        var order: UInt32 = 0
        for c in communities { if case .consistentHashSortOrder(let o) = c.kind { order = o; break } }
        return .remote(RemoteEndpoint(destination: .prefix(p.prefix), remotePE: pe, label: label, encapsulations: encapsulations, loadBalancingOrder: order))
    }
}
