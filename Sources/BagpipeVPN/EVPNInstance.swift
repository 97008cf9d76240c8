import BGPEngine
import BGPSession
import BGPWire

/// An E-VPN instance (EVI, reference §8.4) as a local worker of the route engine. It advertises
/// an inclusive-multicast (type 3) route with an ingress-replication PMSI tunnel at creation, and a
/// MAC/IP (type 2) route per endpoint. Its best remote routes become dataplane state: MACs towards
/// VTEPs, and the flood list. It lives on the engine's event loop, as the engine does.
///
/// Unlike the original, remote MAC/IP routes are tracked per (MAC, IP), not per MAC, so that every
/// IP of a MAC reaches the dataplane (ARP/ND proxy entries); drivers count references to the MAC's
/// FDB entry.
public final class EVPNInstance {
    public enum TrackedEntry: Hashable, Sendable {
        case mac(MACAddress, ip: IPAddress?)
        case flood(originator: IPAddress, routeDistinguisher: RouteDistinguisher)
    }

    public let id: UInt32
    public let externalID: String
    /// The VNI (label field of our routes, raw 24 bits with VXLAN).
    public let vni: UInt32
    public let routeDistinguisher: RouteDistinguisher
    public let worker: WorkerID
    public private(set) var importRTs: [ExtendedCommunity]
    public private(set) var exportRTs: [ExtendedCommunity]
    public let dataplane: any DataplaneInstance

    let engine: RouteEngine
    let driver: any DataplaneDriver
    /// Our BGP address: originating router and next hop of the type-3 route.
    let bgpAddress: IPv4Address
    private var tracker: BestRouteTracker<TrackedEntry>
    /// Advertised MAC/IP routes per endpoint, with the LOCAL_PREF asked for.
    private var advertised: [Endpoint: UInt32?] = [:]

