import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import Dataplane
import Logging

/// What E-VPN instances and VRFs share (reference §8.1): a local worker of the route engine that
/// subscribes to its import route targets, advertises one route per endpoint with its export
/// route targets, and turns the best received routes into dataplane state through a
/// `BestRouteTracker`. Subclasses say which families, which routes and which dataplane calls.
/// An instance lives on the engine's event loop, as the engine does.
public class VPNInstance {
    /// What the tracker keys routes by.
    public enum TrackedEntry: Hashable, Sendable, CustomStringConvertible {
        case mac(MACAddress, ip: IPAddress?)
        case flood(originator: IPAddress, routeDistinguisher: RouteDistinguisher)
        case prefix(IPPrefix)
        /// A flowspec route, by its rules (its RD left out, as the original keys them).
        case flow([FlowSpecComponent])

        public var description: String {
            switch self {
            case .mac(let mac, let ip): ip.map { "\(mac) \($0)" } ?? "\(mac)"
            case .flood(let originator, let rd): "flood \(originator) \(rd)"
            case .prefix(let p): "\(p)"
            case .flow(let components): "flow \(TrafficClassifier(flowSpec: components).map { "\($0)" } ?? "\(components)")"
            }
        }
    }

    /// What the dataplane installs for a route.
    enum Installation: Hashable {
        case remote(RemoteEndpoint)
        case flood(FloodEndpoint)
    }

    /// How an endpoint is advertised: the prefix (IP VPN), the RD of its route, its own RD (for the
    /// routes it re-advertises: every to-port endpoint of a VRF has one), LOCAL_PREF and
    /// load-balancing order.
    public struct Placement: Sendable, Hashable {
        public var prefix: IPPrefix?
        public var routeDistinguisher: RouteDistinguisher
        public var endpointRD: RouteDistinguisher?
        public var localPref: UInt32?
        public var loadBalancingOrder: UInt32

        public init(prefix: IPPrefix?, routeDistinguisher: RouteDistinguisher, endpointRD: RouteDistinguisher? = nil, localPref: UInt32?, loadBalancingOrder: UInt32 = 0) {
            self.prefix = prefix
            self.routeDistinguisher = routeDistinguisher
            self.endpointRD = endpointRD
            self.localPref = localPref
            self.loadBalancingOrder = loadBalancingOrder
        }
    }

    /// A route this instance originates, with what its attributes are built from.
    struct Origination {
        var family: AddressFamily
        var element: NLRIElement
        var localPref: UInt32?
        var extra: [ExtendedCommunity]
    }

    struct PluggedKey: Hashable {
        var mac: MACAddress
        var ip: IPAddress?
        var prefix: IPPrefix?
    }

    public let id: UInt32
    public let externalID: String
    /// The instance label (the VNI for VXLAN).
    public let label: UInt32
    public let routeDistinguisher: RouteDistinguisher
    public let worker: WorkerID
    public let name: String
    public internal(set) var importRTs: [ExtendedCommunity]
    public internal(set) var exportRTs: [ExtendedCommunity]
    public let dataplane: any DataplaneInstance

    let engine: RouteEngine
    let driver: any DataplaneDriver
    /// Our BGP address (originating router, next hop of instance routes).
    let bgpAddress: IPv4Address
    var tracker: BestRouteTracker<TrackedEntry>
    /// Endpoint routes advertised, by key.
    var advertised: [RouteKey: Origination] = [:]
    /// Plugged endpoints and how they are advertised.
    var plugged: [PluggedKey: (endpoint: Endpoint, placement: Placement)] = [:]
    /// Plugs the dataplane has not confirmed yet, by endpoint (their routes wait).
    var pendingPlugs: [PluggedKey: Int] = [:]
    /// What the dataplane holds for received routes.
    var installed: Set<Installation> = []
    let logger: Logger

    /// The families the instance subscribes to for its import route targets.
    class var subscribedFamilies: [AddressFamily] { [.evpn] }
    class var namePrefix: String { "VPN" }

