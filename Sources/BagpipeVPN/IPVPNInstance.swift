import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import Dataplane

/// Redirect VRFs, which the VPN manager owns (reference §8.3 "being redirected").
public protocol TrafficRedirector: AnyObject {
    /// The VRF importing `routeTarget` that redirected traffic goes to (created for its first user).
    func redirectInstance(for routeTarget: ExtendedCommunity, user: IPVPNInstance) throws -> IPVPNInstance
    /// `user` no longer redirects to `routeTarget` (the VRF goes with its last user).
    func stopRedirect(to routeTarget: ExtendedCommunity, user: IPVPNInstance)
}

/// An IP VPN instance (VRF, reference §8.3): per endpoint a VPNv4 route, or VPNv6 for an IPv6
/// endpoint (RFC 4659; the original was IPv4 only): the endpoint's address as a host route with
/// the instance RD, or, with `advertise_subnet`, its prefix with a per-endpoint RD so several
/// ports and hosts can advertise it; labelled with the endpoint's port label. Imported best routes
/// become dataplane routes (ECMP when the driver has it). Imported flowspec routes with a redirect
/// action steer matching traffic into a redirect VRF. Re-advertisement and traffic attraction
/// (service chaining) are in `IPVPNInstance+Readvertise.swift`.
public final class IPVPNInstance: VPNInstance {
    override class var subscribedFamilies: [AddressFamily] { [.ipv4VPN, .ipv6VPN, .ipv4FlowSpecVPN, .ipv6FlowSpecVPN] }
    override class var namePrefix: String { "VRF" }

    /// The gateway address and the subnet length of the first attach.
    public let gateway: IPAddress
    public let prefixLength: UInt8
    /// `readvertise` and `attract_traffic` of the creating attach (reference §8.3).
    public let readvertise: Readvertise?
    /// Set only when traffic attraction is on (see `AttractTraffic.enabled`).
    public let attract: AttractTraffic?
    weak var redirector: TrafficRedirector?

    /// Routes re-advertised or attracting traffic, by what they derive from.
    var derived: [DerivedSource: Derived] = [:]
    /// Readvertisable best routes: per entry, the RT-Records their re-advertisement carries.
    var readvertised: [TrackedEntry: Set<ExtendedCommunity>] = [:]
    /// Per imported flowspec entry, the redirect it is installed as.
    var flowRedirects: [[FlowSpecComponent]: (routeTarget: ExtendedCommunity, classifier: TrafficClassifier)] = [:]

