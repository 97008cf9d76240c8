import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import NIOCore
import Testing

@Suite struct RouteTargetConstraintTests {
    @Test func behaviours43And54OneMembershipRoutePerImportedTargetInFamilyRTCWithdrawnWithTheLastImporter() {
        let engine = host()
        let evi = engine.addLocalWorker(name: "evi"), vrf = engine.addLocalWorker(name: "vrf")
        engine.subscribe(evi, to: Match(family: .evpn, routeTarget: rt1)!)
        engine.subscribe(vrf, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        // Flowspec imports do not make RTC routes.
        engine.subscribe(vrf, to: Match(family: .ipv4FlowSpecVPN, routeTarget: rt2)!)
        #expect(engine.routes(.routeTargetConstraint).map(\.element) == [membership(rt1)])
        #expect(engine.routes(.routeTargetConstraint).allSatisfy { $0.family == .routeTargetConstraint && $0.source == engine.routeTargetConstraintWorker })
        // A peer subscribes to nothing: its routes never originate membership routes.
        let p = engine.addPeer(name: "p", source: peerSource(id: 5))
        engine.receive(from: p, family: .ipv4VPN, [announce(vpn(5), attributes([rt3]))])
        #expect(engine.routes(.routeTargetConstraint).count == 1)
        // Q10 of the original: the first of two importers to leave withdrew the shared RTC route.
        engine.unsubscribe(evi, from: Match(family: .evpn, routeTarget: rt1)!)
        #expect(engine.routes(.routeTargetConstraint).count == 1)
        engine.unsubscribe(vrf, from: Match(family: .ipv4VPN, routeTarget: rt1)!)
        #expect(engine.routes(.routeTargetConstraint).isEmpty)
    }

    /// RustyBGP #537: the membership route must name what we import, not what we export.
    @Test func membershipRoutesNameImportedNotExportedTargets() {
        let engine = host()
        let vrf = engine.addLocalWorker(name: "vrf")
        engine.subscribe(vrf, to: Match(family: .ipv4VPN, routeTarget: rt1)!)  // import rt1
        engine.advertise(from: vrf, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt2]))  // export rt2
        let p = engine.addPeer(name: "rr", source: peerSource(client: false, id: 9))
        engine.peerEstablished(p, families: [.ipv4VPN, .routeTargetConstraint])
        var view = PeerView()
        view.drain(engine, p)
        #expect(view.keys(.routeTargetConstraint) == [RouteKey(membership(rt1))])
    }

    @Test func peerFilterFromItsMembershipRoutesIncludingTheDefault() {
        let engine = host()
        let vrf = engine.addLocalWorker(name: "vrf")
        engine.advertise(from: vrf, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1]))
        engine.advertise(from: vrf, family: .ipv4VPN, vpn(2), nextHop: nh, attributes: attributes([rt2]))
        engine.advertise(from: vrf, family: .ipv4VPN, vpn(3), nextHop: nh, attributes: attributes([rt3]))
        let rtc = engine.addPeer(name: "rtc", source: peerSource(client: false, id: 2))
        let plain = engine.addPeer(name: "plain", source: peerSource(client: false, id: 3))
        engine.peerEstablished(rtc, families: [.ipv4VPN, .routeTargetConstraint])
        engine.peerEstablished(plain, families: [.ipv4VPN])
        var a = PeerView(), b = PeerView()
        a.drain(engine, rtc)
        b.drain(engine, plain)
        #expect(a.keys(.ipv4VPN).isEmpty, "no membership yet: nothing")
        #expect(b.keys(.ipv4VPN).count == 3, "without RTC: everything")
        // The peer asks for rt1: vpn(1) is sent at once.
        engine.receive(from: rtc, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        a.drain(engine, rtc)
        #expect(a.keys(.ipv4VPN) == [RouteKey(vpn(1))])
        // It stops asking: vpn(1) is withdrawn at once.
        engine.receive(from: rtc, family: .routeTargetConstraint, [withdrawal(membership(rt1))])
        a.drain(engine, rtc)
        #expect(a.keys(.ipv4VPN).isEmpty && a.withdrawals == 1)
        // The default membership route (length 0): everything.
        engine.receive(from: rtc, family: .routeTargetConstraint, [announce(membership(nil), attributes([]))])
        a.drain(engine, rtc)
        #expect(a.keys(.ipv4VPN).count == 3)
        engine.receive(from: rtc, family: .routeTargetConstraint, [withdrawal(membership(nil))])
        a.drain(engine, rtc)
        #expect(a.keys(.ipv4VPN).isEmpty)
        // A route that gains an allowed route target later is sent then.
        engine.receive(from: rtc, family: .routeTargetConstraint, [announce(membership(rt3), attributes([]))])
        engine.advertise(from: vrf, family: .ipv4VPN, vpn(2), nextHop: nh, attributes: attributes([rt2, rt3]))
        a.drain(engine, rtc)
        #expect(a.keys(.ipv4VPN) == [RouteKey(vpn(2)), RouteKey(vpn(3))])
    }

    /// GoBGP #1688: with add-path, withdrawing one path must not lose the other, and withdrawing
    /// the last must reach the peers that hold the route.
    @Test func addPathWithdrawsAreNotLostWithRouteTargetConstraint() {
        let engine = reflector()
        let source = engine.addPeer(name: "pe", source: peerSource(id: 2))
        let client = engine.addPeer(name: "client", source: peerSource(id: 3))
        engine.peerEstablished(source, families: [.ipv4VPN, .routeTargetConstraint])
        engine.peerEstablished(client, families: [.ipv4VPN, .routeTargetConstraint])
        engine.receive(from: client, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        var first = vpn(1), second = vpn(1, label: 200)
        first.pathID = 1
        second.pathID = 2
        engine.receive(from: source, family: .ipv4VPN, [announce(first, attributes([rt1])), announce(second, attributes([rt1], localPref: 200))])
        var view = PeerView()
        view.drain(engine, client)
        #expect(view.routes[.ipv4VPN]?[RouteKey(vpn(1))]?.element == vpn(1, label: 200), "the better path (local pref 200)")
        engine.receive(from: source, family: .ipv4VPN, [withdrawal(second)])
        view.drain(engine, client)
        #expect(view.routes[.ipv4VPN]?[RouteKey(vpn(1))]?.element == vpn(1), "path 1 remains")
        engine.receive(from: source, family: .ipv4VPN, [withdrawal(first)])
        view.drain(engine, client)
        #expect(view.keys(.ipv4VPN).isEmpty && view.withdrawals == 1)
        #expect(engine.destinationCount(.ipv4VPN) == 0, "nothing left behind")
    }

    /// GoBGP #1630: RTC routes bouncing between a reflector and its clients must settle, not loop.
    @Test func membershipRoutesSettle() {
        let engine = RouteEngine(configuration: .init(localAS: 64512, routerID: IPv4Address(192, 0, 2, 1), clusterID: IPv4Address(192, 0, 2, 1)))
        let a = engine.addPeer(name: "a", source: peerSource(id: 2)), b = engine.addPeer(name: "b", source: peerSource(id: 3))
        for p in [a, b] { engine.peerEstablished(p, families: [.ipv4VPN, .routeTargetConstraint]) }
        var va = PeerView(), vb = PeerView()
        engine.receive(from: a, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        engine.receive(from: b, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        va.drain(engine, a)
        vb.drain(engine, b)
        // RFC 4684 §3.2: each client learns that the other imports rt1 (not only the overall best).
        #expect(va.keys(.routeTargetConstraint) == [RouteKey(membership(rt1))])
        #expect(vb.keys(.routeTargetConstraint) == [RouteKey(membership(rt1))])
        _ = engine.takeReadyPeers()
        // The same membership again: nothing to send.
        engine.receive(from: a, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        #expect(engine.takeReadyPeers().isEmpty)
        // Another reflector (a non-client) sends back what we reflected to it: our cluster id is in
        // its CLUSTER_LIST, so it is dropped and nothing is sent.
        let rr2 = engine.addPeer(name: "rr2", source: peerSource(client: false, id: 7))
        engine.peerEstablished(rr2, families: [.ipv4VPN, .routeTargetConstraint])
        var v2 = PeerView()
        v2.drain(engine, rr2)
        let back = v2.routes[.routeTargetConstraint]!.values.map { RouteChange.announce(RouteKey($0.element), $0.element, $0.attributes) }
        #expect(back.count == 1)
        engine.receive(from: rr2, family: .routeTargetConstraint, back)
        #expect(engine.takeReadyPeers().isEmpty)
        let before = (va.announcements, vb.announcements, v2.announcements)
        va.drain(engine, a)
        vb.drain(engine, b)
        v2.drain(engine, rr2)
        #expect(before == (va.announcements, vb.announcements, v2.announcements))
    }
}

extension RouteTargetConstraintTests {
    /// RFC 4684 §3: while a peer without RT-Constraint is up, a reflector asks its RT-Constraint peers
    /// for everything (default membership route), or that peer would miss routes nobody else imports.
    @Test func reflectorAsksForEverythingWhileALegacyPeerIsUp() {
        let engine = reflector()
        let modern = engine.addPeer(name: "gobgpd", source: peerSource(id: 2)), legacy = engine.addPeer(name: "frr", source: peerSource(id: 3))
        engine.peerEstablished(modern, families: [.ipv4VPN, .routeTargetConstraint])
        var view = PeerView()
        view.drain(engine, modern)
        #expect(view.keys(.routeTargetConstraint).isEmpty)
        engine.peerEstablished(legacy, families: [.ipv4VPN])
        view.drain(engine, modern)
        #expect(view.keys(.routeTargetConstraint) == [RouteKey(membership(nil))])
        // The legacy peer's routes reach it whatever their route targets.
        engine.receive(from: modern, family: .ipv4VPN, [announce(vpn(1), attributes([rt3]))])
        var legacyView = PeerView()
        legacyView.drain(engine, legacy)
        #expect(legacyView.keys(.ipv4VPN) == [RouteKey(vpn(1))])
        engine.peerDown(legacy)
        view.drain(engine, modern)
        #expect(view.keys(.routeTargetConstraint).isEmpty, "withdrawn when the last legacy peer goes")
    }
}

@Suite struct ReflectionTests {
    @Test func clientRoutesGoToEveryoneNonClientRoutesOnlyToClientsNeverBack() {
        let engine = reflector()
        let c1 = engine.addPeer(name: "c1", source: peerSource(client: true, id: 2))
        let c2 = engine.addPeer(name: "c2", source: peerSource(client: true, id: 3))
        let n1 = engine.addPeer(name: "n1", source: peerSource(client: false, id: 4))
        let n2 = engine.addPeer(name: "n2", source: peerSource(client: false, id: 5))
        for p in [c1, c2, n1, n2] { engine.peerEstablished(p, families: [.ipv4VPN]) }
        engine.receive(from: c1, family: .ipv4VPN, [announce(vpn(1), attributes([rt1]))])
        engine.receive(from: n1, family: .ipv4VPN, [announce(vpn(2), attributes([rt1]))])
        var views: [WorkerID: PeerView] = [:]
        for p in [c1, c2, n1, n2] { views[p, default: PeerView()].drain(engine, p) }
        #expect(views[c1]!.keys(.ipv4VPN) == [RouteKey(vpn(2))])
        #expect(views[c2]!.keys(.ipv4VPN) == [RouteKey(vpn(1)), RouteKey(vpn(2))])
        #expect(views[n1]!.keys(.ipv4VPN) == [RouteKey(vpn(1))])
        #expect(views[n2]!.keys(.ipv4VPN) == [RouteKey(vpn(1))])
    }

    @Test func originatorAndClusterListSetEverythingElseUntouched() throws {
        let engine = reflector()
        let c1 = engine.addPeer(name: "c1", source: peerSource(id: 2)), c2 = engine.addPeer(name: "c2", source: peerSource(id: 3))
        for p in [c1, c2] { engine.peerEstablished(p, families: [.evpn]) }
        let pmsi = PathAttribute(.pmsiTunnel(PMSITunnel(flags: 0, tunnelType: .init(rawValue: 6), labelField: 0x1234, tunnelIdentifier: [192, 0, 2, 2])))
        let unknown = PathAttribute(flags: [.optional, .transitive], value: .unknown(type: 99, value: [1, 2, 3]))
        let sent = attributes([rt1, .encapsulation(.vxlan)], extra: [pmsi, unknown, PathAttribute(.clusterList([0x0A00_0001]))])
        let route = NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: .as2(64512, 1), ethernetTag: 0, originatingRouter: .v4(IPv4Address(192, 0, 2, 2))))))
        engine.receive(from: c1, family: .evpn, [announce(route, sent, nextHop: .ipv4(IPv4Address(192, 0, 2, 2)))])
        var view = PeerView()
        view.drain(engine, c2)
        let got = try #require(view.routes[.evpn]?[RouteKey(route)])
        #expect(got.attributes.nextHop == .ipv4(IPv4Address(192, 0, 2, 2)))
        #expect(got.attributes.attributes.originatorID == IPv4Address(192, 0, 2, 2))
        #expect(got.attributes.attributes.clusterList == [IPv4Address(192, 0, 2, 1).value, 0x0A00_0001])
        let others = got.attributes.attributes.filter { $0.typeCode != AttributeType.originatorID && $0.typeCode != AttributeType.clusterList }
        #expect(others == sent.filter { $0.typeCode != AttributeType.clusterList })
    }

    @Test func flowspecAndEVPNAreReflectedWithoutAnyLocalInstance() throws {
        let engine = reflector()
        let c1 = engine.addPeer(name: "c1", source: peerSource(id: 2)), c2 = engine.addPeer(name: "c2", source: peerSource(id: 3))
        for p in [c1, c2] { engine.peerEstablished(p, families: [.ipv4FlowSpecVPN, .evpn]) }
        let rule = FlowSpecRule(routeDistinguisher: .as2(64512, 7), components: [.prefix(type: FlowSpecComponentType.destinationPrefix, prefix: IPPrefix(.v4(IPv4Address(10, 0, 0, 0)), length: 24), offset: 0)])
        let flow = NLRIElement(.flowSpec(rule))
        engine.receive(from: c1, family: .ipv4FlowSpecVPN, [announce(flow, attributes([rt1, .redirect(as: 64512, 9)]), nextHop: .none)])
        engine.receive(from: c1, family: .evpn, [announce(macRoute(mac: 1, ip: 1), attributes([rt1]))])
        var view = PeerView()
        view.drain(engine, c2)
        #expect(view.keys(.ipv4FlowSpecVPN) == [RouteKey(flow)])
        #expect(view.keys(.evpn) == [RouteKey(macRoute(mac: 1, ip: 1))])
    }

    @Test func macIPRoutesAreIndexedByRouteDistinguisherAndMAC() {
        let engine = reflector()
        let a = engine.addPeer(name: "a", source: peerSource(id: 2)), b = engine.addPeer(name: "b", source: peerSource(id: 3))
        engine.receive(from: a, family: .evpn, [announce(macRoute(mac: 1, ip: 1), attributes([rt1])), announce(macRoute(mac: 1, ip: 2), attributes([rt1])), announce(macRoute(mac: 2, ip: 3), attributes([rt1]))])
        engine.receive(from: b, family: .evpn, [announce(macRoute(mac: 1, ip: 1), attributes([rt1], localPref: 200))])
        let routes = engine.macRoutes(routeDistinguisher: .as2(64512, 1), mac: MACAddress(1))
        #expect(routes.count == 3, "two IPs of the MAC, one of them from two hosts")
        #expect(Set(routes.map(\.source)) == [a, b])
        #expect(engine.macRoutes(routeDistinguisher: .as2(64512, 2), mac: MACAddress(1)).isEmpty, "another RD")
        engine.receive(from: a, family: .evpn, [withdrawal(macRoute(mac: 1, ip: 1)), withdrawal(macRoute(mac: 1, ip: 2))])
        engine.receive(from: b, family: .evpn, [withdrawal(macRoute(mac: 1, ip: 1))])
        #expect(engine.macRoutes(routeDistinguisher: .as2(64512, 1), mac: MACAddress(1)).isEmpty)
        #expect(engine.macRoutes(routeDistinguisher: .as2(64512, 1), mac: MACAddress(2)).count == 1)
    }

    @Test func loopsAreDropped() {
        let engine = reflector()
        let c1 = engine.addPeer(name: "c1", source: peerSource(id: 2))
        engine.peerEstablished(c1, families: [.ipv4VPN])
        engine.receive(from: c1, family: .ipv4VPN, [
            announce(vpn(1), attributes([rt1], extra: [PathAttribute(.originatorID(IPv4Address(192, 0, 2, 1)))])),
            announce(vpn(2), attributes([rt1], extra: [PathAttribute(.clusterList([7, IPv4Address(192, 0, 2, 1).value]))])),
            announce(vpn(3), attributes([rt1], extra: [PathAttribute(.clusterList([7]))])),
        ])
        #expect(engine.routes(.ipv4VPN).map(\.element) == [vpn(3)])
    }

    /// RFC 4456 §8 on a client too: a reflector that sends a client's own route back (FRR's does)
    /// is ignored by the ORIGINATOR_ID.
    @Test func aHostIgnoresItsOwnRouteReflectedBack() {
        let engine = host()
        let rr = engine.addPeer(name: "rr", source: peerSource(id: 254))
        engine.peerEstablished(rr, families: [.ipv4VPN])
        engine.receive(from: rr, family: .ipv4VPN, [
            announce(vpn(1), attributes([rt1], extra: [PathAttribute(.originatorID(IPv4Address(192, 0, 2, 1))), PathAttribute(.clusterList([9]))])),
            announce(vpn(2), attributes([rt1], extra: [PathAttribute(.originatorID(IPv4Address(192, 0, 2, 7))), PathAttribute(.clusterList([9]))])),
        ])
        #expect(engine.routes(.ipv4VPN).map(\.element) == [vpn(2)])
    }

    @Test func decisionProcess() {
        let engine = reflector()
        let a = engine.addPeer(name: "a", source: peerSource(id: 2)), b = engine.addPeer(name: "b", source: peerSource(id: 3))
        let c = engine.addPeer(name: "c", source: peerSource(id: 4))
        for (i, p) in [a, b, c].enumerated() { engine.setRouterID(of: p, IPv4Address(192, 0, 2, UInt8(2 + i))) }
        func best(_ routes: [(WorkerID, [PathAttribute])]) -> WorkerID? {
            for (p, attrs) in routes { engine.receive(from: p, family: .ipv4VPN, [announce(vpn(1), attrs)]) }
            defer { for (p, _) in routes { engine.receive(from: p, family: .ipv4VPN, [withdrawal(vpn(1))]) } }
            return engine.bestRoutes(.ipv4VPN).first?.source
        }
        #expect(best([(a, attributes([rt1], localPref: 100)), (b, attributes([rt1], localPref: 200))]) == b)
        let longPath = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(.sequence([65001, 65002]))), PathAttribute(.localPreference(100))]
        let shortPath = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(.sequence([65001]))), PathAttribute(.localPreference(100))]
        #expect(best([(a, longPath), (b, shortPath)]) == b)
        let incomplete = [PathAttribute(.origin(.incomplete)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
        #expect(best([(a, incomplete), (b, attributes([]))]) == b)
        #expect(best([(a, attributes([], extra: [PathAttribute(.multiExitDiscriminator(20))])), (b, attributes([], extra: [PathAttribute(.multiExitDiscriminator(10))]))]) == b)
        // RFC 4456 §9: ORIGINATOR_ID replaces the router id; then the shorter CLUSTER_LIST.
        #expect(best([(a, attributes([], extra: [PathAttribute(.originatorID(IPv4Address(10, 0, 0, 9)))])), (b, attributes([], extra: [PathAttribute(.originatorID(IPv4Address(10, 0, 0, 1)))]))]) == b)
        #expect(best([(a, attributes([], extra: [PathAttribute(.originatorID(IPv4Address(10, 0, 0, 1))), PathAttribute(.clusterList([1, 2]))])), (b, attributes([], extra: [PathAttribute(.originatorID(IPv4Address(10, 0, 0, 1))), PathAttribute(.clusterList([1]))]))]) == b)
        #expect(best([(c, attributes([])), (b, attributes([]))]) == b, "lowest router id")
    }

    @Test func bestPathChangeReachesPeersAndPeerDownRestartsCleanly() {
        let engine = reflector()
        let a = engine.addPeer(name: "a", source: peerSource(id: 2)), b = engine.addPeer(name: "b", source: peerSource(id: 3))
        let c = engine.addPeer(name: "c", source: peerSource(id: 4))
        for p in [a, b, c] { engine.peerEstablished(p, families: [.ipv4VPN]) }
        engine.receive(from: a, family: .ipv4VPN, [announce(vpn(1), attributes([rt1]))])
        var vc = PeerView()
        vc.drain(engine, c)
        engine.receive(from: b, family: .ipv4VPN, [announce(vpn(1, label: 7), attributes([rt1], localPref: 300))])
        vc.drain(engine, c)
        #expect(vc.routes[.ipv4VPN]?[RouteKey(vpn(1))]?.element == vpn(1, label: 7))
        // b goes down: its path goes, a's is the best again.
        engine.peerDown(b)
        engine.receive(from: b, family: .ipv4VPN, [withdrawal(vpn(1))])
        vc.drain(engine, c)
        #expect(vc.routes[.ipv4VPN]?[RouteKey(vpn(1))]?.element == vpn(1))
        // c restarts: it gets everything again.
        engine.peerDown(c)
        engine.peerEstablished(c, families: [.ipv4VPN])
        var fresh = PeerView()
        fresh.drain(engine, c)
        #expect(fresh.keys(.ipv4VPN) == [RouteKey(vpn(1))])
    }
}

