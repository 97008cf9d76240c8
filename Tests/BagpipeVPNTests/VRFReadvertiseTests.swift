import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import Dataplane
@testable import BagpipeVPN
import Testing

/// Re-advertisement, traffic attraction and redirection in VRFs (reference §8.3): behaviours 29-41
/// of the original's `TestVRF`, and 15 (redirect instances). Counts are of what the peer is sent.
@Suite struct VRFReadvertiseTests {
    static let rt1 = ExtendedCommunity.routeTarget(as: 64512, 1), rt2 = ExtendedCommunity.routeTarget(as: 64512, 2)
    static let rt3 = ExtendedCommunity.routeTarget(as: 64512, 3), rt4 = ExtendedCommunity.routeTarget(as: 64512, 4)
    static let rt5 = ExtendedCommunity.routeTarget(as: 64512, 5)
    static let tc = TrafficClassifier(destinationPort: .init(80, 80), ipProtocol: 6)
    static func tc(_ prefix: String) -> TrafficClassifier { tc.destined(to: IPPrefix(prefix)!) }

    /// A VRF importing and exporting 64512:1 that re-advertises 64512:3 to 64512:4 (the original's fixture).
    static func port(_ n: Int, extra: [String: Any] = [:]) -> [String: Any] {
        [
            "vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": "52:54:00:00:00:0\(n)", "local_port": "tap\(n)", "import_rt": ["64512:1"],
            "export_rt": ["64512:1"], "ip_address": "10.0.0.\(n)", "gateway_ip": "10.0.0.254", "readvertise": ["from_rt": ["64512:3"], "to_rt": ["64512:4"]],
        ].merging(extra) { $1 }
    }

    static var attract: [String: Any] { ["redirect_rts": ["64512:5"], "classifier": ["destinationPort": "80", "protocol": "tcp"]] }

    var vpnAnnouncements: Int = 0

    func vpnPrefixes(_ h: ManagerHost) -> [(VPNPrefix, AttributeSet)] {
        h.announced.compactMap { if case .vpnPrefix(let p) = $0.1.nlri { (p, $0.2) } else { nil } }
    }

    func flows(_ h: ManagerHost) -> [(FlowSpecRule, AttributeSet)] {
        h.announced.compactMap { if case .flowSpec(let r) = $0.1.nlri { (r, $0.2) } else { nil } }
    }

    @Test func behaviour29ImportedRouteGoesToTheDataplaneAndIsNotReadvertised() throws {
        let h = ManagerHost()
        try h.attach(Self.port(1))
        h.reset()
        h.receive(ManagerHost.vpnRoute("1.1.1.1/32", targets: [Self.rt1, Self.rt2]))
        #expect(h.log.isEmpty, "nothing re-advertised: \(h.log)")
        #expect(h.dummy("vrf-1")?.remotes.map(\.destination) == [.prefix(IPPrefix("1.1.1.1/32")!)])
    }

