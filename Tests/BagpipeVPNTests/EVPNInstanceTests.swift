import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeVPN
import Dataplane
import Testing

/// An E-VPN instance on a real engine (no sockets): a simulated peer sends routes in, and what the
/// engine would send the peer is read back.
@Suite struct EVPNInstanceTests {
    static let rt1 = ExtendedCommunity.routeTarget(as: 64512, 1), rt2 = ExtendedCommunity.routeTarget(as: 64512, 2)
    static let local = IPv4Address(192, 0, 2, 1), pe2 = IPv4Address(192, 0, 2, 2), pe3 = IPv4Address(192, 0, 2, 3)
    static let mac1 = MACAddress("52:54:00:00:00:01")!, remoteMAC = MACAddress("52:54:00:00:00:99")!

    final class Host {
        let engine = RouteEngine(configuration: .init(localAS: 64512, routerID: EVPNInstanceTests.local))
        let driver = DummyDriver(vpnType: .evpn, localAddress: EVPNInstanceTests.local)
        let peer: WorkerID
        let evi: EVPNInstance
        var dummy: DummyInstance { driver.instances[evi.id]! }

        init() throws {
            peer = engine.addPeer(name: "rr", source: PathSource(kind: .peer(external: false, client: false), routerID: IPv4Address(192, 0, 2, 100), address: IPv6Address(high: 0, low: 100)))
            engine.peerEstablished(peer, families: [.evpn, .routeTargetConstraint])
            // The peer (a reflector) asks for everything.
            let all = NLRIElement(.routeTargetMembership(.default))
            engine.receive(from: peer, family: .routeTargetConstraint, [.announce(RouteKey(all), all, AttributeSet(attributes: [PathAttribute(.origin(.igp))], nextHop: .ipv4(IPv4Address(192, 0, 2, 100))))])
            evi = try EVPNInstance(
                id: 1, externalID: "net-1", vni: 5001, routeDistinguisher: .ipv4(EVPNInstanceTests.local, 1), importRTs: [EVPNInstanceTests.rt1],
                exportRTs: [EVPNInstanceTests.rt1], engine: engine, driver: driver, bgpAddress: EVPNInstanceTests.local, salt: "host-a")
            deliver()
        }

        func deliver() { for (w, e) in engine.takeLocalEvents() where w == evi.worker { evi.handle(e) } }

        func receive(_ changes: [RouteChange]) {
            engine.receive(from: peer, family: .evpn, changes)
            deliver()
        }

        /// What the peer holds from us, per family.
        var sent: [AddressFamily: [RouteKey: (NLRIElement, AttributeSet)]] = [:]
        func drain() {
            while let b = engine.takePending(peer: peer, limit: 100) {
                for (set, elements) in b.announce { for e in elements { sent[b.family, default: [:]][RouteKey(e)] = (e, set) } }
                for e in b.withdraw { sent[b.family]?[RouteKey(e)] = nil }
            }
        }
    }

