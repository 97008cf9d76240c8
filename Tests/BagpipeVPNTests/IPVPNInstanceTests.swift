import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeVPN
import Dataplane
import Testing

/// A VRF on a real engine (no sockets), fed by a simulated peer.
@Suite struct IPVPNInstanceTests {
    static let rt = ExtendedCommunity.routeTarget(as: 64512, 10), other = ExtendedCommunity.routeTarget(as: 64512, 11)
    static let local = IPv4Address(192, 0, 2, 1), pe2 = IPv4Address(192, 0, 2, 2), pe3 = IPv4Address(192, 0, 2, 3)
    static let port = LocalPort(linuxif: "tap1", raw: "tap1")

    final class Host {
        let engine = RouteEngine(configuration: .init(localAS: 64512, routerID: IPVPNInstanceTests.local))
        let driver: DummyDriver
        let peer: WorkerID
        let vrf: IPVPNInstance
        var dummy: DummyInstance { driver.instances[vrf.id]! }
        var sent: [RouteKey: (NLRIElement, AttributeSet)] = [:]

        init(ecmp: Bool = false) throws {
            driver = DummyDriver(vpnType: .ipvpn, localAddress: IPVPNInstanceTests.local, ecmp: ecmp)
            peer = engine.addPeer(name: "rr", source: PathSource(kind: .peer(external: false, client: false), routerID: IPv4Address(192, 0, 2, 100), address: IPv6Address(high: 0, low: 100)))
            engine.peerEstablished(peer, families: [.ipv4VPN])
            vrf = try IPVPNInstance(
                id: 2, externalID: "vrf-1", label: 3000, routeDistinguisher: .ipv4(IPVPNInstanceTests.local, 2), importRTs: [IPVPNInstanceTests.rt],
                exportRTs: [IPVPNInstanceTests.rt], gateway: IPv4Address(10, 0, 0, 1), prefixLength: 24, engine: engine, driver: driver,
                bgpAddress: IPVPNInstanceTests.local, salt: "host-a")
        }

        func receive(_ changes: [RouteChange]) {
            engine.receive(from: peer, family: .ipv4VPN, changes)
            for (w, e) in engine.takeLocalEvents() where w == vrf.worker { vrf.handle(e) }
        }

        func drain() {
            while let b = engine.takePending(peer: peer, limit: 100) {
                for (set, elements) in b.announce { for e in elements { sent[RouteKey(e)] = (e, set) } }
                for e in b.withdraw { sent[RouteKey(e)] = nil }
            }
        }
    }