    @Test func behaviours30To35Readvertisement() throws {
        let h = ManagerHost()
        try h.attach(Self.port(1))
        let vrf = try #require(h.manager.instance("vrf-1") as? IPVPNInstance)
        let nlri1 = ManagerHost.vpnRoute("1.1.1.1/32", rd: 11, targets: [Self.rt1, Self.rt2])
        h.receive(nlri1)
        h.reset()

        // 30: a route with the from_rt is re-advertised once, to to_rt only, with RT-Records of its
        // targets and of its own records, with another RD; the dataplane is not touched.
        let nlri2 = ManagerHost.vpnRoute("2.2.2.2/32", rd: 12, label: 200, targets: [Self.rt3], records: [Self.rt1])
        h.receive(nlri2)
        var routes = vpnPrefixes(h)
        try #require(routes.count == 1 && h.log.count == 1, "\(h.log)")
        #expect(routes[0].0.prefix == IPPrefix("2.2.2.2/32")! && routes[0].1.targets == [Self.rt4])
        #expect(routes[0].1.records.isSuperset(of: [Self.rt3.asRouteTargetRecord, Self.rt1.asRouteTargetRecord]))
        #expect(routes[0].0.routeDistinguisher != .ipv4(ManagerHost.pe2, 12) && routes[0].0.routeDistinguisher != vrf.routeDistinguisher)
        #expect(routes[0].1.nextHop == .vpnIPv4(RouteDistinguisher(rawValue: 0), ManagerHost.local))
        #expect(h.dummy("vrf-1")?.remotes.count == 1, "no dataplane for a route that is only re-advertised")

        // 31: a new port: its own route and the re-advertisement through it (its label, its RD).
        h.reset()
        try h.attach(Self.port(2))
        routes = vpnPrefixes(h)
        try #require(routes.count == 2 && h.withdrawn.isEmpty, "\(h.log)")
        let own = try #require(routes.first { $0.0.prefix == IPPrefix("10.0.0.2/32")! })
        let readvertised = try #require(routes.first { $0.0.prefix == IPPrefix("2.2.2.2/32")! })
        #expect(own.1.targets == [Self.rt1] && readvertised.1.targets == [Self.rt4])
        #expect(readvertised.0.labels == own.0.labels && readvertised.0.labels.labels != [200], "the port's label")
        let port1Readvertised = h.held[.ipv4VPN]?.values.filter { if case .vpnPrefix(let p) = $0.0.nlri { p.prefix == IPPrefix("2.2.2.2/32")! } else { false } }
        #expect(port1Readvertised?.count == 2, "one re-advertisement per port, each with its RD")

        // 32: a route whose RT-Records name a to_rt came through here: not re-advertised.
        h.reset()
        let nlri3 = ManagerHost.vpnRoute("3.3.3.3/32", rd: 13, targets: [Self.rt3], records: [Self.rt4])
        h.receive(nlri3)
        #expect(h.log.isEmpty, "\(h.log)")
        h.withdraw(nlri3)

        // 33: unplugging port 2 withdraws its route and the re-advertisement through it.
        h.reset()
        try h.detach(Self.port(2))
        #expect(h.withdrawn.count == 2 && h.announced.isEmpty, "\(h.log)")

        // 34: NLRI 1 gains the from_rt: re-advertised, and still in the dataplane.
        h.reset()
        let calls = h.dummy("vrf-1")?.calls.count ?? 0
        h.receive(ManagerHost.vpnRoute("1.1.1.1/32", rd: 11, targets: [Self.rt1, Self.rt2, Self.rt3]))
        routes = vpnPrefixes(h)
        #expect(routes.count == 1 && routes[0].0.prefix == IPPrefix("1.1.1.1/32")! && routes[0].1.targets == [Self.rt4])
        #expect(h.dummy("vrf-1")?.remotes.map(\.destination) == [.prefix(IPPrefix("1.1.1.1/32")!)])
        #expect(h.dummy("vrf-1")?.calls.dropFirst(calls).contains { $0.hasPrefix("remove") } == false, "not removed on the way")
        // Withdrawing the re-advertised route: one withdraw, no dataplane change.
        h.reset()
        let remotes = h.dummy("vrf-1")?.remotes
        h.withdraw(nlri2)
        #expect(h.withdrawn.count == 1 && h.announced.isEmpty && h.dummy("vrf-1")?.remotes == remotes)

        // 35: a second route for a re-advertised prefix (another RD and label): still one
        // re-advertisement; withdrawing it changes nothing; withdrawing the last withdraws it.
        h.receive(nlri2)
        h.reset()
        let nlri2bis = ManagerHost.vpnRoute("2.2.2.2/32", rd: 22, label: 222, targets: [Self.rt3], records: [Self.rt1])
        h.receive(nlri2bis)
        let held = h.held[.ipv4VPN]?.values.filter { if case .vpnPrefix(let p) = $0.0.nlri { p.prefix == IPPrefix("2.2.2.2/32")! } else { false } }
        #expect(held?.count == 1 && h.withdrawn.isEmpty)
        h.withdraw(nlri2bis)
        #expect(h.withdrawn.isEmpty)
        h.withdraw(nlri2)
        #expect(h.withdrawn.count == 1)
    }