    public init(
        id: UInt32, externalID: String, vni: UInt32, routeDistinguisher: RouteDistinguisher, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity],
        engine: RouteEngine, driver: any DataplaneDriver, bgpAddress: IPv4Address, salt: String
    ) throws {
        self.id = id
        self.externalID = externalID
        self.vni = vni
        self.routeDistinguisher = routeDistinguisher
        self.importRTs = importRTs
        self.exportRTs = exportRTs
        self.engine = engine
        self.driver = driver
        self.bgpAddress = bgpAddress
        tracker = BestRouteTracker(compare: driver.supportsECMP ? BestRouteTracker<TrackedEntry>.ecmp : BestRouteTracker<TrackedEntry>.single(salt: salt + "|EVI-\(id)"))
        dataplane = try driver.makeInstance(id: id, externalID: externalID, label: vni)
        worker = engine.addLocalWorker(name: "EVI-\(id)")
        for rt in importRTs { if let m = Match(family: .evpn, routeTarget: rt) { engine.subscribe(worker, to: m) } }
        advertiseInclusiveMulticast()
    }

    // MARK: Routes we originate

    var inclusiveMulticastRoute: NLRIElement {
        NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: routeDistinguisher, originatingRouter: .v4(bgpAddress)))))
    }

    func attributes(localPref: UInt32?, extra: [PathAttribute] = []) -> [PathAttribute] {
        let encapsulations = driver.encapsulations.filter { $0 != .default }.map(ExtendedCommunity.encapsulation)
        return [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref ?? 100)),
            PathAttribute(.extendedCommunities(exportRTs + encapsulations)),
        ] + extra
    }

    private func advertiseInclusiveMulticast() {
        let pmsi = PathAttribute(.pmsiTunnel(.ingressReplication(endpoint: .v4(driver.localAddress), labelField: vni)))
        engine.advertise(from: worker, family: .evpn, inclusiveMulticastRoute, nextHop: .ipv4(bgpAddress), attributes: attributes(localPref: nil, extra: [pmsi]))
    }

    func macRoute(_ endpoint: Endpoint) -> NLRIElement {
        NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: routeDistinguisher, mac: endpoint.mac, ip: endpoint.ip.map { .v4($0) }, labelField1: vni))))
    }

    // MARK: Endpoints

    /// Plugs an endpoint into the dataplane and advertises its MAC/IP route (unless `from-port`).
    public func plug(_ endpoint: Endpoint, localPref: UInt32?) throws {
        try driver.validate(endpoint.direction)
        try dataplane.plug(endpoint)
        guard endpoint.direction != .fromPort else { return }
        advertised[endpoint] = localPref
        engine.advertise(from: worker, family: .evpn, macRoute(endpoint), nextHop: .ipv4(driver.localAddress), attributes: attributes(localPref: localPref))
    }

    /// Withdraws the endpoint's route and unplugs it.
    public func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        if advertised.removeValue(forKey: endpoint) != nil { engine.withdraw(from: worker, family: .evpn, macRoute(endpoint)) }
        try dataplane.unplug(endpoint, lastEndpointOfPort: lastEndpointOfPort)
    }

    /// Replaces the route targets (reference §1.7): imports re-subscribed; when the export set
    /// changed, every route is advertised again with exactly the new targets (the type-3 route too,
    /// unlike the original, quirk Q11), or withdrawn when there are none.
    public func updateRouteTargets(import newImport: [ExtendedCommunity], export newExport: [ExtendedCommunity]) {
        let (oldImport, newImportSet) = (Set(importRTs), Set(newImport))
        importRTs = newImport
        for rt in oldImport.subtracting(newImportSet) { if let m = Match(family: .evpn, routeTarget: rt) { engine.unsubscribe(worker, from: m) } }
        for rt in newImportSet.subtracting(oldImport) { if let m = Match(family: .evpn, routeTarget: rt) { engine.subscribe(worker, to: m) } }
        guard Set(newExport) != Set(exportRTs) else { return }
        exportRTs = newExport
        if newExport.isEmpty {
            engine.withdraw(from: worker, family: .evpn, inclusiveMulticastRoute)
            for endpoint in advertised.keys { engine.withdraw(from: worker, family: .evpn, macRoute(endpoint)) }
            return
        }
        advertiseInclusiveMulticast()
        for (endpoint, localPref) in advertised {
            engine.advertise(from: worker, family: .evpn, macRoute(endpoint), nextHop: .ipv4(driver.localAddress), attributes: attributes(localPref: localPref))
        }
    }

    /// The instance stops: its routes are withdrawn, its subscriptions dropped, its dataplane cleaned.
    public func stop() {
        for call in tracker.removeAll() { apply(call) }
        dataplane.cleanup()
        engine.cleanup(worker)
    }

    // MARK: Routes we receive

    /// An engine event for this instance's worker.
    public func handle(_ event: RouteEngine.LocalEvent) {
        switch event {
        case .advertise(let route, let replaced):
            guard let entry = Self.entry(route) else { return }
            // A route the dataplane cannot use (no encapsulation in common, no PMSI) is ignored, as
            // the original does: it must not win a best-path selection over a usable one.
            guard installation(route) != nil else {
                if let replaced, let old = Self.entry(replaced) { for call in tracker.withdraw(replaced, entry: old) { apply(call) } }
                return
            }
            if let replaced, let old = Self.entry(replaced), old != entry {
                for call in tracker.withdraw(replaced, entry: old) { apply(call) }
                for call in tracker.advertise(route, replaced: nil, entry: entry) { apply(call) }
            } else {
                for call in tracker.advertise(route, replaced: replaced, entry: entry) { apply(call) }
            }
        case .withdraw(let route):
            guard let entry = Self.entry(route) else { return }
            for call in tracker.withdraw(route, entry: entry) { apply(call) }
        }
    }

    static func entry(_ route: RouteEngine.Route) -> TrackedEntry? {
        switch route.element.nlri {
        case .evpn(.macIPAdvertisement(let r)): .mac(r.mac, ip: r.ip)
        case .evpn(.inclusiveMulticast(let r)): .flood(originator: r.originatingRouter, routeDistinguisher: r.routeDistinguisher)
        default: nil  // other route types are not used (no multihoming, no type 5)
        }
    }

    /// What the dataplane installs for a route, if it can.
    enum Installation: Hashable {
        case remote(RemoteEndpoint)
        case flood(FloodEndpoint)
    }

    func installation(_ route: RouteEngine.Route) -> Installation? {
        let encapsulations = driver.usableEncapsulations(route.attributes.attributes.extendedCommunities)
        guard !encapsulations.isEmpty else { return nil }  // no encapsulation in common: unusable here
        switch route.element.nlri {
        case .evpn(.macIPAdvertisement(let r)):
            guard let pe = Self.ipv4(route.attributes.nextHop) else { return nil }
            return .remote(RemoteEndpoint(destination: .mac(r.mac, ip: r.ip), remotePE: pe, label: r.labelField1 & 0xFF_FFFF, encapsulations: encapsulations, loadBalancingOrder: 0))
        case .evpn(.inclusiveMulticast):
            // Flooding needs an ingress-replication PMSI tunnel naming the remote VTEP.
            guard let pmsi = route.attributes.attributes.pmsiTunnel, pmsi.tunnelType == .ingressReplication, pmsi.tunnelIdentifier.count == 4 else { return nil }
            let t = pmsi.tunnelIdentifier
            let pe = IPv4Address(t[0], t[1], t[2], t[3])
            return .flood(FloodEndpoint(remotePE: pe, vni: pmsi.labelField & 0xFF_FFFF, encapsulations: encapsulations))
        default:
            return nil
        }
    }

    static func ipv4(_ nextHop: NextHop) -> IPv4Address? {
        switch nextHop {
        case .ipv4(let a), .vpnIPv4(_, let a): a
        default: nil
        }
    }

    /// Applies a best-route change to the dataplane. A removal is skipped while another best route
    /// of the entry installs the same thing (same VTEP and VNI): make-before-break must not break.
    private func apply(_ call: BestRouteTracker<TrackedEntry>.Call) {
        do {
            switch call {
            case .newBest(_, let route):
                switch installation(route) {
                case .remote(let r): try dataplane.setUp(r)
                case .flood(let f): try dataplane.addFlood(f)
                case nil: break
                }
            case .bestRemoved(let entry, let route, _):
                guard let gone = installation(route) else { return }
                if tracker.bestRoutes(entry).contains(where: { installation($0) == gone }) { return }
                switch gone {
                case .remote(let r): try dataplane.remove(r)
                case .flood(let f): try dataplane.removeFlood(f)
                }
            }
        } catch {
            // The dataplane refused: the route stays tracked, and the error is the driver's to log.
        }
    }

    public var lookingGlass: JSONValue {
        .object([
            ("id", JSONValue(id)), ("external_instance_id", .string(externalID)), ("vni", JSONValue(vni)),
            ("route_distinguisher", .string("\(routeDistinguisher)")), ("import_rts", .array(importRTs.map { .string("\($0)") })),
            ("export_rts", .array(exportRTs.map { .string("\($0)") })), ("dataplane", dataplane.lookingGlass),
        ])
    }
}
