import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeLab
import NIOCore
import NIOPosix
import Testing

/// Our reflector with 20 clients over real sessions: 2,000 routes over 200 route targets, each
/// client importing its own subset through RT-Constraint (one with the default membership route,
/// one without RT-Constraint). Every client must end with exactly its subset.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ReflectorScaleTests {
    static let clients = 20, routes = 2000, routeTargets = 200

    static func target(_ j: Int) -> ExtendedCommunity { .routeTarget(as: 64512, UInt32(1000 + j)) }

    /// Route i carries route target i % 200 (and, every tenth route, a second one).
    static func targets(ofRoute i: Int) -> [Int] { i % 10 == 0 ? [i % routeTargets, (i / 10) % routeTargets] : [i % routeTargets] }

    static func route(_ i: Int) -> NLRIElement {
        NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [UInt32(16 + i)]), routeDistinguisher: .as2(64512, UInt32(i % 50)), prefix: IPPrefix(.v4(IPv4Address(10, 20, UInt8(i >> 8), UInt8(i & 255))), length: 32))))
    }

    /// Client c imports a different subset: route targets j with (j * 31 + c * 17) % 20 < 1 + c % 4.
    static func imports(_ c: Int) -> Set<Int> { Set((0..<routeTargets).filter { (($0 * 31 + c * 17) % 20) < 1 + c % 4 }) }

    static func expected(_ c: Int, imports: Set<Int>, everything: Bool) -> Set<RouteKey> {
        Set((0..<routes).filter { everything || !imports.isDisjoint(with: targets(ofRoute: $0)) }.map { RouteKey(route($0)) })
    }

    static func membership(_ j: Int) -> NLRIElement { NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: target(j)))) }

    @Test func twentyClientsEachGetExactlyTheirSubset() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let port = try freePort(host: "127.0.0.3")
        let rr = BGPSpeaker(configuration: .init(localAS: 64512, routerID: IPv4Address(192, 0, 2, 3), clusterID: IPv4Address(192, 0, 2, 3)), eventLoop: group.next())
        let addresses = (0...Self.clients).map { "127.0.0.\(10 + $0)" }  // the last one is the injector
        let noRTC = Self.clients - 1, wildcard = 0
        for (c, address) in addresses.enumerated() {
            let session = SessionConfiguration(
                localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 3), families: c == noRTC ? [.ipv4VPN] : [.ipv4VPN, .routeTargetConstraint],
                holdTime: 30, active: false)
            // Half the peers without an Adj-RIB-In (the Loc-RIB holds their routes), half with.
            _ = try await rr.addPeer(.init(address: address, session: session, client: true, keepsAdjRIBIn: c % 2 == 1)).get()
        }
        _ = try await rr.listen(host: "127.0.0.3", port: port).get()
        var peers: [BGPPeer] = []
        do {
            let base = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
            for (c, address) in addresses.enumerated() {
                let session = SessionConfiguration(
                    localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, UInt8(10 + c)), families: c == noRTC ? [.ipv4VPN] : [.ipv4VPN, .routeTargetConstraint],
                    holdTime: 30, active: true, connectRetryTime: 1, connectRetryMaximum: 2)
                let peer = BGPPeer(configuration: session, remoteAddress: "127.0.0.3", remotePort: port, localAddress: address, eventLoop: group.next())
                peers.append(peer)
                if c == Self.clients {
                    // The injector: every route, with its route targets.
                    for i in 0..<Self.routes {
                        peer.announce([Self.route(i)], family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 99))), attributes: base + [PathAttribute(.extendedCommunities(Self.targets(ofRoute: i).map(Self.target)))])
                    }
                } else if c == wildcard {
                    peer.announce([NLRIElement(.routeTargetMembership(.default))], family: .routeTargetConstraint, nextHop: .ipv4(IPv4Address(192, 0, 2, UInt8(10 + c))), attributes: base)
                } else if c != noRTC {
                    peer.announce(Self.imports(c).sorted().map(Self.membership), family: .routeTargetConstraint, nextHop: .ipv4(IPv4Address(192, 0, 2, UInt8(10 + c))), attributes: base)
                }
                peer.start()
            }
            func held(_ c: Int) async throws -> Set<RouteKey> { Set(try await peers[c].receivedRoutes(.ipv4VPN).get().map { RouteKey($0.element) }) }
            var wanted = (0..<Self.clients).map { Self.expected($0, imports: Self.imports($0), everything: $0 == wildcard || $0 == noRTC) }
            #expect(Set(wanted.map(\.count)).count > 3, "the subsets differ in size")
            for c in 0..<Self.clients {
                let ok = try await eventually(timeout: 30) { try await held(c) == wanted[c] }
                let got = try await held(c)
                #expect(ok, "client \(c): \(got.count) routes, expected \(wanted[c].count); missing \(wanted[c].subtracting(got).count), extra \(got.subtracting(wanted[c]).count)")
            }
            // Client 1 changes its imports: drops one route target, adds one.
            let dropped = Self.imports(1).min()!, added = (0..<Self.routeTargets).first { !Self.imports(1).contains($0) }!
            peers[1].withdraw([Self.membership(dropped)], family: .routeTargetConstraint)
            peers[1].announce([Self.membership(added)], family: .routeTargetConstraint, nextHop: .ipv4(IPv4Address(192, 0, 2, 11)), attributes: base)
            wanted[1] = Self.expected(1, imports: Self.imports(1).subtracting([dropped]).union([added]), everything: false)
            let changed = try await eventually(timeout: 30) { try await held(1) == wanted[1] }
            #expect(changed, "client 1 after changing its imports")
            // The injector withdraws a tenth of its routes: every client loses exactly those.
            let gone = (0..<Self.routes).filter { $0 % 10 == 3 }
            peers[Self.clients].withdraw(gone.map(Self.route), family: .ipv4VPN)
            let goneKeys = Set(gone.map { RouteKey(Self.route($0)) })
            for c in 0..<Self.clients {
                let ok = try await eventually(timeout: 30) { try await held(c) == wanted[c].subtracting(goneKeys) }
                #expect(ok, "client \(c) after the withdraws")
            }
            // The injector goes away: every client loses everything.
            peers[Self.clients].stop()
            for c in 0..<Self.clients {
                let ok = try await eventually(timeout: 30) { try await held(c).isEmpty }
                #expect(ok, "client \(c) after the injector stopped")
            }
        } catch {
            Issue.record("\(error)")
        }
        for peer in peers { peer.stop() }
        try await rr.stop().get()
        try await group.shutdownGracefully()
    }
}