@Suite struct SharedEncodingTests {
    /// The routes (NLRI keys) in encoded UPDATEs.
    func routes(_ messages: [ByteBuffer]) throws -> Set<RouteKey> {
        var keys = Set<RouteKey>()
        for m in messages {
            guard case .update(let u) = try BGPMessage.decode(m, context: .standard) else { continue }
            for block in u.announced { for e in block { keys.insert(RouteKey(e)) } }
        }
        return keys
    }

    func drain(_ engine: RouteEngine, _ peer: WorkerID) -> [ByteBuffer] {
        var all: [ByteBuffer] = []
        while let batch = engine.takeEncoded(peer: peer, limit: 4, context: .standard) { all += batch.messages }
        return all
    }

    @Test func peersThatDecideAlikeShareEncodingsAndNobodyGetsItsOwnRoutes() throws {
        let engine = reflector()
        let a = engine.addPeer(name: "a", source: peerSource(id: 2)), b = engine.addPeer(name: "b", source: peerSource(id: 3))
        let c = engine.addPeer(name: "c", source: peerSource(id: 4))
        for p in [a, b, c] { engine.peerEstablished(p, families: [.ipv4VPN]) }
        engine.receive(from: a, family: .ipv4VPN, (0..<10).map { announce(vpn($0), attributes([rt1])) })
        let (toA, toB, toC) = (drain(engine, a), drain(engine, b), drain(engine, c))
        #expect(toA.isEmpty, "a's own routes do not go back to a")
        #expect(try routes(toB) == Set((0..<10).map { RouteKey(vpn($0)) }))
        #expect(toB == toC, "b and c decide alike: the same UPDATEs")
        #expect(toB.first.map { b in toC.first.map { $0.readableBytesView.withUnsafeBytes { $0.baseAddress } == b.readableBytesView.withUnsafeBytes { $0.baseAddress } } } == true, "shared, not encoded twice")
        // b sends a route: a and c get it, b does not; a's decisions differ from before, and c's own.
        engine.receive(from: b, family: .ipv4VPN, [announce(vpn(20), attributes([rt1]))])
        #expect(try routes(drain(engine, a)) == [RouteKey(vpn(20))])
        #expect(drain(engine, b).isEmpty)
        #expect(try routes(drain(engine, c)) == [RouteKey(vpn(20))])
    }
}