    static func remoteMACRoute(pe: IPv4Address, rd: UInt32 = 9, vni: UInt32 = 5001, localPref: UInt32 = 100, encapsulation: Bool = true) -> RouteChange {
        let e = NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .ipv4(pe, UInt16(rd)), mac: remoteMAC, ip: .v4(IPv4Address(10, 0, 0, 99)), labelField1: vni))))
        let communities = [rt1] + (encapsulation ? [.encapsulation(.vxlan)] : [])
        let attrs = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref)), PathAttribute(.extendedCommunities(communities))]
        return .announce(RouteKey(e), e, AttributeSet(attributes: attrs, nextHop: .ipv4(pe)))
    }

    static func remoteFloodRoute(pe: IPv4Address) -> RouteChange {
        let e = NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: .ipv4(pe, 1), originatingRouter: .v4(pe)))))
        let attrs = [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.extendedCommunities([rt1, .encapsulation(.vxlan)])),
            PathAttribute(.pmsiTunnel(.ingressReplication(endpoint: .v4(pe), labelField: 5001))),
        ]
        return .announce(RouteKey(e), e, AttributeSet(attributes: attrs, nextHop: .ipv4(pe)))
    }

    @Test func creationAdvertisesInclusiveMulticastWithPMSIAndAsksForItsImports() throws {
        let h = try Host()
        h.drain()
        let routes = try #require(h.sent[.evpn]).values
        #expect(routes.count == 1)
        let (element, set) = try #require(routes.first)
        guard case .evpn(.inclusiveMulticast(let r)) = element.nlri else { Issue.record("\(element)"); return }
        #expect(r.routeDistinguisher == .ipv4(Self.local, 1) && r.originatingRouter == .v4(Self.local))
        let pmsi = try #require(set.attributes.pmsiTunnel)
        #expect(pmsi.tunnelType == .ingressReplication && pmsi.labelField == 5001 && pmsi.tunnelIdentifier == [192, 0, 2, 1])
        #expect(Set(set.attributes.extendedCommunities) == [Self.rt1, .encapsulation(.vxlan)])
        #expect(h.sent[.routeTargetConstraint]?.keys.map { $0 } == [RouteKey(NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: Self.rt1))))])
    }

    @Test func plugAdvertisesAMACIPRouteAndFromPortDoesNot() throws {
        let h = try Host()
        let port = LocalPort(linuxif: "tap1", raw: .object([("linuxif", "tap1")]))
        try h.evi.plug(Endpoint(mac: Self.mac1, ip: .v4(IPv4Address(10, 0, 0, 1)), port: port, label: 5001, direction: .both), localPref: 300)
        h.drain()
        let mac = try #require(h.sent[.evpn]?.values.first { if case .evpn(.macIPAdvertisement) = $0.0.nlri { true } else { false } })
        guard case .evpn(.macIPAdvertisement(let r)) = mac.0.nlri else { return }
        #expect(r.mac == Self.mac1 && r.ip == .v4(IPv4Address(10, 0, 0, 1)) && r.labelField1 == 5001 && r.routeDistinguisher == .ipv4(Self.local, 1))
        #expect(mac.1.attributes.localPreference == 300 && mac.1.nextHop == .ipv4(Self.local))
        #expect(h.dummy.plugged.count == 1)
        // The dummy driver forwards in both directions only (as the original's).
        #expect(throws: VPNError("Unsupported direction: to-port")) {
            try h.evi.plug(Endpoint(mac: Self.mac1, ip: nil, port: port, label: 5001, direction: .toPort), localPref: nil)
        }
        #expect(h.dummy.plugged.count == 1, "nothing plugged for the refused endpoint")
        // Unplug withdraws.
        try h.evi.unplug(Endpoint(mac: Self.mac1, ip: .v4(IPv4Address(10, 0, 0, 1)), port: port, label: 5001, direction: .both), lastEndpointOfPort: true)
        h.drain()
        #expect(h.sent[.evpn]?.count == 1, "only the type-3 route left")
        #expect(h.dummy.calls.last == "unplug 52:54:00:00:00:01 10.0.0.1 last=true")
    }

    @Test func remoteRoutesBecomeDataplaneStateAndGo() throws {
        let h = try Host()
        h.receive([Self.remoteMACRoute(pe: Self.pe2), Self.remoteFloodRoute(pe: Self.pe2)])
        #expect(h.dummy.remotes == [RemoteEndpoint(destination: .mac(Self.remoteMAC, ip: .v4(IPv4Address(10, 0, 0, 99))), remotePE: Self.pe2, label: 5001, encapsulations: [.vxlan], loadBalancingOrder: 0)])
        #expect(h.dummy.floodList == [FloodEndpoint(remotePE: Self.pe2, vni: 5001, encapsulations: [.vxlan])])
        // A route without an encapsulation community means "default", which a VXLAN driver cannot use.
        h.receive([Self.remoteMACRoute(pe: Self.pe3, rd: 7, encapsulation: false)])
        #expect(h.dummy.remotes.count == 1)
        h.receive([.withdraw(Self.remoteMACRoute(pe: Self.pe2).key), .withdraw(Self.remoteFloodRoute(pe: Self.pe2).key)])
        #expect(h.dummy.remotes.isEmpty && h.dummy.floodList.isEmpty)
    }

    @Test func aMACThatMovesIsRepointedMakeBeforeBreak() throws {
        let h = try Host()
        h.receive([Self.remoteMACRoute(pe: Self.pe2, rd: 9)])
        // The MAC shows up behind PE3 with a better route (another RD: another route), then PE2 withdraws.
        h.receive([Self.remoteMACRoute(pe: Self.pe3, rd: 9, localPref: 200)])
        #expect(h.dummy.remotes.map(\.remotePE) == [Self.pe3])
        let moves = h.dummy.calls.filter { $0.hasPrefix("setup") || $0.hasPrefix("remove") }
        #expect(moves.count == 3 && moves[1].hasPrefix("setup") && moves[1].contains("192.0.2.3") && moves[2].hasPrefix("remove") && moves[2].contains("192.0.2.2"), "\(moves)")
    }

    @Test func routeTargetChangeReadvertisesAndResubscribes() throws {
        let h = try Host()
        try h.evi.plug(Endpoint(mac: Self.mac1, ip: nil, port: LocalPort(linuxif: "tap1", raw: "tap1"), label: 5001, direction: .both), localPref: nil)
        h.drain()
        h.evi.updateRouteTargets(import: [Self.rt2], export: [Self.rt2])
        h.drain()
        let evpn = try #require(h.sent[.evpn])
        #expect(evpn.count == 2 && evpn.values.allSatisfy { Set($0.1.attributes.extendedCommunities.filter { $0.subtype == 2 }) == [Self.rt2] })
        #expect(Set(h.sent[.routeTargetConstraint]?.values.map(\.0) ?? []) == [NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: Self.rt2)))])
        // A route with the old import target is no longer received.
        h.receive([Self.remoteMACRoute(pe: Self.pe2)])
        #expect(h.dummy.remotes.isEmpty)
        // No export change: nothing is sent again.
        h.evi.updateRouteTargets(import: [Self.rt1], export: [Self.rt2])
        var families: [AddressFamily] = []
        while let b = h.engine.takePending(peer: h.peer, limit: 100) { families.append(b.family) }
        #expect(!families.isEmpty && families.allSatisfy { $0 == .routeTargetConstraint }, "only the membership change: \(families)")
    }

    @Test func stopWithdrawsEverythingAndCleansTheDataplane() throws {
        let h = try Host()
        try h.evi.plug(Endpoint(mac: Self.mac1, ip: nil, port: LocalPort(linuxif: "tap1", raw: "tap1"), label: 5001, direction: .both), localPref: nil)
        h.receive([Self.remoteMACRoute(pe: Self.pe2)])
        h.drain()
        h.evi.stop()
        h.drain()
        #expect((h.sent[.evpn] ?? [:]).isEmpty && (h.sent[.routeTargetConstraint] ?? [:]).isEmpty)
        #expect(h.dummy.cleanedUp && h.dummy.remotes.isEmpty)
    }
}
