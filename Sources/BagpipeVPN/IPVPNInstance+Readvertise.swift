import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire

/// Re-advertisement and traffic attraction (reference §8.3), the building blocks of the original's
/// service chaining.
///
/// - Readvertise: a best route carrying a `from_rt` (and no RT-Record of ours, which would mean it
///   is one of our own re-advertisements come back) is advertised again by every to-port endpoint
///   of this VRF, with the endpoint's RD and label, this host as next hop, the `to_rt` targets and
///   the route's targets added as RT-Records.
/// - Attract traffic: instead of the prefixes themselves, every endpoint advertises a default route
///   to `to_rt`, and for each prefix a flowspec route (the classifier, destination the prefix) with
///   the `redirect_rts` targets and a redirect to `to_rt` asks the VRFs that import it to send
///   matching traffic here. Static destination prefixes attract traffic without any route.
///
/// What is advertised is a function of the endpoints and the best routes; each change re-derives
/// only the routes it can affect, and only differences reach the engine.
extension IPVPNInstance {
    /// What a derived route derives from.
    enum DerivedSource: Hashable {
        case readvertisedOnEndpoint(IPPrefix, PluggedKey)
        case defaultOnEndpoint(PluggedKey, AddressFamily)
        /// A flowspec route attracting traffic to a prefix (re-advertised or static).
        case redirectFlow(IPPrefix)
        /// A flowspec route re-advertised with our RD and a redirect to our attract route target.
        case readvertisedFlow([FlowSpecComponent])
    }

    struct Derived: Equatable {
        var family: AddressFamily
        var element: NLRIElement
        var attributes: [PathAttribute]
        var nextHop: NextHop
    }

    /// The targets of what this VRF re-advertises.
    var toRTs: [ExtendedCommunity] { attract?.to ?? readvertise?.to ?? [] }

    /// Static destination prefixes attract traffic only with an explicit `to_rt`.
    var staticPrefixes: [IPPrefix] { attract?.explicitTo == true ? attract?.staticDestinationPrefixes ?? [] : [] }

    /// Whether a best route is re-advertised: a VPN route (a flowspec route too when attracting
    /// traffic) with a `from_rt`, and no RT-Record naming a `to_rt` or a redirect route target (it
    /// went through here already).
    func isReadvertisable(_ route: RouteEngine.Route) -> Bool {
        switch route.element.nlri {
        case .vpnPrefix: break
        case .flowSpec where attract != nil: break
        default: return false
        }
        let from = Set((readvertise?.from ?? []).compactMap(RouteTargetKey.init))
        guard !from.isDisjoint(with: route.attributes.routeTargetKeys) else { return false }
        let ours = Set((toRTs + (attract?.redirectRTs ?? [])).compactMap(RouteTargetKey.init))
        let records = route.attributes.attributes.extendedCommunities.filter { $0.subtype == ExtendedCommunity.Subtype.routeTargetRecord }
        return !records.contains { RouteTargetKey($0.recordedRouteTarget).map(ours.contains) ?? false }
    }

    /// RT-Records of a re-advertisement: the route's own, plus its route targets as records.
    static func records(of route: RouteEngine.Route) -> Set<ExtendedCommunity> {
        var out = Set(route.attributes.attributes.extendedCommunities.filter { $0.subtype == ExtendedCommunity.Subtype.routeTargetRecord })
        for rt in route.attributes.routeTargetKeys { out.insert(rt.community.asRouteTargetRecord) }
        return out
    }

    var toPortEndpoints: [PluggedKey] { plugged.filter { $0.value.endpoint.direction != .fromPort }.map(\.key) }

    /// A best route of `entry` changed: what it re-advertises follows.
    func readvertisedEntryChanged(_ entry: TrackedEntry) {
        switch entry {
        case .prefix, .flow: break
        default: return
        }
        let best = tracker.bestRoutes(entry).filter(isReadvertisable)
        let records = best.isEmpty ? nil : best.reduce(into: Set<ExtendedCommunity>()) { $0.formUnion(Self.records(of: $1)) }
        guard records != readvertised[entry] else { return }
        readvertised[entry] = records
        let endpoints = toPortEndpoints
        var sources: Set<DerivedSource> = []
        switch entry {
        case .prefix(let p) where attract == nil: sources.formUnion(endpoints.map { .readvertisedOnEndpoint(p, $0) })
        case .prefix(let p): sources.insert(.redirectFlow(p))
        case .flow(let c): sources.insert(.readvertisedFlow(c))
        default: break
        }
        if attract != nil { sources.formUnion(defaultSources(endpoints)) }
        reconcile(sources)
    }

    /// The endpoints changed: everything derived per endpoint, and the flows that need one.
    func reconcileDerivedForEndpoints() {
        let endpoints = toPortEndpoints
        var sources = Set(derived.keys)
        for entry in readvertised.keys {
            switch entry {
            case .prefix(let p) where attract == nil: sources.formUnion(endpoints.map { .readvertisedOnEndpoint(p, $0) })
            case .prefix(let p): sources.insert(.redirectFlow(p))
            case .flow(let c): sources.insert(.readvertisedFlow(c))
            default: break
            }
        }
        if attract != nil {
            sources.formUnion(staticPrefixes.map { .redirectFlow($0) })
            sources.formUnion(defaultSources(endpoints))
        }
        reconcile(sources)
    }