    /// Best-route comparison: LOCAL_PREF then, for drivers without ECMP, a salted tie-break.
    class func comparison(ecmp: Bool, salt: String) -> BestRouteTracker<TrackedEntry>.Comparison {
        ecmp ? BestRouteTracker<TrackedEntry>.ecmp : BestRouteTracker<TrackedEntry>.single(salt: salt)
    }

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
        self.name = name
        var logger = Logger(label: "bagpipe.vpn")
        logger[metadataKey: "lg"] = .string(name)
        self.logger = logger
        tracker = BestRouteTracker(compare: Self.comparison(ecmp: driver.supportsECMP, salt: salt + "|" + name))
        dataplane = try driver.makeInstance(id: id, externalID: externalID, label: label, options: options)
        worker = engine.addLocalWorker(name: name)
        resubscribe()
    }

    /// What the instance subscribes to: its import route targets in its families (subclasses add).
    func wantedSubscriptions() -> Set<Match> {
        Set(importRTs.flatMap { rt in Self.subscribedFamilies.compactMap { Match(family: $0, routeTarget: rt) } })
    }

    /// Subscribes to what is wanted and no longer to the rest; new subscriptions first, so that a
    /// route still covered is not withdrawn and advertised again.
    func resubscribe() {
        let (wanted, have) = (wantedSubscriptions(), engine.subscriptions(of: worker))
        for m in wanted.subtracting(have).sorted(by: { "\($0)" < "\($1)" }) { engine.subscribe(worker, to: m) }
        for m in have.subtracting(wanted) { engine.unsubscribe(worker, from: m) }
    }

    // MARK: Routes we originate

    /// ORIGIN, an empty AS_PATH, LOCAL_PREF, and `targets` (the export route targets by default)
    /// with the driver's encapsulations and `extra` communities.
    func attributes(localPref: UInt32?, targets: [ExtendedCommunity]? = nil, extra: [ExtendedCommunity] = [], more: [PathAttribute] = []) -> [PathAttribute] {
        let encapsulations = driver.encapsulations.filter { $0 != .default }.map(ExtendedCommunity.encapsulation)
        return [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref ?? 100)),
            PathAttribute(.extendedCommunities((targets ?? exportRTs) + encapsulations + extra)),
        ] + more
    }

    /// Next hop of the routes we advertise for the dataplane: the dataplane address (IPv4-mapped
    /// for VPNv6 over an IPv4 core, RFC 4659 §3.2.1.2).
    func nextHop(_ family: AddressFamily) -> NextHop {
        switch family {
        case .ipv6VPN: .vpnIPv6(RouteDistinguisher(rawValue: 0), IPv6Address(mapping: driver.localAddress), linkLocal: nil)
        case .ipv4VPN: .vpnIPv4(RouteDistinguisher(rawValue: 0), driver.localAddress)
        case .ipv4FlowSpecVPN, .ipv6FlowSpecVPN: .none
        default: .ipv4(driver.localAddress)
        }
    }

    /// Advertises (or replaces) an endpoint route with the export route targets.
    func advertiseEndpointRoute(_ o: Origination) {
        advertised[RouteKey(o.element)] = o
        guard !exportRTs.isEmpty else { return }
        engine.advertise(from: worker, family: o.family, o.element, nextHop: nextHop(o.family), attributes: attributes(localPref: o.localPref, extra: o.extra))
    }

    func withdrawEndpointRoute(_ element: NLRIElement) {
        guard let o = advertised.removeValue(forKey: RouteKey(element)) else { return }
        engine.withdraw(from: worker, family: o.family, element)
    }

    /// The route an endpoint is advertised with (subclasses), nil when it has none.
    func endpointRoute(_ endpoint: Endpoint, _ placement: Placement) -> (family: AddressFamily, element: NLRIElement)? { nil }
    /// Extended communities an endpoint route carries besides the targets and encapsulations.
    func endpointCommunities(_ endpoint: Endpoint, _ placement: Placement) -> [ExtendedCommunity] { [] }
    /// The plugged endpoints changed (subclasses re-derive what depends on them).
    func endpointsChanged() {}

    /// Plugs an endpoint into the dataplane and, once the dataplane has plugged it, advertises its
    /// route (unless `from-port`): traffic is not attracted to a port that is not there yet.
    public func plug(_ endpoint: Endpoint, _ placement: Placement) throws {
        guard driver.directions.contains(endpoint.direction) else { throw VPNError("Unsupported direction: \(endpoint.direction.rawValue)") }
        let key = PluggedKey(mac: endpoint.mac, ip: endpoint.ip, prefix: placement.prefix)
        plugged[key] = (endpoint, placement)
        pendingPlugs[key, default: 0] += 1
        do {
            try dataplane.plug(endpoint) { [weak self] done in self?.plugApplied(key, done) }
        } catch {
            plugged[key] = nil
            pendingPlugs[key] = nil
            throw error
        }
        endpointsChanged()
    }

    /// The dataplane plugged an endpoint (or failed to: the manager then undoes the attach): its
    /// route goes out, as it is now, if it is still plugged and no later plug of it is pending.
    private func plugApplied(_ key: PluggedKey, _ done: Bool) {
        let left = (pendingPlugs[key] ?? 1) - 1
        pendingPlugs[key] = left > 0 ? left : nil
        guard done, left == 0, let p = plugged[key] else { return }
        advertise(p.endpoint, p.placement)
    }

    /// Advertises (or replaces, when it changed) an endpoint's route, without touching the dataplane.
    /// While the endpoint's plug is still pending, only what is advertised once it is done changes.
    public func advertise(_ endpoint: Endpoint, _ placement: Placement) {
        let key = PluggedKey(mac: endpoint.mac, ip: endpoint.ip, prefix: placement.prefix)
        plugged[key] = (endpoint, placement)
        guard pendingPlugs[key] == nil, endpoint.direction != .fromPort, let route = endpointRoute(endpoint, placement) else { return }
        advertiseEndpointRoute(Origination(family: route.family, element: route.element, localPref: placement.localPref, extra: endpointCommunities(endpoint, placement)))
    }

    /// Withdraws the endpoint's route and unplugs it.
    public func unplug(_ endpoint: Endpoint, _ placement: Placement, lastEndpointOfPort: Bool) throws {
        if let route = endpointRoute(endpoint, placement) { withdrawEndpointRoute(route.element) }
        plugged[PluggedKey(mac: endpoint.mac, ip: endpoint.ip, prefix: placement.prefix)] = nil
        endpointsChanged()
        try dataplane.unplug(endpoint, lastEndpointOfPort: lastEndpointOfPort)
    }

    /// Instance-level routes (the E-VPN type-3 route) to advertise again after an export change.
    func advertiseInstanceRoutes() {}
    func withdrawInstanceRoutes() {}

    /// Replaces the route targets (reference §1.7): imports re-subscribed; when the export set
    /// changed, every route is advertised again with exactly the new targets (instance routes too,
    /// unlike the original, quirk Q11), or withdrawn when there are none.
    public func updateRouteTargets(import newImport: [ExtendedCommunity], export newExport: [ExtendedCommunity]) {
        importRTs = newImport
        resubscribe()
        guard Set(newExport) != Set(exportRTs) else { return }
        exportRTs = newExport
        if newExport.isEmpty {
            withdrawInstanceRoutes()
            for (_, o) in advertised { engine.withdraw(from: worker, family: o.family, o.element) }
            return
        }
        advertiseInstanceRoutes()
        for (_, o) in advertised {
            engine.advertise(from: worker, family: o.family, o.element, nextHop: nextHop(o.family), attributes: attributes(localPref: o.localPref, extra: o.extra))
        }
    }

    /// Whether the instance removes a tracked entry's dataplane state route by route when it stops
    /// (reference §7.3 "cleanup assist"): when the driver asks for it.
    func needsCleanupAssist(_ entry: TrackedEntry) -> Bool { driver.needsCleanupAssist }

    /// The instance stops: its routes are withdrawn, its subscriptions dropped, its dataplane cleaned.
    public func stop() {
        for call in tracker.removeAll(where: needsCleanupAssist) { apply(call) }
        dataplane.cleanup()
        engine.cleanup(worker)
    }

    // MARK: Routes we receive

    /// The tracked entry of a received route (nil: not for this instance type).
    func entry(_ route: RouteEngine.Route) -> TrackedEntry? { nil }

    /// What the dataplane installs for a route, or nil when it cannot use it. `forRemoval`: what it
    /// installed, whatever the instance imports now.
    func installation(_ route: RouteEngine.Route, forRemoval: Bool = false) -> Installation? { nil }

    /// Whether a route may compete in the best-route selection. A route the dataplane cannot use
    /// (no encapsulation in common, no label, no PMSI) is ignored, as the original does: it must not
    /// win a selection over a usable one.
    func isUsable(_ route: RouteEngine.Route, entry: TrackedEntry) -> Bool { installation(route) != nil }

    /// An engine event for this instance's worker.
    public func handle(_ event: RouteEngine.LocalEvent) {
        switch event {
        case .advertise(let route, let replaced):
            guard let entry = entry(route) else { return }
            guard isUsable(route, entry: entry) else {
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

    /// Applies a best-route change: to the dataplane, then to whatever the subclass derives from best
    /// routes. A removal is skipped while another best route of the entry installs the same thing
    /// (same next hop and label): make-before-break must not break, and ECMP keeps what remains.
    func apply(_ call: BestRouteTracker<TrackedEntry>.Call) {
        switch call {
        case .newBest(_, let route):
            guard let what = installation(route), !installed.contains(what) else { break }
            do {
                switch what {
                case .remote(let r): try dataplane.setUp(r)
                case .flood(let f): try dataplane.addFlood(f)
                }
                installed.insert(what)
            } catch {
                logger.warning("\(name): the dataplane refused \(route.element.nlri): \(error)")
            }
        case .bestRemoved(let entry, let route, _):
            guard let gone = installation(route, forRemoval: true), installed.contains(gone) else { break }
            if tracker.bestRoutes(entry).contains(where: { installation($0, forRemoval: true) == gone }) { break }
            installed.remove(gone)
            do {
                switch gone {
                case .remote(let r): try dataplane.remove(r)
                case .flood(let f): try dataplane.removeFlood(f)
                }
            } catch {
                logger.warning("\(name): the dataplane could not remove \(route.element.nlri): \(error)")
            }
        }
        bestRoutesChanged(call)
    }

    /// After a best-route change reached the dataplane (subclasses: re-advertisement, redirection).
    func bestRoutesChanged(_ call: BestRouteTracker<TrackedEntry>.Call) {}

    /// The remote PE of a received route's next hop: IPv4, or IPv4-mapped IPv6 (VPNv6 over an IPv4 core).
    static func ipv4(_ nextHop: NextHop) -> IPv4Address? {
        switch nextHop {
        case .ipv4(let a), .vpnIPv4(_, let a): a
        case .ipv6(let a, _), .vpnIPv6(_, let a, _, _): a.mappedIPv4
        default: nil
        }
    }

    // MARK: Looking glass

    /// `best_routes`: per tracked entry, its best routes.
    var bestRoutesLookingGlass: JSONValue { routesLookingGlass { self.tracker.bestRoutes($0) } }
    /// `received_routes`: per tracked entry, every route received.
    var receivedRoutesLookingGlass: JSONValue { routesLookingGlass { self.tracker.allRoutes($0) } }

    func routesLookingGlass(_ routes: (TrackedEntry) -> [RouteEngine.Route]) -> JSONValue {
        .object(tracker.entries.map { ("\($0)", $0) }.sorted { $0.0 < $1.0 }.map { text, entry in
            (text, .array(routes(entry).map { Self.routeJSON($0, sourceName: sourceName($0.source)) }))
        })
    }

    /// The original's worker names: `BGP-<address>` for a peer, `VRF-<n>` / `EVI-<n>` for an instance.
    func sourceName(_ worker: WorkerID) -> String { Self.sourceName(worker, engine) }

    public static func sourceName(_ worker: WorkerID, _ engine: RouteEngine) -> String {
        if worker == engine.routeTargetConstraintWorker { return "BGPManager" }
        return engine.isPeer(worker) ? "BGP-\(engine.name(of: worker))" : engine.name(of: worker)
    }

    /// `adv_routes`: the routes this instance originates.
    var advertisedLookingGlass: JSONValue {
        .array(engine.routes(originatedBy: worker).map { Self.routeJSON($0, sourceName: name) }.sorted { $0.serialized() < $1.serialized() })
    }

    /// Subclass keys of the instance node (`readvertise`, `gateway_port` …).
    func lookingGlassFields(href: (String) -> JSONValue) -> [(String, JSONValue)] { [] }

    /// A readable NLRI: E-VPN routes as `type2:<RD>:<MAC>[:<IP>]` / `type3:<RD>:<originator>`.
    static func nlriText(_ nlri: NLRI) -> String {
        switch nlri {
        case .evpn(.macIPAdvertisement(let r)): "type2:\(r.routeDistinguisher):\(r.mac)" + (r.ip.map { ":\($0)" } ?? "")
        case .evpn(.inclusiveMulticast(let r)): "type3:\(r.routeDistinguisher):\(r.originatingRouter)"
        case .vpnPrefix(let p): "\(p.routeDistinguisher):\(p.prefix)"
        case .flowSpec(let rule):
            (rule.routeDistinguisher.map { "\($0):" } ?? "") + "flow:" + (TrafficClassifier(flowSpec: rule.components).map { "\($0)" } ?? "\(rule.components)")
        default: "\(nlri)"
        }
    }

    /// The original's family names (`afi/safi` as ExaBGP writes them).
    public static let familyNames: [AddressFamily: String] = [
        .ipv4VPN: "ipv4/mpls-vpn", .ipv6VPN: "ipv6/mpls-vpn", .evpn: "l2vpn/evpn", .routeTargetConstraint: "ipv4/rtc", .ipv4FlowSpecVPN: "ipv4/flow-vpn",
        .ipv6FlowSpecVPN: "ipv6/flow-vpn",
    ]

    /// The original's route representation (reference §2.2); ORIGIN and AS_PATH left out.
    public static func routeJSON(_ route: RouteEngine.Route, sourceName: String) -> JSONValue {
        var attributes: [(String, JSONValue)] = []
        let a = route.attributes.attributes
        if let lp = a.localPreference { attributes.append(("local_pref", JSONValue(lp))) }
        if let med = a.multiExitDiscriminator { attributes.append(("med", JSONValue(med))) }
        let communities = a.extendedCommunities
        if !communities.isEmpty { attributes.append(("extended_communities", .string(communities.map { "\($0)" }.joined(separator: " ")))) }
        if let pmsi = a.pmsiTunnel {
            let endpoint = pmsi.tunnelIdentifier.count == 4 ? pmsi.tunnelIdentifier.map(String.init).joined(separator: ".") : pmsi.tunnelIdentifier.map { String($0, radix: 16) }.joined(separator: ":")
            let kind = pmsi.tunnelType == .ingressReplication ? "ingress-replication" : "type \(pmsi.tunnelType.rawValue)"
            attributes.append(("pmsi_tunnel", .string("\(kind) \(endpoint) label \(pmsi.labelField)")))
        }
        if let originator = a.originatorID { attributes.append(("originator_id", .string("\(originator)"))) }
        let family = route.family
        var fields: [(String, JSONValue)] = [
            ("afi-safi", .string(familyNames[family] ?? "\(family)")), ("attributes", .object(attributes)), ("next_hop", .string("\(route.attributes.nextHop)")),
            ("source", .object([("id", .string(sourceName))])),
        ]
        if family.safi == .mplsVPN || family == .evpn { fields.append(("route_targets", .array(route.attributes.routeTargetKeys.map { .string("\($0)") }))) }
        return .object([(nlriText(route.element.nlri), .object(fields))])
    }
}
