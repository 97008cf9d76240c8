import BGPEngine
import BGPSession
import BGPWire

/// What E-VPN instances and VRFs share (reference §8.1): a local worker of the route engine that
/// subscribes to its import route targets, advertises one route per endpoint with its export
/// route targets, and turns the best received routes into dataplane state through a
/// `BestRouteTracker`. Subclasses say which family, which routes and which dataplane calls.
/// An instance lives on the engine's event loop, as the engine does.
public class VPNInstance {
    /// What the tracker keys routes by.
    public enum TrackedEntry: Hashable, Sendable {
        case mac(MACAddress, ip: IPAddress?)
        case flood(originator: IPAddress, routeDistinguisher: RouteDistinguisher)
        case prefix(IPPrefix)
    }

    /// What the dataplane installs for a route.
    enum Installation: Hashable {
        case remote(RemoteEndpoint)
        case flood(FloodEndpoint)
    }

    public let id: UInt32
    public let externalID: String
    /// The instance label (the VNI for VXLAN).
    public let label: UInt32
    public let routeDistinguisher: RouteDistinguisher
    public let worker: WorkerID
    public internal(set) var importRTs: [ExtendedCommunity]
    public internal(set) var exportRTs: [ExtendedCommunity]
    public let dataplane: any DataplaneInstance

    let engine: RouteEngine
    let driver: any DataplaneDriver
    /// Our BGP address (originating router, next hop of instance routes).
    let bgpAddress: IPv4Address
    var tracker: BestRouteTracker<TrackedEntry>
    /// The routes advertised for endpoints: NLRI and what to build their attributes from.
    var advertised: [RouteKey: (element: NLRIElement, localPref: UInt32?, extra: [ExtendedCommunity])] = [:]

    /// The family of the instance's routes, and the families it subscribes to.
    class var family: AddressFamily { .evpn }
    class var subscribedFamilies: [AddressFamily] { [family] }
    class var namePrefix: String { "VPN" }