    func defaultSources(_ endpoints: [PluggedKey]) -> [DerivedSource] {
        endpoints.flatMap { e in [AddressFamily.ipv4VPN, .ipv6VPN].map { .defaultOnEndpoint(e, $0) } }
    }

    /// Advertises what the sources derive now, withdraws what they no longer derive.
    func reconcile(_ sources: Set<DerivedSource>) {
        for source in sources {
            let wanted = derivedRoute(source)
            let current = derived[source]
            if wanted == current { continue }
            if let current, wanted.map({ RouteKey($0.element) != RouteKey(current.element) || $0.family != current.family }) ?? true {
                engine.withdraw(from: worker, family: current.family, current.element)
            }
            if let wanted { engine.advertise(from: worker, family: wanted.family, wanted.element, nextHop: wanted.nextHop, attributes: wanted.attributes) }
            derived[source] = wanted
        }
    }

    /// The route a source derives now, nil when none.
    func derivedRoute(_ source: DerivedSource) -> Derived? {
        let to = toRTs
        switch source {
        case .readvertisedOnEndpoint(let prefix, let key):
            guard attract == nil, let records = readvertised[.prefix(prefix)], let (endpoint, placement) = plugged[key], endpoint.direction != .fromPort,
                let rd = placement.endpointRD
            else { return nil }
            let family = Self.family(of: prefix)
            return Derived(
                family: family, element: route(prefix, label: endpoint.label, routeDistinguisher: rd),
                attributes: attributes(localPref: nil, targets: to, extra: records.sorted() + [.consistentHashSortOrder(placement.loadBalancingOrder)]), nextHop: nextHop(family))
        case .defaultOnEndpoint(let key, let family):
            guard attract != nil, let (endpoint, placement) = plugged[key], endpoint.direction != .fromPort, let rd = placement.endpointRD else { return nil }
            var families: Set<AddressFamily> = []
            var records = Set<ExtendedCommunity>()
            for (entry, r) in readvertised {
                records.formUnion(r)
                if case .prefix(let p) = entry { families.insert(Self.family(of: p)) } else { families.insert(.ipv4VPN) }
            }
            for p in staticPrefixes { families.insert(Self.family(of: p)) }
            if !staticPrefixes.isEmpty { records.formUnion(to.map(\.asRouteTargetRecord)) }
            guard families.contains(family) else { return nil }
            let any = family == .ipv4VPN ? IPPrefix(.v4(IPv4Address(0)), length: 0) : IPPrefix(.v6(IPv6Address(high: 0, low: 0)), length: 0)
            return Derived(
                family: family, element: route(any, label: endpoint.label, routeDistinguisher: rd),
                attributes: attributes(localPref: nil, targets: to, extra: records.sorted() + [.consistentHashSortOrder(placement.loadBalancingOrder)]), nextHop: nextHop(family))
        case .redirectFlow(let prefix):
            guard let a = attract, let target = to.first, !toPortEndpoints.isEmpty, readvertised[.prefix(prefix)] != nil || staticPrefixes.contains(prefix) else { return nil }
            return flow(a.classifier.destined(to: prefix).flowSpecComponents, targets: a.redirectRTs, extra: [Self.redirect(to: target)])
        case .readvertisedFlow(let components):
            guard let a = attract, let attractRT = a.redirectRTs.first, !toPortEndpoints.isEmpty, let records = readvertised[.flow(components)] else { return nil }
            return flow(components, targets: to, extra: records.sorted() + [Self.redirect(to: attractRT)])
        }
    }

    /// A flowspec route of ours: our RD, the rules, the targets and a redirect action.
    func flow(_ components: [FlowSpecComponent], targets: [ExtendedCommunity], extra: [ExtendedCommunity]) -> Derived {
        var isIPv6 = false
        for case .prefix(_, let p, _) in components where !p.isIPv4 { isIPv6 = true }
        let family: AddressFamily = isIPv6 ? .ipv6FlowSpecVPN : .ipv4FlowSpecVPN
        let element = NLRIElement(.flowSpec(FlowSpecRule(routeDistinguisher: routeDistinguisher, components: components)))
        let attributes = [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100)), PathAttribute(.extendedCommunities(targets + extra)),
        ]
        return Derived(family: family, element: element, attributes: attributes, nextHop: .none)
    }

    /// Traffic-Redirect (RFC 8955 §7.4, 2-octet AS form) to a route target.
    static func redirect(to routeTarget: ExtendedCommunity) -> ExtendedCommunity {
        .redirect(as: UInt16(truncatingIfNeeded: routeTarget.value >> 32), UInt32(truncatingIfNeeded: routeTarget.value))
    }
}