    @Test func behaviour36FlowspecRouteWithFromRTIsReadvertisedWithARedirectToUs() throws {
        let h = ManagerHost()
        try h.attach(Self.port(1, extra: ["attract_traffic": Self.attract]))
        let vrf = try #require(h.manager.instance("vrf-1"))
        h.reset()
        h.receive(ManagerHost.flowRoute(Self.tc("1.1.1.1/32"), targets: [Self.rt3], extra: [.redirect(as: 64512, 9)]))
        let defaults = vpnPrefixes(h)
        let flow = flows(h)
        try #require(defaults.count == 1 && flow.count == 1, "\(h.log)")
        #expect(defaults[0].0.prefix.length == 0 && defaults[0].1.targets == [Self.rt4])
        #expect(flow[0].0.routeDistinguisher == vrf.routeDistinguisher && flow[0].0.components == Self.tc("1.1.1.1/32").flowSpecComponents)
        #expect(flow[0].1.targets == [Self.rt4] && flow[0].1.records.contains(Self.rt3.asRouteTargetRecord))
        #expect(flow[0].1.attributes.extendedCommunities.contains(.redirect(as: 64512, 5)), "redirect to the attract route target")
    }

    @Test func behaviour37AttractFirstPrefixDefaultAndFlowThenFlowOnly() throws {
        let h = ManagerHost()
        try h.attach(Self.port(1, extra: ["attract_traffic": Self.attract]))
        #expect(h.announced.count == 1, "only the port's route")
        h.reset()
        let nlri1 = ManagerHost.vpnRoute("1.1.1.1/32", rd: 11, targets: [Self.rt3])
        h.receive(nlri1)
        try #require(h.announced.count == 2, "\(h.log)")
        let d = try #require(vpnPrefixes(h).first)
        #expect(d.0.prefix == IPPrefix("0.0.0.0/0")! && d.1.targets == [Self.rt4] && !d.1.targets.contains(Self.rt3))
        let f = try #require(flows(h).first)
        #expect(f.0.components == Self.tc("1.1.1.1/32").flowSpecComponents && f.1.targets == [Self.rt5])
        #expect(f.1.attributes.extendedCommunities.contains(.redirect(as: 64512, 4)), "redirect to to_rt")
        h.reset()
        let nlri2 = ManagerHost.vpnRoute("2.2.2.2/32", rd: 12, targets: [Self.rt3])
        h.receive(nlri2)
        #expect(h.announced.count == 1 && flows(h).first?.0.components == Self.tc("2.2.2.2/32").flowSpecComponents, "\(h.log.map { "\($0)" }.joined(separator: "\n"))")
        // Withdraws mirror: the second prefix's flow, then the first's with the default route.
        h.reset()
        h.withdraw(nlri2)
        #expect(h.withdrawn.count == 1)
        h.withdraw(nlri1)
        #expect(h.withdrawn.count == 3 && h.announced.isEmpty)
    }

