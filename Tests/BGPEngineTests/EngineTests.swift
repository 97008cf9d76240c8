import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import Testing

// MARK: Helpers

let rt1 = ExtendedCommunity.routeTarget(as: 64512, 1)
let rt2 = ExtendedCommunity.routeTarget(as: 64512, 2)
let rt3 = ExtendedCommunity.routeTarget(as: 64512, 3)

func vpn(_ i: Int, rd: UInt32 = 1, label: UInt32 = 100) -> NLRIElement {
    NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [label]), routeDistinguisher: .as2(64512, rd), prefix: IPPrefix(.v4(IPv4Address(10, 0, UInt8(i >> 8), UInt8(i & 255))), length: 32))))
}

func attributes(_ rts: [ExtendedCommunity], localPref: UInt32 = 100, extra: [PathAttribute] = []) -> [PathAttribute] {
    // No EXTENDED_COMMUNITIES attribute at all when empty (an empty one is malformed, RFC 7606 §7.14).
    [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref))] + (rts.isEmpty ? [] : [PathAttribute(.extendedCommunities(rts))]) + extra
}

func macRoute(mac: UInt64, ip: UInt8, rd: UInt32 = 1) -> NLRIElement {
    NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .as2(64512, rd), mac: MACAddress(mac), ip: .v4(IPv4Address(10, 0, 0, ip)), labelField1: 5000))))
}

let nh = NextHop.forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 10)))

func key(_ rt: ExtendedCommunity) -> RouteTargetKey { RouteTargetKey(rt)! }

func membership(_ rt: ExtendedCommunity?, as asn: UInt32 = 64512) -> NLRIElement {
    NLRIElement(.routeTargetMembership(rt.map { RouteTargetMembership(originAS: asn, routeTarget: $0) } ?? .default))
}

/// A change as a peer's Adj-RIB-In reports it.
func announce(_ element: NLRIElement, _ attrs: [PathAttribute], nextHop: NextHop = nh) -> RouteChange {
    .announce(RouteKey(element), element, AttributeSet(attributes: attrs, nextHop: nextHop))
}

func withdrawal(_ element: NLRIElement) -> RouteChange { .withdraw(RouteKey(element)) }

func peerSource(client: Bool = true, id: UInt8) -> PathSource {
    PathSource(kind: .peer(external: false, client: client), routerID: IPv4Address(192, 0, 2, id), address: IPv6Address(high: 0, low: UInt64(id)))
}

/// What a peer holds after applying every UPDATE the engine gives it.
struct PeerView {
    var routes: [AddressFamily: [RouteKey: (element: NLRIElement, attributes: AttributeSet)]] = [:]
    var announcements = 0
    var withdrawals = 0

    mutating func drain(_ engine: RouteEngine, _ peer: WorkerID) {
        while let batch = engine.takePending(peer: peer, limit: 7) {
            for (set, elements) in batch.announce {
                for e in elements { routes[batch.family, default: [:]][RouteKey(e)] = (e, set) }
                announcements += elements.count
            }
            for e in batch.withdraw { routes[batch.family]?[RouteKey(e)] = nil }
            withdrawals += batch.withdraw.count
        }
    }

    func keys(_ family: AddressFamily) -> Set<RouteKey> { Set(routes[family]?.keys.map { $0 } ?? []) }
}

func events(_ engine: RouteEngine, for worker: WorkerID) -> [RouteEngine.LocalEvent] {
    engine.takeLocalEvents().filter { $0.0 == worker }.map(\.1)
}

func host() -> RouteEngine { RouteEngine(configuration: .init(localAS: 64512, routerID: IPv4Address(192, 0, 2, 1))) }
func reflector() -> RouteEngine {
    RouteEngine(configuration: .init(localAS: 64512, routerID: IPv4Address(192, 0, 2, 1), clusterID: IPv4Address(192, 0, 2, 1), routeTargetConstraint: false))
}

// MARK: Publish / subscribe