    init(
        id: UInt32, externalID: String, label: UInt32, routeDistinguisher: RouteDistinguisher, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity],
        engine: RouteEngine, driver: any DataplaneDriver, bgpAddress: IPv4Address, salt: String, options: InstanceOptions = InstanceOptions()
    ) throws {
        self.id = id
        self.externalID = externalID
        self.label = label
        self.routeDistinguisher = routeDistinguisher
        self.importRTs = importRTs
        self.exportRTs = exportRTs
        self.engine = engine
        self.driver = driver
        self.bgpAddress = bgpAddress
        let name = "\(Self.namePrefix)-\(id)"
        tracker = BestRouteTracker(compare: driver.supportsECMP ? BestRouteTracker<TrackedEntry>.ecmp : BestRouteTracker<TrackedEntry>.single(salt: salt + "|" + name))
        dataplane = try driver.makeInstance(id: id, externalID: externalID, label: label, options: options)
        worker = engine.addLocalWorker(name: name)
        subscribe(importRTs)
    }

    private func subscribe(_ rts: some Sequence<ExtendedCommunity>, _ on: Bool = true) {
        for rt in rts {
            for family in Self.subscribedFamilies {
                guard let m = Match(family: family, routeTarget: rt) else { continue }
                if on { engine.subscribe(worker, to: m) } else { engine.unsubscribe(worker, from: m) }
            }
        }
    }

    // MARK: Routes we originate

    /// ORIGIN, an empty AS_PATH, LOCAL_PREF, and the export route targets with the driver's
    /// encapsulations (and `extra` communities).
    func attributes(localPref: UInt32?, extra: [ExtendedCommunity] = [], more: [PathAttribute] = []) -> [PathAttribute] {
        let encapsulations = driver.encapsulations.filter { $0 != .default }.map(ExtendedCommunity.encapsulation)
        return [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref ?? 100)),
            PathAttribute(.extendedCommunities(exportRTs + encapsulations + extra)),
        ] + more
    }

    /// Advertises (or replaces) an endpoint route, next hop the dataplane address.
    func advertiseEndpointRoute(_ element: NLRIElement, localPref: UInt32?, extra: [ExtendedCommunity] = []) {
        advertised[RouteKey(element)] = (element, localPref, extra)
        guard !exportRTs.isEmpty else { return }
        engine.advertise(from: worker, family: Self.family, element, nextHop: nextHop, attributes: attributes(localPref: localPref, extra: extra))
    }

    func withdrawEndpointRoute(_ element: NLRIElement) {
        guard advertised.removeValue(forKey: RouteKey(element)) != nil else { return }
        engine.withdraw(from: worker, family: Self.family, element)
    }

    /// How an endpoint is advertised: the prefix (IP VPN), the RD, LOCAL_PREF and load-balancing order.
    public struct Placement: Sendable, Hashable {
        public var prefix: IPPrefix?
        public var routeDistinguisher: RouteDistinguisher
        public var localPref: UInt32?
        public var loadBalancingOrder: UInt32

        public init(prefix: IPPrefix?, routeDistinguisher: RouteDistinguisher, localPref: UInt32?, loadBalancingOrder: UInt32 = 0) {
            self.prefix = prefix
            self.routeDistinguisher = routeDistinguisher
            self.localPref = localPref
            self.loadBalancingOrder = loadBalancingOrder
        }
    }

    /// The route an endpoint is advertised with (subclasses), nil when it has none.
    func endpointRoute(_ endpoint: Endpoint, _ placement: Placement) -> NLRIElement? { nil }
    /// Extended communities an endpoint route carries besides the targets and encapsulations.
    func endpointCommunities(_ placement: Placement) -> [ExtendedCommunity] { [] }

    /// Plugs an endpoint into the dataplane and advertises its route (unless `from-port`).
    public func plug(_ endpoint: Endpoint, _ placement: Placement) throws {
        try driver.validate(endpoint.direction)
        try dataplane.plug(endpoint)
        advertise(endpoint, placement)
    }

    /// Advertises (or replaces, when it changed) an endpoint's route, without touching the dataplane.
    public func advertise(_ endpoint: Endpoint, _ placement: Placement) {
        guard endpoint.direction != .fromPort, let route = endpointRoute(endpoint, placement) else { return }
        advertiseEndpointRoute(route, localPref: placement.localPref, extra: endpointCommunities(placement))
    }

    /// Withdraws the endpoint's route and unplugs it.
    public func unplug(_ endpoint: Endpoint, _ placement: Placement, lastEndpointOfPort: Bool) throws {
        if let route = endpointRoute(endpoint, placement) { withdrawEndpointRoute(route) }
        try dataplane.unplug(endpoint, lastEndpointOfPort: lastEndpointOfPort)
    }

    /// Next hop of endpoint routes.
    var nextHop: NextHop { .forFamily(Self.family, .v4(driver.localAddress)) }

    /// Instance-level routes (the E-VPN type-3 route) to advertise again after an export change.
    func advertiseInstanceRoutes() {}
    func withdrawInstanceRoutes() {}

    /// Replaces the route targets (reference §1.7): imports re-subscribed; when the export set
    /// changed, every route is advertised again with exactly the new targets (instance routes too,
    /// unlike the original, quirk Q11), or withdrawn when there are none.
    public func updateRouteTargets(import newImport: [ExtendedCommunity], export newExport: [ExtendedCommunity]) {
        let (oldImport, newImportSet) = (Set(importRTs), Set(newImport))
        importRTs = newImport
        subscribe(oldImport.subtracting(newImportSet), false)
        subscribe(newImportSet.subtracting(oldImport))
        guard Set(newExport) != Set(exportRTs) else { return }
        exportRTs = newExport
        if newExport.isEmpty {
            withdrawInstanceRoutes()
            for (_, r) in advertised { engine.withdraw(from: worker, family: Self.family, r.element) }
            return
        }
        advertiseInstanceRoutes()
        for (_, r) in advertised {
            engine.advertise(from: worker, family: Self.family, r.element, nextHop: nextHop, attributes: attributes(localPref: r.localPref, extra: r.extra))
        }
    }

    /// The instance stops: its routes are withdrawn, its subscriptions dropped, its dataplane cleaned.
    public func stop() {
        for call in tracker.removeAll() { apply(call) }
        dataplane.cleanup()
        engine.cleanup(worker)
    }

    // MARK: Routes we receive

    /// The tracked entry of a received route (nil: not for this instance type).
    func entry(_ route: RouteEngine.Route) -> TrackedEntry? { nil }

    /// What the dataplane installs for a route, or nil when it cannot use it. `forRemoval`: what it
    /// installed, whatever the instance imports now (the original removes routes "even if the route
    /// target is no longer imported", after a route-target change).
    func installation(_ route: RouteEngine.Route, forRemoval: Bool = false) -> Installation? { nil }

    /// An engine event for this instance's worker.
    public func handle(_ event: RouteEngine.LocalEvent) {
        switch event {
        case .advertise(let route, let replaced):
            guard let entry = entry(route) else { return }
            // A route the dataplane cannot use (no encapsulation in common, no label, no PMSI) is
            // ignored, as the original does: it must not win a best-path selection over a usable one.
            guard installation(route) != nil else {
                if let replaced, let old = self.entry(replaced) { for call in tracker.withdraw(replaced, entry: old) { apply(call) } }
                return
            }
            if let replaced, let old = self.entry(replaced), old != entry {
                for call in tracker.withdraw(replaced, entry: old) { apply(call) }
                for call in tracker.advertise(route, replaced: nil, entry: entry) { apply(call) }
            } else {
                for call in tracker.advertise(route, replaced: replaced, entry: entry) { apply(call) }
            }
        case .withdraw(let route):
            guard let entry = entry(route) else { return }
            for call in tracker.withdraw(route, entry: entry) { apply(call) }
        }
    }

    /// Applies a best-route change to the dataplane. A removal is skipped while another best route
    /// of the entry installs the same thing (same next hop and label): make-before-break must not
    /// break, and ECMP keeps what remains.
    func apply(_ call: BestRouteTracker<TrackedEntry>.Call) {
        do {
            switch call {
            case .newBest(_, let route):
                switch installation(route) {
                case .remote(let r): try dataplane.setUp(r)
                case .flood(let f): try dataplane.addFlood(f)
                case nil: break
                }
            case .bestRemoved(let entry, let route, _):
                guard let gone = installation(route, forRemoval: true) else { return }
                if tracker.bestRoutes(entry).contains(where: { installation($0, forRemoval: true) == gone }) { return }
                switch gone {
                case .remote(let r): try dataplane.remove(r)
                case .flood(let f): try dataplane.removeFlood(f)
                }
            }
        } catch {
            // The dataplane refused: the route stays tracked; the driver logs why.
        }
    }

    static func ipv4(_ nextHop: NextHop) -> IPv4Address? {
        switch nextHop {
        case .ipv4(let a), .vpnIPv4(_, let a): a
        default: nil
        }
    }

    /// `best_routes`: per tracked entry, its best routes.
    var bestRoutesLookingGlass: JSONValue {
        .object(tracker.entries.map { ("\($0)", $0) }.sorted { $0.0 < $1.0 }.map { text, entry in
            (text, .array(tracker.bestRoutes(entry).map { Self.routeJSON($0, family: Self.family) }))
        })
    }

    /// `adv_routes`: what this instance advertises for its endpoints.
    var advertisedLookingGlass: JSONValue {
        .array(advertised.values.map { JSONValue.string(Self.nlriText($0.element.nlri)) }.sorted { $0.serialized() < $1.serialized() })
    }

    /// A readable NLRI: E-VPN routes as `type2:<RD>:<MAC>[:<IP>]` / `type3:<RD>:<originator>`.
    static func nlriText(_ nlri: NLRI) -> String {
        switch nlri {
        case .evpn(.macIPAdvertisement(let r)): "type2:\(r.routeDistinguisher):\(r.mac)" + (r.ip.map { ":\($0)" } ?? "")
        case .evpn(.inclusiveMulticast(let r)): "type3:\(r.routeDistinguisher):\(r.originatingRouter)"
        case .vpnPrefix(let p): "\(p.routeDistinguisher):\(p.prefix)"
        default: "\(nlri)"
        }
    }

    /// The original's route representation (reference §2.2); ORIGIN and AS_PATH left out.
    static func routeJSON(_ route: RouteEngine.Route, family: AddressFamily) -> JSONValue {
        var attributes: [(String, JSONValue)] = []
        let a = route.attributes.attributes
        if let lp = a.localPreference { attributes.append(("local_pref", JSONValue(lp))) }
        if let med = a.multiExitDiscriminator { attributes.append(("med", JSONValue(med))) }
        let communities = a.extendedCommunities
        if !communities.isEmpty { attributes.append(("extended_communities", .string(communities.map { "\($0)" }.joined(separator: " ")))) }
        if let pmsi = a.pmsiTunnel { attributes.append(("pmsi_tunnel", .string("\(pmsi)"))) }
        var fields: [(String, JSONValue)] = [
            ("afi-safi", .string("\(family)")), ("attributes", .object(attributes)), ("next_hop", .string("\(route.attributes.nextHop)")),
            ("source", .object([("id", JSONValue(route.source))])),
        ]
        if family.safi == .mplsVPN || family == .evpn { fields.append(("route_targets", .array(route.attributes.routeTargetKeys.map { .string("\($0)") }))) }
        return .object([(nlriText(route.element.nlri), .object(fields))])
    }
}