    @Test(arguments: [false, true])
    func behaviour38AttractWithStaticPrefixes(readvertise: Bool) throws {
        let h = ManagerHost()
        var fields = Self.port(1, extra: ["attract_traffic": Self.attract.merging(["to_rt": ["64512:4"], "static_destination_prefixes": ["10.10.10.10/32", "20.20.20.20/32"]]) { $1 }])
        if !readvertise { fields["readvertise"] = nil }
        try h.attach(fields)
        // The port's route, its default route, a flow per static prefix.
        try #require(h.announced.count == 4, "\(h.log.map { "\($0)" }.joined(separator: "\n"))")
        #expect(Set(flows(h).map(\.0.components)) == [Self.tc("10.10.10.10/32").flowSpecComponents, Self.tc("20.20.20.20/32").flowSpecComponents])
        #expect(vpnPrefixes(h).contains { $0.0.prefix.length == 0 && $0.1.targets == [Self.rt4] })
        h.reset()
        h.receive(ManagerHost.vpnRoute("1.1.1.1/32", targets: [Self.rt3]))
        if readvertise {
            // The flow for the new prefix; the default route again, now with the prefix's RT-Records too.
            #expect(flows(h).map(\.0.components) == [Self.tc("1.1.1.1/32").flowSpecComponents], "\(h.log)")
            #expect(vpnPrefixes(h).allSatisfy { $0.0.prefix.length == 0 && $0.1.records.contains(Self.rt3.asRouteTargetRecord) }, "\(h.log)")
        } else {
            #expect(h.log.isEmpty, "nothing is re-advertised without readvertise: \(h.log)")
        }
    }

    @Test func behaviours39And15RedirectionAndSharedRedirectInstances() throws {
        let h = ManagerHost()
        try h.attach(Self.port(1))
        var other = Self.port(1)
        (other["vpn_instance_id"], other["import_rt"], other["readvertise"]) = ("vrf-2", ["64512:2"], nil)
        try h.attach(other)
        let redirect = VPNManager.redirectInstanceID(Self.rt5)
        #expect(redirect == "redirect-to-ipvpn-64512_5")
        let flow1 = ManagerHost.flowRoute(Self.tc("1.1.1.1/32"), rd: 1, targets: [Self.rt1], extra: [.redirect(as: 64512, 5)])
        let flow2 = ManagerHost.flowRoute(Self.tc("2.2.2.2/32"), rd: 2, targets: [Self.rt1], extra: [.redirect(as: 64512, 5)])
        h.receive(flow1)
        let target = try #require(h.manager.instance(redirect) as? IPVPNInstance, "created for the first redirect")
        #expect(target.importRTs == [Self.rt5] && target.exportRTs.isEmpty)
        #expect(h.dummy("vrf-1")?.classifiers == [Self.tc("1.1.1.1/32"): target.id])
        h.receive(flow2)
        let vrf1 = try #require(h.manager.instance("vrf-1") as? IPVPNInstance)
        #expect(vrf1.redirectClassifiers == [Self.rt5: [Self.tc("1.1.1.1/32"), Self.tc("2.2.2.2/32")]])
        // 15: another VRF redirecting to the same target shares the instance.
        let flow3 = ManagerHost.flowRoute(Self.tc("3.3.3.3/32"), rd: 3, targets: [Self.rt2], extra: [.redirect(as: 64512, 5)])
        h.receive(flow3)
        #expect(h.manager.instance(redirect) === target && h.dummy("vrf-2")?.classifiers == [Self.tc("3.3.3.3/32"): target.id])
        // Withdraws: the classifier goes; the redirect stops with the last one of the VRF.
        h.withdraw(flow2)
        #expect(vrf1.redirectClassifiers == [Self.rt5: [Self.tc("1.1.1.1/32")]])
        h.withdraw(flow1)
        #expect(vrf1.redirectClassifiers.isEmpty && h.dummy("vrf-1")?.classifiers.isEmpty == true)
        #expect(h.manager.instance(redirect) != nil, "vrf-2 still redirects to it")
        h.withdraw(flow3)
        #expect(h.manager.instance(redirect) == nil, "removed with its last user")
        // A flowspec route with two redirect actions is not installed.
        h.receive(ManagerHost.flowRoute(Self.tc("4.4.4.4/32"), targets: [Self.rt1], extra: [.redirect(as: 64512, 5), .redirect(as: 64512, 6)]))
        #expect(vrf1.redirectClassifiers.isEmpty && h.manager.instance(redirect) == nil)
    }

