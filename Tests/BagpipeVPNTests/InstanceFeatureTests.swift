import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import Dataplane
@testable import BagpipeVPN
import Testing

/// Behaviours 27 and 52 of the original, and what this version adds: MAC mobility (RFC 7432 §15),
/// VPNv6 endpoints and routes (RFC 4659), E-VPN to VRF links (reference §8.6).
@Suite struct InstanceFeatureTests {
    static let rt1 = ExtendedCommunity.routeTarget(as: 64512, 1)
    static let pe2 = IPv4Address(192, 0, 2, 2), pe3 = IPv4Address(192, 0, 2, 3)

    static func evpn(_ mac: String = "52:54:00:00:00:01", ip: String? = "10.0.0.1", id: String = "net-1", port: String = "tap1") -> [String: Any] {
        var f: [String: Any] = ["vpn_type": "evpn", "vpn_instance_id": id, "mac_address": mac, "local_port": port, "import_rt": ["64512:1"], "export_rt": ["64512:1"]]
        if let ip { f["ip_address"] = ip }
        return f
    }

    static func ipvpn(_ mac: String = "52:54:00:00:00:01", ip: String = "10.0.0.5", gateway: String = "10.0.0.1", localPort: Any = "tap1") -> [String: Any] {
        [
            "vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": mac, "local_port": localPort, "import_rt": ["64512:1"], "export_rt": ["64512:1"],
            "ip_address": ip, "gateway_ip": gateway,
        ]
    }