@Suite struct PublishSubscribeTests {
    @Test func behaviour42SubscriptionReplaysStoredRoutesExceptToTheirSourceOrTwice() {
        let engine = host()
        let a = engine.addLocalWorker(name: "a"), b = engine.addLocalWorker(name: "b")
        engine.advertise(from: a, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1]))
        engine.advertise(from: a, family: .ipv4VPN, vpn(2), nextHop: nh, attributes: attributes([rt2]))
        _ = engine.takeLocalEvents()
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        let got = events(engine, for: b)
        #expect(got.count == 1)
        guard case .advertise(let r, nil) = got.first else { Issue.record("expected an advertise"); return }
        #expect(r.element == vpn(1) && r.source == a)
        // The source itself is never told of its own route.
        engine.subscribe(a, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        #expect(events(engine, for: a).isEmpty)
        // A second subscription covering the same route does not replay it again.
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: nil))
        let second = events(engine, for: b)
        #expect(second.count == 1, "only the rt2 route is new to b: \(second)")
    }

    @Test func behaviour44UnsubscriptionWithdrawsOnlyWhatNoOtherSubscriptionCovers() {
        let engine = host()
        let a = engine.addLocalWorker(name: "a"), b = engine.addLocalWorker(name: "b")
        engine.advertise(from: a, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1, rt2]))
        engine.advertise(from: a, family: .ipv4VPN, vpn(2), nextHop: nh, attributes: attributes([rt1]))
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: rt2)!)
        #expect(events(engine, for: b).count == 2)
        engine.unsubscribe(b, from: Match(family: .ipv4VPN, routeTarget: rt1)!)
        let got = events(engine, for: b)
        #expect(got.count == 1)
        guard case .withdraw(let r) = got.first else { Issue.record("expected a withdraw"); return }
        #expect(r.element == vpn(2), "vpn(1) is still covered by rt2")
    }

    @Test func behaviour46ReplacementIsOneAdvertiseAndWorkersLosingTheTargetGetAWithdraw() {
        let engine = host()
        let a = engine.addLocalWorker(name: "a"), b = engine.addLocalWorker(name: "b"), c = engine.addLocalWorker(name: "c")
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        engine.subscribe(c, to: Match(family: .ipv4VPN, routeTarget: rt2)!)
        engine.advertise(from: a, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1, rt2]))
        _ = engine.takeLocalEvents()
        // New label and attributes, RT2 dropped: b gets one advertise (a replacement), c a withdraw.
        engine.advertise(from: a, family: .ipv4VPN, vpn(1, label: 200), nextHop: nh, attributes: attributes([rt1], localPref: 200))
        let all = engine.takeLocalEvents()
        let toB = all.filter { $0.0 == b }.map(\.1), toC = all.filter { $0.0 == c }.map(\.1)
        #expect(toB.count == 1 && toC.count == 1)
        guard case .advertise(let new, let replaced?) = toB.first, case .withdraw(let gone) = toC.first else { Issue.record("\(all)"); return }
        #expect(new.element == vpn(1, label: 200) && replaced.element == vpn(1))
        #expect(gone.element == vpn(1))
        // The same route again changes nothing.
        engine.advertise(from: a, family: .ipv4VPN, vpn(1, label: 200), nextHop: nh, attributes: attributes([rt1], localPref: 200))
        #expect(engine.takeLocalEvents().isEmpty)
    }

    @Test func behaviour45PeerRoutesReachLocalSubscribersAndWithdrawsWithoutRouteTargetsToo() {
        let engine = host()
        let vrf = engine.addLocalWorker(name: "vrf")
        let p = engine.addPeer(name: "p", source: peerSource(id: 2))
        engine.subscribe(vrf, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        engine.receive(from: p, family: .ipv4VPN, [announce(vpn(1), attributes([rt1]))])
        #expect(events(engine, for: vrf).count == 1)
        // A withdraw carries no attributes: the engine knows which workers had the route.
        engine.receive(from: p, family: .ipv4VPN, [withdrawal(vpn(1))])
        let got = events(engine, for: vrf)
        guard case .withdraw(let r) = got.first else { Issue.record("\(got)"); return }
        #expect(r.element == vpn(1))
        // Unknown withdraw: ignored.
        engine.receive(from: p, family: .ipv4VPN, [withdrawal(vpn(9))])
        #expect(engine.takeLocalEvents().isEmpty)
    }

    @Test func behaviour48CleanupWithdrawsAWorkersRoutesAndDropsItsSubscriptions() {
        let engine = host()
        let a = engine.addLocalWorker(name: "a"), b = engine.addLocalWorker(name: "b")
        engine.subscribe(a, to: Match(family: .ipv4VPN, routeTarget: rt2)!)
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        for i in 0..<3 { engine.advertise(from: a, family: .ipv4VPN, vpn(i), nextHop: nh, attributes: attributes([rt1])) }
        #expect(events(engine, for: b).count == 3)
        engine.cleanup(a)
        let got = events(engine, for: b)
        #expect(got.count == 3 && got.allSatisfy { if case .withdraw = $0 { true } else { false } })
        #expect(engine.subscriptions(of: a).isEmpty)
        #expect(engine.pathCount(.ipv4VPN) == 0)
    }

    @Test func behaviour49TransitivityBitIsIgnoredAndRouteWithoutTargetsReachesWildcard() {
        let engine = host()
        let a = engine.addLocalWorker(name: "a"), b = engine.addLocalWorker(name: "b"), c = engine.addLocalWorker(name: "c")
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: .routeTarget(as: 64512, 1, transitive: false))!)
        engine.subscribe(c, to: Match(family: .ipv4VPN, routeTarget: nil))
        engine.advertise(from: a, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1]))
        engine.advertise(from: a, family: .ipv4VPN, vpn(2), nextHop: nh, attributes: attributes([]))
        let all = engine.takeLocalEvents()
        #expect(all.filter { $0.0 == b }.count == 1)
        #expect(all.filter { $0.0 == c }.count == 2)
    }

    @Test func behaviour47IdenticalReadvertisementDroppedUnknownWithdrawIgnored() {
        let engine = host()
        let a = engine.addLocalWorker(name: "a"), b = engine.addLocalWorker(name: "b")
        engine.subscribe(b, to: Match(family: .ipv4VPN, routeTarget: rt1)!)
        engine.advertise(from: a, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1]))
        #expect(events(engine, for: b).count == 1)
        engine.advertise(from: a, family: .ipv4VPN, vpn(1), nextHop: nh, attributes: attributes([rt1]))
        #expect(engine.takeLocalEvents().isEmpty, "identical: dropped")
        engine.withdraw(from: a, family: .ipv4VPN, vpn(2))
        #expect(engine.takeLocalEvents().isEmpty, "unknown withdraw: ignored")
    }

    /// NLRI identity (what a withdraw names and a replacement keeps): VPNv4 without its label; EVPN
    /// MAC/IP without ESI and labels, but with its IP.
    @Test func behaviour53RouteIdentityIgnoresLabelsAndESIButNotTheIP() {
        #expect(RouteKey(vpn(1, label: 100)) == RouteKey(vpn(1, label: 200)))
        #expect(RouteKey(vpn(1)) != RouteKey(vpn(1, rd: 2)))
        func mac(esi: UInt8, label: UInt32, ip: UInt8) -> NLRIElement {
            let e = EthernetSegmentIdentifier(high: 0, low: UInt64(esi))
            return NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .as2(64512, 1), esi: e, mac: MACAddress(7), ip: .v4(IPv4Address(10, 0, 0, ip)), labelField1: label))))
        }
        #expect(RouteKey(mac(esi: 0, label: 10, ip: 1)) == RouteKey(mac(esi: 3, label: 20, ip: 1)))
        #expect(RouteKey(mac(esi: 0, label: 10, ip: 1)) != RouteKey(mac(esi: 0, label: 10, ip: 2)))
    }
}