    static func remote(_ prefix: IPPrefix, pe: IPv4Address, label: UInt32 = 77, rd: UInt32 = 5, rts: [ExtendedCommunity] = [rt], labels: [UInt32]? = nil, localPref: UInt32 = 100) -> RouteChange {
        let e = NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: labels ?? [label]), routeDistinguisher: .as2(64512, rd), prefix: prefix)))
        let attrs = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref)), PathAttribute(.extendedCommunities(rts + [.consistentHashSortOrder(3)]))]
        return .announce(RouteKey(e), e, AttributeSet(attributes: attrs, nextHop: .vpnIPv4(RouteDistinguisher(rawValue: 0), pe)))
    }

    static let p24 = IPPrefix(.v4(IPv4Address(10, 1, 0, 0)), length: 24)

    @Test func endpointRoutesHostOrSubnetWithLabelRDAndLoadBalancingOrder() throws {
        let h = try Host()
        let e1 = Endpoint(mac: MACAddress(1), ip: .v4(IPv4Address(10, 0, 0, 5)), port: Self.port, label: 4001, direction: .both)
        try h.vrf.plug(e1, prefix: IPPrefix(.v4(IPv4Address(10, 0, 0, 5)), length: 32), routeDistinguisher: h.vrf.routeDistinguisher, localPref: nil, loadBalancingOrder: 0)
        let e2 = Endpoint(mac: MACAddress(2), ip: .v4(IPv4Address(10, 0, 0, 6)), port: Self.port, label: 4002, direction: .both)
        try h.vrf.plug(e2, prefix: IPPrefix(.v4(IPv4Address(10, 0, 0, 0)), length: 24), routeDistinguisher: .ipv4(Self.local, 9), localPref: 200, loadBalancingOrder: 7)
        h.drain()
        let routes = h.sent.values.compactMap { v -> (VPNPrefix, AttributeSet)? in if case .vpnPrefix(let p) = v.0.nlri { (p, v.1) } else { nil } }.sorted { $0.0.prefix.length > $1.0.prefix.length }
        #expect(routes.count == 2)
        #expect(routes[0].0.labels.labels == [4001] && routes[0].0.routeDistinguisher == .ipv4(Self.local, 2) && routes[0].1.nextHop == .vpnIPv4(RouteDistinguisher(rawValue: 0), Self.local))
        #expect(routes[1].0.labels.labels == [4002] && routes[1].0.routeDistinguisher == .ipv4(Self.local, 9) && routes[1].1.attributes.localPreference == 200)
        #expect(routes[1].1.attributes.extendedCommunities.contains(.consistentHashSortOrder(7)) && routes[1].1.attributes.extendedCommunities.contains(Self.rt))
        try h.vrf.unplug(e2, prefix: IPPrefix(.v4(IPv4Address(10, 0, 0, 0)), length: 24), routeDistinguisher: .ipv4(Self.local, 9), lastEndpointOfPort: false)
        h.drain()
        #expect(h.sent.count == 1)
    }

    @Test func importedRoutesAreInstalledOthersNot() throws {
        let h = try Host()
        h.receive([Self.remote(Self.p24, pe: Self.pe2)])
        #expect(h.dummy.remotes == [RemoteEndpoint(destination: .prefix(Self.p24), remotePE: Self.pe2, label: 77, encapsulations: [.default], loadBalancingOrder: 3)])
        // Two labels: unusable, ignored (and it does not displace the usable route).
        h.receive([Self.remote(Self.p24, pe: Self.pe3, rd: 6, labels: [1, 2], localPref: 300)])
        #expect(h.dummy.remotes.map(\.remotePE) == [Self.pe2])
        h.receive([.withdraw(Self.remote(Self.p24, pe: Self.pe2).key)])
        #expect(h.dummy.remotes.isEmpty)
    }

    /// The original removes dataplane state "even if the RT is no longer imported": an import change
    /// withdraws the route from the instance after its import set changed.
    @Test func importChangeRemovesWhatTheOldImportInstalled() throws {
        let h = try Host()
        h.receive([Self.remote(Self.p24, pe: Self.pe2)])
        #expect(h.dummy.remotes.count == 1)
        h.vrf.updateRouteTargets(import: [Self.other], export: [Self.rt])
        for (w, e) in h.engine.takeLocalEvents() where w == h.vrf.worker { h.vrf.handle(e) }
        #expect(h.dummy.remotes.isEmpty)
    }

    @Test func ecmpDriverInstallsEveryEqualRoute() throws {
        let h = try Host(ecmp: true)
        h.receive([Self.remote(Self.p24, pe: Self.pe2, rd: 5), Self.remote(Self.p24, pe: Self.pe3, label: 78, rd: 6)])
        #expect(Set(h.dummy.remotes.map(\.remotePE)) == [Self.pe2, Self.pe3])
        // A better route replaces both.
        h.receive([Self.remote(Self.p24, pe: Self.pe2, label: 79, rd: 7, localPref: 200)])
        #expect(h.dummy.remotes.map(\.label) == [79])
        let single = try Host(ecmp: false)
        single.receive([Self.remote(Self.p24, pe: Self.pe2, rd: 5), Self.remote(Self.p24, pe: Self.pe3, label: 78, rd: 6)])
        #expect(single.dummy.remotes.count == 1, "without ECMP, one best")
    }
}