    /// A type-2 route from another PE, with a MAC mobility sequence number when non-zero.
    static func macRoute(_ mac: String, pe: IPv4Address, sequence: UInt32 = 0, localPref: UInt32 = 100) -> (AddressFamily, RouteChange) {
        let e = NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .ipv4(pe, 1), mac: MACAddress(mac)!, ip: nil, labelField1: 5000))))
        let communities: [ExtendedCommunity] = [rt1, .encapsulation(.vxlan)] + (sequence > 0 ? [.macMobility(sequence: sequence)] : [])
        let attrs = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref)), PathAttribute(.extendedCommunities(communities))]
        return (.evpn, .announce(RouteKey(e), e, AttributeSet(attributes: attrs, nextHop: .ipv4(pe))))
    }

    func ourMACRoutes(_ h: ManagerHost) -> [(EVPNMACIPRoute, AttributeSet)] {
        (h.held[.evpn] ?? [:]).values.compactMap { if case .evpn(.macIPAdvertisement(let r)) = $0.0.nlri { (r, $0.1) } else { nil } }
    }

    // MARK: Behaviours 27 and 52

    @Test func behaviour27StopWithCleanupAssistRemovesRouteByRoute() throws {
        let h = ManagerHost(cleanupAssist: true)
        try h.attach(Self.evpn())
        h.receive(Self.macRoute("52:54:00:00:00:99", pe: Self.pe2))
        let dummy = try #require(h.dummy("net-1"))
        #expect(dummy.remotes.count == 1)
        try h.detach(Self.evpn())
        let calls = dummy.calls
        let removal = try #require(calls.firstIndex { $0.hasPrefix("remove 52:54:00:00:00:99") }, "\(calls)")
        #expect(removal < (calls.firstIndex(of: "cleanup") ?? -1), "removed route by route before the cleanup")
        // Without cleanup assist the driver cleans up wholesale: no removal call.
        let g = ManagerHost()
        try g.attach(Self.evpn())
        g.receive(Self.macRoute("52:54:00:00:00:99", pe: Self.pe2))
        let other = try #require(g.dummy("net-1"))
        try g.detach(Self.evpn())
        #expect(!other.calls.contains { $0.hasPrefix("remove") } && other.calls.last == "cleanup")
    }

    @Test func behaviour52RouteEqualityIgnoresExtendedCommunityOrder() throws {
        let engine = RouteEngine(configuration: .init(localAS: 64512, routerID: ManagerHost.local))
        let peer = engine.addPeer(name: "rr", source: PathSource(kind: .peer(external: false, client: false), routerID: IPv4Address(192, 0, 2, 100), address: IPv6Address(high: 0, low: 100)))
        engine.peerEstablished(peer, families: [.ipv4VPN])
        let worker = engine.addLocalWorker(name: "VRF-1")
        let e = NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [16]), routeDistinguisher: .as2(64512, 1), prefix: IPPrefix("10.0.0.1/32")!)))
        func attributes(_ c: [ExtendedCommunity]) -> [PathAttribute] { [PathAttribute(.origin(.igp)), PathAttribute(.extendedCommunities(c))] }
        let a: [ExtendedCommunity] = [Self.rt1, .encapsulation(.mpls), .consistentHashSortOrder(0)]
        engine.advertise(from: worker, family: .ipv4VPN, e, nextHop: .ipv4(ManagerHost.local), attributes: attributes(a))
        while engine.takePending(peer: peer, limit: 10) != nil {}
        engine.advertise(from: worker, family: .ipv4VPN, e, nextHop: .ipv4(ManagerHost.local), attributes: attributes(a.reversed()))
        #expect(engine.takePending(peer: peer, limit: 10) == nil, "the same route, its communities reordered: nothing to send")
        // The tracker's equivalence ignores the order too.
        let route = { (c: [ExtendedCommunity]) in RouteEngine.Route(family: .ipv4VPN, element: e, attributes: AttributeSet(attributes: attributes(c), nextHop: .ipv4(Self.pe2)), source: 7) }
        #expect(BestRouteTracker<Int>.equivalent(route(a), route(a.reversed())))
        // An export change replaces the route targets and keeps the other communities.
        let h = ManagerHost()
        try h.attach(Self.ipvpn())
        var changed = Self.ipvpn()
        changed["export_rt"] = ["64512:7"]
        try h.attach(changed)
        let (_, set) = try #require((h.held[.ipv4VPN] ?? [:]).values.first)
        #expect(set.targets == [.routeTarget(as: 64512, 7)])
        #expect(set.attributes.extendedCommunities.contains(.encapsulation(.mpls)) && set.attributes.extendedCommunities.contains(.consistentHashSortOrder(0)))
    }

    // MARK: MAC mobility (RFC 7432 §15)

    @Test func aMACPluggedHereWhileAnotherPEAdvertisesItGetsTheNextSequenceNumber() throws {
        let h = ManagerHost()
        try h.attach(Self.evpn("52:54:00:00:00:02", ip: nil, port: "tap2"))  // the instance exists, with another MAC
        let remote = Self.macRoute("52:54:00:00:00:01", pe: Self.pe2, sequence: 4)
        h.receive(remote)
        let dummy = try #require(h.dummy("net-1"))
        #expect(dummy.remotes.contains { $0.destination == .mac(MACAddress("52:54:00:00:00:01")!, ip: nil) })
        // The VM arrives here: advertised with sequence 5, and the remote entry leaves the dataplane.
        try h.attach(Self.evpn(ip: nil))
        let ours = try #require(ourMACRoutes(h).first { $0.0.mac == MACAddress("52:54:00:00:00:01")! })
        #expect(ours.1.attributes.extendedCommunities.contains(.macMobility(sequence: 5)))
        #expect(!dummy.remotes.contains { $0.destination == .mac(MACAddress("52:54:00:00:00:01")!, ip: nil) }, "local now")
        // The old PE withdraws: nothing changes here.
        h.withdraw(remote)
        #expect(ourMACRoutes(h).contains { $0.0.mac == MACAddress("52:54:00:00:00:01")! })
    }

    @Test func aHigherSequenceNumberElsewhereMeansTheMACMovedAway() throws {
        let h = ManagerHost()
        try h.attach(Self.evpn(ip: nil))
        #expect(ourMACRoutes(h).count == 1)
        let dummy = try #require(h.dummy("net-1"))
        // Another PE advertises our MAC with sequence 1 (> our 0): it moved there.
        let moved = Self.macRoute("52:54:00:00:00:01", pe: Self.pe3, sequence: 1)
        h.receive(moved)
        #expect(ourMACRoutes(h).isEmpty, "our route is withdrawn")
        #expect(dummy.remotes.contains { $0.destination == .mac(MACAddress("52:54:00:00:00:01")!, ip: nil) && $0.remotePE == Self.pe3 })
        // It goes away there while still plugged here: ours again, with a higher number.
        h.withdraw(moved)
        let ours = try #require(ourMACRoutes(h).first)
        #expect(ours.1.attributes.extendedCommunities.contains(.macMobility(sequence: 2)))
        #expect(dummy.remotes.isEmpty)
    }

    @Test func amongReceivedRoutesTheHighestSequenceNumberWins() throws {
        let h = ManagerHost()
        try h.attach(Self.evpn("52:54:00:00:00:02", ip: nil, port: "tap2"))
        h.receive(Self.macRoute("52:54:00:00:00:01", pe: Self.pe2, sequence: 0, localPref: 300))
        h.receive(Self.macRoute("52:54:00:00:00:01", pe: Self.pe3, sequence: 2, localPref: 100))
        let dummy = try #require(h.dummy("net-1"))
        let entry = try #require(dummy.remotes.first { $0.destination == .mac(MACAddress("52:54:00:00:00:01")!, ip: nil) })
        #expect(entry.remotePE == Self.pe3, "the newer location wins over a higher LOCAL_PREF")
        #expect(dummy.remotes.count == 1)
    }

    // MARK: VPNv6 (RFC 4659)

    @Test func ipv6EndpointsAreAdvertisedAsVPNv6AndVPNv6RoutesInstalled() throws {
        let h = ManagerHost()
        try h.attach(Self.ipvpn(ip: "2001:db8::5", gateway: "2001:db8::1"))
        let (element, set) = try #require((h.held[.ipv6VPN] ?? [:]).values.first)
        guard case .vpnPrefix(let p) = element.nlri else { Issue.record("not a VPN route"); return }
        #expect(p.prefix == IPPrefix("2001:db8::5/128")! && p.labels.count == 1)
        #expect(set.nextHop == .vpnIPv6(RouteDistinguisher(rawValue: 0), IPv6Address(mapping: ManagerHost.local), linkLocal: nil), "IPv4-mapped next hop")
        // A VPNv6 route from another PE (IPv4-mapped next hop) reaches the dataplane.
        h.receive(ManagerHost.vpnRoute("2001:db8:1::/64", targets: [Self.rt1]))
        #expect(h.dummy("vrf-1")?.remotes.contains { $0.destination == .prefix(IPPrefix("2001:db8:1::/64")!) && $0.remotePE == ManagerHost.pe2 } == true)
        // E-VPN type-2 routes carry IPv6 addresses too.
        try h.attach(Self.evpn(ip: "2001:db8::7"))
        #expect(ourMACRoutes(h).contains { $0.0.ip == IPAddress("2001:db8::7") })
        // Without the VPNv6 family an IPv6 VRF endpoint is refused, and nothing is created.
        let g = ManagerHost(ipv6VPN: false)
        #expect(throws: VPNError.self) { try g.attach(Self.ipvpn(ip: "2001:db8::5", gateway: "2001:db8::1")) }
        #expect(g.manager.externalIDs.isEmpty)
    }

    // MARK: E-VPN to VRF links (reference §8.6)

    @Test func anEVPNInstanceLinkedIntoAVRF() throws {
        let h = ManagerHost()
        try h.attach(Self.evpn())
        let evi = try #require(h.manager.instance("net-1") as? EVPNInstance)
        let link = ["evpn": ["id": "net-1"]]
        try h.attach(Self.ipvpn("52:54:00:00:00:aa", ip: "10.0.0.1/24", gateway: "10.0.0.1", localPort: link))
        let vrf = try #require(h.manager.instance("vrf-1") as? IPVPNInstance)
        let expected = GatewayLink(evi: evi.id, vrf: vrf.id)
        #expect(h.ipvpnDriver.gatewayLinks == [expected])
        #expect(expected.eviSide.utf8.count <= 15 && expected.vrfSide.utf8.count <= 15 && GatewayLink(evi: .max, vrf: .max).eviSide.utf8.count <= 15)
        #expect(h.dummy("net-1")?.gatewayPorts == [expected.eviSide: .v4(IPv4Address(10, 0, 0, 1))])
        #expect(h.dummy("vrf-1")?.plugged.map(\.port.linuxif) == [expected.vrfSide], "plugged on the VRF side of the veth pair")
        #expect(evi.gatewayPort?.vrf === vrf)
        // A second VRF cannot take the same EVI; a missing EVI is a client error that creates nothing.
        var other = Self.ipvpn(localPort: link)
        other["vpn_instance_id"] = "vrf-2"
        #expect(throws: VPNError.self) { try h.attach(other) }
        other["local_port"] = ["evpn": ["id": "nope"]]
        #expect(throws: VPNError.self) { try h.attach(other) }
        #expect(h.manager.instance("vrf-2") == nil)
        // Detach: the link goes with the VRF's last endpoint on it.
        try h.detach(Self.ipvpn("52:54:00:00:00:aa", ip: "10.0.0.1/24", gateway: "10.0.0.1", localPort: link))
        #expect(h.ipvpnDriver.gatewayLinks.isEmpty && h.dummy("net-1")?.gatewayPorts.isEmpty == true && evi.gatewayPort == nil)
    }
}