/// Graceful-restart helper mode for peers whose routes live in the Loc-RIB only (our reflector):
/// a restarting client's routes stay, stale, and only those it does not send again go; its
/// memberships still filter what it is sent meanwhile.
@Suite struct ReflectorHelperModeTests {
    @Test func staleRoutesStayUntilSweptAndOnlyTheOnesNotSentAgainGo() {
        let engine = reflector()
        let restarting = engine.addPeer(name: "restarting", source: peerSource(id: 2))
        let other = engine.addPeer(name: "other", source: peerSource(id: 3))
        for p in [restarting, other] { engine.peerEstablished(p, families: [.ipv4VPN, .routeTargetConstraint]) }
        engine.receive(from: other, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        engine.receive(from: restarting, family: .routeTargetConstraint, [announce(membership(rt1), attributes([]))])
        engine.receive(from: restarting, family: .ipv4VPN, [announce(vpn(1), attributes([rt1])), announce(vpn(2), attributes([rt1]))])
        engine.receive(from: other, family: .ipv4VPN, [announce(vpn(3), attributes([rt1]))])
        var view = PeerView()
        view.drain(engine, other)
        #expect(view.keys(.ipv4VPN) == [RouteKey(vpn(1)), RouteKey(vpn(2))])

        // The client goes away without a NOTIFICATION: nothing is withdrawn from the others.
        engine.markStale(restarting, families: [.ipv4VPN, .routeTargetConstraint])
        engine.peerDown(restarting, dropRoutes: true)
        view.drain(engine, other)
        #expect(view.keys(.ipv4VPN) == [RouteKey(vpn(1)), RouteKey(vpn(2))] && view.withdrawals == 0)
        #expect(engine.staleCount(restarting) == 3)

        // Back: its kept membership lets vpn(3) through at once, before it says anything.
        engine.peerEstablished(restarting, families: [.ipv4VPN, .routeTargetConstraint])
        var back = PeerView()
        back.drain(engine, restarting)
        #expect(back.keys(.ipv4VPN) == [RouteKey(vpn(3))])

        // It sends vpn(1) again, then its End-of-RIB: vpn(2), not sent again, goes.
        engine.receive(from: restarting, family: .ipv4VPN, [announce(vpn(1), attributes([rt1]))])
        #expect(engine.sweepStale(restarting, family: .ipv4VPN) == 1)
        view.drain(engine, other)
        #expect(view.keys(.ipv4VPN) == [RouteKey(vpn(1))] && view.withdrawals == 1)
        // Its membership, not sent again either, goes at the RT-Constraint End-of-RIB: nothing more for it.
        #expect(engine.sweepStale(restarting, family: .routeTargetConstraint) == 1)
        back.drain(engine, restarting)
        #expect(back.keys(.ipv4VPN).isEmpty)
        #expect(engine.staleCount(restarting) == 0)
    }

    @Test func withoutMarkingAPeerDownDropsEverything() {
        let engine = reflector()
        let p = engine.addPeer(name: "p", source: peerSource(id: 2))
        engine.peerEstablished(p, families: [.ipv4VPN])
        engine.receive(from: p, family: .ipv4VPN, [announce(vpn(1), attributes([rt1]))])
        engine.markStale(p, families: [.ipv4VPN])
        engine.peerDown(p, dropRoutes: true)
        engine.peerEstablished(p, families: [.ipv4VPN])
        // A second loss, this time with a NOTIFICATION (no marking): the stale routes go too.
        engine.peerDown(p, dropRoutes: true)
        #expect(engine.routes(.ipv4VPN).isEmpty)
    }
}