    public init(
        id: UInt32, externalID: String, label: UInt32, routeDistinguisher: RouteDistinguisher, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity],
        gateway: IPAddress, prefixLength: UInt8, engine: RouteEngine, driver: any DataplaneDriver, bgpAddress: IPv4Address, salt: String,
        options: InstanceOptions = InstanceOptions(), readvertise: Readvertise? = nil, attract: AttractTraffic? = nil, redirector: TrafficRedirector? = nil
    ) throws {
        self.gateway = gateway
        self.prefixLength = prefixLength
        self.readvertise = readvertise
        self.attract = attract
        self.redirector = redirector
        var options = options
        if case .v4(let g) = gateway { (options.gateway, options.prefixLength) = (g, prefixLength) }
        try super.init(
            id: id, externalID: externalID, label: label, routeDistinguisher: routeDistinguisher, importRTs: importRTs, exportRTs: exportRTs, engine: engine,
            driver: driver, bgpAddress: bgpAddress, salt: salt, options: options)
    }

    /// Convenience for an IPv4 gateway.
    public convenience init(
        id: UInt32, externalID: String, label: UInt32, routeDistinguisher: RouteDistinguisher, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity],
        gateway: IPv4Address, prefixLength: UInt8, engine: RouteEngine, driver: any DataplaneDriver, bgpAddress: IPv4Address, salt: String,
        options: InstanceOptions = InstanceOptions(), readvertise: Readvertise? = nil, attract: AttractTraffic? = nil, redirector: TrafficRedirector? = nil
    ) throws {
        try self.init(
            id: id, externalID: externalID, label: label, routeDistinguisher: routeDistinguisher, importRTs: importRTs, exportRTs: exportRTs,
            gateway: .v4(gateway), prefixLength: prefixLength, engine: engine, driver: driver, bgpAddress: bgpAddress, salt: salt, options: options,
            readvertise: readvertise, attract: attract, redirector: redirector)
    }

    /// Routes to re-advertise arrive through subscriptions of their own (flowspec too when
    /// attracting traffic), which import changes leave alone.
    override func wantedSubscriptions() -> Set<Match> {
        let families: [AddressFamily] = attract == nil ? [.ipv4VPN, .ipv6VPN] : Self.subscribedFamilies
        return super.wantedSubscriptions().union((readvertise?.from ?? []).flatMap { rt in families.compactMap { Match(family: $0, routeTarget: rt) } })
    }

    static func family(of prefix: IPPrefix) -> AddressFamily { prefix.isIPv4 ? .ipv4VPN : .ipv6VPN }

    func route(_ prefix: IPPrefix, label: UInt32, routeDistinguisher: RouteDistinguisher) -> NLRIElement {
        NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [label]), routeDistinguisher: routeDistinguisher, prefix: prefix)))
    }

    /// The placement's prefix with its RD (the instance's for a host route, a per-endpoint one
    /// otherwise) and the endpoint's port label.
    override func endpointRoute(_ endpoint: Endpoint, _ placement: Placement) -> (family: AddressFamily, element: NLRIElement)? {
        placement.prefix.map { (Self.family(of: $0), route($0, label: endpoint.label, routeDistinguisher: placement.routeDistinguisher)) }
    }

    override func endpointCommunities(_ endpoint: Endpoint, _ placement: Placement) -> [ExtendedCommunity] { [.consistentHashSortOrder(placement.loadBalancingOrder)] }

    /// Plugs an endpoint and advertises `prefix` for it (unless `from-port`).
    public func plug(_ endpoint: Endpoint, prefix: IPPrefix, routeDistinguisher: RouteDistinguisher, endpointRD: RouteDistinguisher? = nil, localPref: UInt32?, loadBalancingOrder: UInt32) throws {
        try plug(endpoint, Placement(prefix: prefix, routeDistinguisher: routeDistinguisher, endpointRD: endpointRD ?? routeDistinguisher, localPref: localPref, loadBalancingOrder: loadBalancingOrder))
    }

    public func unplug(_ endpoint: Endpoint, prefix: IPPrefix, routeDistinguisher: RouteDistinguisher, endpointRD: RouteDistinguisher? = nil, lastEndpointOfPort: Bool) throws {
        try unplug(endpoint, Placement(prefix: prefix, routeDistinguisher: routeDistinguisher, endpointRD: endpointRD ?? routeDistinguisher, localPref: nil), lastEndpointOfPort: lastEndpointOfPort)
    }

    // MARK: Routes we receive

    override func entry(_ route: RouteEngine.Route) -> TrackedEntry? {
        switch route.element.nlri {
        case .vpnPrefix(let p): .prefix(p.prefix)
        case .flowSpec(let rule): .flow(rule.components)
        default: nil
        }
    }

    func imported(_ route: RouteEngine.Route) -> Bool {
        !Set(route.attributes.routeTargetKeys).isDisjoint(with: importRTs.compactMap(RouteTargetKey.init))
    }

    /// Flowspec routes are tracked whatever their actions (a redirect is checked when one is best);
    /// VPN routes that are only re-advertised need no dataplane.
    override func isUsable(_ route: RouteEngine.Route, entry: TrackedEntry) -> Bool {
        switch entry {
        case .flow: true
        default: installation(route, forRemoval: true) != nil
        }
    }

    /// Installed only with one label, a next hop, an imported route target and an encapsulation in
    /// common with the driver.
    override func installation(_ route: RouteEngine.Route, forRemoval: Bool = false) -> Installation? {
        guard case .vpnPrefix(let p) = route.element.nlri, p.labels.count == 1, let pe = Self.ipv4(route.attributes.nextHop) else { return nil }
        guard forRemoval || imported(route) else { return nil }
        let communities = route.attributes.attributes.extendedCommunities
        let encapsulations = driver.usableEncapsulations(communities)
        guard !encapsulations.isEmpty, let label = p.labels.labels.first else { return nil }
        var order: UInt32 = 0
        for c in communities { if case .consistentHashSortOrder(let o) = c.kind { order = o; break } }
        return .remote(RemoteEndpoint(destination: .prefix(p.prefix), remotePE: pe, label: label, encapsulations: encapsulations, loadBalancingOrder: order))
    }

    override func bestRoutesChanged(_ call: BestRouteTracker<TrackedEntry>.Call) {
        let entry: TrackedEntry
        switch call {
        case .newBest(let e, _), .bestRemoved(let e, _, _): entry = e
        }
        if case .flow(let components) = entry { reconcileRedirect(components) }
        if readvertise != nil || attract != nil { readvertisedEntryChanged(entry) }
    }

    override func endpointsChanged() {
        if readvertise != nil || attract != nil { reconcileDerivedForEndpoints() }
    }

    /// Flowspec state is always removed route by route (reference §7.3, behaviour 41): the redirect
    /// VRFs have users to release.
    override func needsCleanupAssist(_ entry: TrackedEntry) -> Bool {
        if case .flow = entry { return true }
        return driver.needsCleanupAssist
    }

    // MARK: Being redirected (reference §8.3)

    /// The redirect route target of a flowspec route: its one Traffic-Redirect (2-octet AS form) as
    /// a route target; nil with none or several (logged).
    func redirectTarget(_ route: RouteEngine.Route) -> ExtendedCommunity? {
        let redirects = route.attributes.attributes.extendedCommunities.filter {
            $0.type == ExtendedCommunity.TypeCode.flowSpec && $0.subtype == ExtendedCommunity.Subtype.redirect
        }
        guard redirects.count == 1, let r = redirects.first else {
            logger.warning("\(name): flowspec route \(Self.nlriText(route.element.nlri)) has \(redirects.count) redirect actions; only one is supported")
            return nil
        }
        return .routeTarget(as: UInt16(truncatingIfNeeded: r.value >> 32), UInt32(truncatingIfNeeded: r.value))
    }

    /// Brings the redirect of a flowspec entry in line with its best imported route.
    func reconcileRedirect(_ components: [FlowSpecComponent]) {
        var wanted: (routeTarget: ExtendedCommunity, classifier: TrafficClassifier)?
        if let best = tracker.bestRoutes(.flow(components)).first(where: imported), let rt = redirectTarget(best) {
            if let classifier = TrafficClassifier(flowSpec: components) {
                wanted = (rt, classifier)
            } else {
                logger.warning("\(name): flowspec rules \(components) use components that cannot be redirected; ignored")
            }
        }
        let current = flowRedirects[components]
        if let current, let wanted, current.routeTarget == wanted.routeTarget, current.classifier == wanted.classifier { return }
        if let current {
            flowRedirects[components] = nil
            do { try dataplane.removeTrafficClassifier(current.classifier) } catch { logger.warning("\(name): removing redirect \(current.classifier): \(error)") }
            if !flowRedirects.values.contains(where: { $0.routeTarget == current.routeTarget }) { redirector?.stopRedirect(to: current.routeTarget, user: self) }
        }
        guard let wanted, let redirector else { return }
        do {
            let target = try redirector.redirectInstance(for: wanted.routeTarget, user: self)
            try dataplane.addTrafficClassifier(wanted.classifier, redirectTo: target.id)
            flowRedirects[components] = wanted
        } catch {
            logger.warning("\(name): cannot redirect \(wanted.classifier) to \(wanted.routeTarget): \(error)")
            if !flowRedirects.values.contains(where: { $0.routeTarget == wanted.routeTarget }) { redirector.stopRedirect(to: wanted.routeTarget, user: self) }
        }
    }

    /// Redirect route target → classifiers (the original's `redirect_rt_2_classifiers`).
    public var redirectClassifiers: [ExtendedCommunity: Set<TrafficClassifier>] {
        var out: [ExtendedCommunity: Set<TrafficClassifier>] = [:]
        for r in flowRedirects.values { out[r.routeTarget, default: []].insert(r.classifier) }
        return out
    }

    // MARK: Looking glass

    override func lookingGlassFields(href: (String) -> JSONValue) -> [(String, JSONValue)] {
        func targets(_ rts: [ExtendedCommunity]) -> JSONValue { .array(rts.map { .string("\($0)") }) }
        var fields: [(String, JSONValue)] = [
            ("gateway_ip", .string("\(gateway)")), ("subnet_prefix_length", JSONValue(prefixLength)),
            ("readvertise", readvertise.map { .object([("from", targets($0.from)), ("to", targets($0.to))]) } ?? .object([])),
        ]
        if let a = attract {
            fields.append(("attract_traffic", .object([
                ("redirect_rts", targets(a.redirectRTs)), ("classifier", a.classifier.json), ("to", targets(a.to)),
                ("static_destination_prefixes", .array(a.staticDestinationPrefixes.map { .string("\($0)") })),
            ])))
        } else {
            fields.append(("attract_traffic", .object([])))
        }
        fields.append(("readvertised", .array(readvertised.keys.flatMap { tracker.bestRoutes($0).filter(isReadvertisable) }.map { Self.routeJSON($0, sourceName: sourceName($0.source)) })))
        fields.append(("redirects", .object(redirectClassifiers.sorted { $0.key < $1.key }.map { ("\($0.key)", .array($0.value.map { $0.json }.sorted { $0.serialized() < $1.serialized() })) })))
        return fields
    }
}