    @Test func behaviour40EachEndpointContributesADefaultRoute() throws {
        let h = ManagerHost()
        try h.attach(Self.port(1, extra: ["attract_traffic": Self.attract, "lb_consistent_hash_order": 0]))
        try h.attach(Self.port(2, extra: ["attract_traffic": Self.attract, "lb_consistent_hash_order": 1]))
        h.reset()
        h.receive(ManagerHost.vpnRoute("1.1.1.1/32", targets: [Self.rt3]))
        let defaults = vpnPrefixes(h).filter { $0.0.prefix.length == 0 }
        #expect(h.announced.count == 3 && defaults.count == 2 && flows(h).count == 1, "\(h.log)")
        #expect(Set(defaults.map(\.0.routeDistinguisher)).count == 2, "a distinct RD per endpoint")
        #expect(Set(defaults.compactMap { d in d.1.attributes.extendedCommunities.first { if case .consistentHashSortOrder = $0.kind { true } else { false } } }) == [.consistentHashSortOrder(0), .consistentHashSortOrder(1)])
        h.reset()
        try h.attach(Self.port(3, extra: ["attract_traffic": Self.attract]))
        #expect(h.announced.count == 2 && vpnPrefixes(h).contains { $0.0.prefix.length == 0 }, "its route and its default route: \(h.log)")
        h.reset()
        for n in 1...3 { try h.detach(Self.port(n)) }
        let defaultWithdraws = h.withdrawn.filter { if case .vpnPrefix(let p) = $0.1.nlri { p.prefix.length == 0 } else { false } }
        #expect(defaultWithdraws.count == 3 && h.withdrawn.contains { if case .flowSpec = $0.1.nlri { true } else { false } })
        #expect((h.held[.ipv4VPN] ?? [:]).isEmpty && (h.held[.ipv4FlowSpecVPN] ?? [:]).isEmpty)
    }

    @Test func behaviour41StopRemovesFlowspecStateRouteByRoute() throws {
        let h = ManagerHost()  // a driver that does not ask for cleanup assist
        try h.attach(Self.port(1))
        h.receive(ManagerHost.flowRoute(Self.tc("1.1.1.1/32"), targets: [Self.rt1], extra: [.redirect(as: 64512, 5)]))
        let dummy = try #require(h.dummy("vrf-1"))
        #expect(h.manager.instance(VPNManager.redirectInstanceID(Self.rt5)) != nil)
        try h.detach(Self.port(1))
        #expect(dummy.calls.contains("stop redirect \(Self.tc("1.1.1.1/32"))"), "the classifier was removed before cleanup: \(dummy.calls)")
        #expect(h.manager.instance(VPNManager.redirectInstanceID(Self.rt5)) == nil, "the redirect VRF lost its user")
    }

    @Test func attractTrafficRulesAreClientErrors() throws {
        let h = ManagerHost()
        let cases: [[String: Any]] = [
            ["redirect_rts": ["64512:5"]],  // no classifier
            ["classifier": ["destinationPort": "80"]],  // no redirect_rts
            Self.attract.merging(["to_rt": ["64512:4"]]) { $1 },  // to_rt without static prefixes
            Self.attract.merging(["to_rt": ["64512:7"], "static_destination_prefixes": ["1.0.0.0/8"]]) { $1 },  // differs from readvertise.to_rt
            Self.attract.merging(["classifier": ["destinationPort": "80:20"]]) { $1 },  // bad range
            Self.attract.merging(["classifier": ["sourcePort": "x"]]) { $1 },
        ]
        for attract in cases {
            #expect(throws: VPNError.self, "\(attract)") { try h.attach(Self.port(1, extra: ["attract_traffic": attract])) }
        }
        #expect(h.manager.externalIDs.isEmpty)
    }
}
