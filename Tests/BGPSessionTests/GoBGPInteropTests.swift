import BGPSession
import BagpipeLab
import BGPWire
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Sessions with the real gobgpd 3.10 from Debian, on loopback addresses: both directions, the
/// families bagpipe uses, routes both ways checked with gobgp's own JSON, withdraws, a peer restart,
/// and a NOTIFICATION from the peer.
@Suite(.serialized, .timeLimit(.minutes(5))) struct GoBGPInteropTests {
    static let gobgpd = "/usr/bin/gobgpd"
    static let gobgp = "/usr/bin/gobgp"
    static let families: [AddressFamily] = [.ipv4VPN, .evpn, .routeTargetConstraint]
    static let routeTarget = ExtendedCommunity.routeTarget(as: 64512, 100)

    struct Options {
        var password: String? = nil
        var gracefulRestart = false
        var ttlSecurity = false
    }

    static func configuration(port: Int, neighbor: String, passive: Bool, remotePort: Int? = nil, options: Options = Options()) -> String {
        GoBGPConfiguration(
            routerID: "192.0.2.100", port: port, localAddress: "127.0.0.1",
            neighbors: [
                .init(
                    address: neighbor, localAddress: "127.0.0.1", passive: passive, remotePort: remotePort, families: ["l3vpn-ipv4-unicast", "l2vpn-evpn", "rtc"],
                    password: options.password, gracefulRestart: options.gracefulRestart, ttlSecurity: options.ttlSecurity)
            ]
        ).toml
    }

    static func startGoBGP(port: Int, api: Int, neighbor: String, passive: Bool, remotePort: Int? = nil, options: Options = Options()) throws -> Daemon {
        try Daemon(
            name: "gobgpd", executable: gobgpd,
            arguments: ["-f", "$DIR/gobgpd.toml", "--api-hosts=127.0.0.1:\(api)", "--pprof-disable", "-l", "info"],
            files: ["gobgpd.toml": configuration(port: port, neighbor: neighbor, passive: passive, remotePort: remotePort, options: options)])
    }

    static func ourSpeaker(port: Int, group: any EventLoopGroup, password: String? = nil, ttlSecurity: Bool = false, gracefulRestart: UInt16? = nil, restarting: Bool = false) -> BGPPeer {
        var configuration = SessionConfiguration(
            localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: families, holdTime: 9, connectRetryTime: 1,
            connectRetryMaximum: 2, gracefulRestartTime: gracefulRestart, gracefulRestartRestarting: restarting)
        configuration.security = TransportSecurity(md5Password: password, ttlSecurityHops: ttlSecurity ? 1 : nil)
        return BGPPeer(configuration: configuration, remoteAddress: "127.0.0.1", remotePort: port, localAddress: "127.0.0.2", eventLoop: group.next())
    }

    @Test(arguments: [("secret", true), ("wrong", false)])
    func md5Signatures(password: String, comesUp: Bool) async throws {
        guard Daemon.installed(Self.gobgpd) else { Issue.record("gobgpd is not installed"); return }
        let port = try freePort(), api = try freePort()
        try await withInterop({ try Self.startGoBGP(port: port, api: api, neighbor: "127.0.0.2", passive: true, options: Options(password: "secret")) }) { t in
            let peer = t.own(Self.ourSpeaker(port: port, group: t.group, password: password))
            peer.start()
            // With a wrong key the kernel drops every segment: give it a few connect attempts.
            let up = try await eventually(timeout: comesUp ? 10 : 6) { try await peer.state().get() == .established }
            #expect(up == comesUp, "password \(password): established \(up)\n\(t.daemon.log.suffix(1500))")
        }
    }

    @Test func ttlSecurity() async throws {
        guard Daemon.installed(Self.gobgpd) else { Issue.record("gobgpd is not installed"); return }
        let port = try freePort(), api = try freePort()
        try await withInterop({ try Self.startGoBGP(port: port, api: api, neighbor: "127.0.0.2", passive: true, options: Options(ttlSecurity: true)) }) { t in
            let peer = t.own(Self.ourSpeaker(port: port, group: t.group, ttlSecurity: true))
            peer.start()
            let up = try await eventually { try await peer.state().get() == .established }
            #expect(up, "GTSM session did not come up\n\(t.daemon.log.suffix(1500))")
        }
    }

    /// RFC 4724 with gobgpd as the helper: our speaker crashes and comes back; gobgpd keeps our routes
    /// until our End-of-RIB, then exactly what we advertised again.
    @Test func gracefulRestartWithGoBGPAsHelper() async throws {
        guard Daemon.installed(Self.gobgpd) else { Issue.record("gobgpd is not installed"); return }
        let port = try freePort(), api = try freePort()
        try await withInterop({ try Self.startGoBGP(port: port, api: api, neighbor: "127.0.0.2", passive: true, options: Options(gracefulRestart: true)) }) { t in
            let nextHop = NextHop.forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 2)))
            let attributes = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100)), PathAttribute(.extendedCommunities([Self.routeTarget]))]
            func route(_ i: UInt8) -> NLRIElement {
                NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [100]), routeDistinguisher: .as2(64512, 10), prefix: IPPrefix(.v4(IPv4Address(10, 10, 0, i)), length: 32))))
            }
            func adjIn() throws -> String { try Self.cli(api, ["neighbor", "127.0.0.2", "adj-in", "-a", "vpnv4", "-j"]) }
            let first = t.own(Self.ourSpeaker(port: port, group: t.group, gracefulRestart: 60))
            first.announce([route(1), route(2)], family: .ipv4VPN, nextHop: nextHop, attributes: attributes)
            first.start()
            _ = try await poll(adjIn, until: { $0.contains("10.10.0.1/32") && $0.contains("10.10.0.2/32") })
            // Crash: the connection drops without a NOTIFICATION.
            first.abort()
            first.stop()
            let down = try await eventually { try await first.state().get() != .established }
            #expect(down)
            // gobgpd (helper) keeps both routes while we are away.
            let neighbor = try await poll { try Self.cli(api, ["neighbor", "127.0.0.2", "-j"]) } until: { !$0.contains("\"session_state\":6") }
            _ = neighbor
            let kept = try Self.cli(api, ["global", "rib", "-a", "vpnv4", "-j"])
            #expect(kept.contains("10.10.0.1/32") && kept.contains("10.10.0.2/32"), "gobgpd dropped our routes: \(kept)")
            // We come back restarting, advertise only route 1, then End-of-RIB.
            let again = t.own(Self.ourSpeaker(port: port, group: t.group, gracefulRestart: 60, restarting: true))
            again.announce([route(1)], family: .ipv4VPN, nextHop: nextHop, attributes: attributes)
            again.start()
            let up = try await eventually(timeout: 20) { try await again.state().get() == .established }
            #expect(up)
            let after = try await poll { try Self.cli(api, ["global", "rib", "-a", "vpnv4", "-j"]) } until: { $0.contains("10.10.0.1/32") && !$0.contains("10.10.0.2/32") }
            #expect(after.contains("10.10.0.1/32") && !after.contains("10.10.0.2/32"), "after our End-of-RIB gobgpd holds: \(after)")
        }
    }

    @discardableResult
    static func cli(_ api: Int, _ arguments: [String]) throws -> String {
        try shell(gobgp, ["-u", "127.0.0.1", "-p", "\(api)"] + arguments)
    }

    /// Our routes: VPNv4, EVPN MAC/IP, EVPN inclusive multicast with PMSI, and RT-Constraint.
    static func ourUpdates(_ context: WireContext) -> [ByteBuffer] {
        let builder = UpdateBuilder(context: context)
        let nextHop = IPv4Address(192, 0, 2, 2)
        let base: [PathAttribute] = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
        let communities = PathAttribute(.extendedCommunities([routeTarget, .encapsulation(.vxlan)]))
        let rd = RouteDistinguisher.ipv4(nextHop, 1)
        var out = builder.announce(
            [vpnRoute], family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(nextHop)), attributes: base + [communities])
        out += builder.announce(
            [NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: rd, mac: MACAddress("02:00:00:00:00:01")!, ip: .v4(IPv4Address(10, 0, 0, 1)), labelField1: 10000))))],
            family: .evpn, nextHop: .ipv4(nextHop), attributes: base + [communities])
        out += builder.announce(
            [NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: rd, originatingRouter: .v4(nextHop)))))],
            family: .evpn, nextHop: .ipv4(nextHop),
            attributes: base + [communities, PathAttribute(.pmsiTunnel(.ingressReplication(endpoint: .v4(nextHop), labelField: 10000)))])
        out += builder.announce(
            [NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: routeTarget)))],
            family: .routeTargetConstraint, nextHop: .ipv4(nextHop), attributes: base)
        return out
    }

    static let vpnRoute = NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [100]), routeDistinguisher: .as2(64512, 10), prefix: IPPrefix("10.10.0.1/32")!)))

    @Test func weConnectExchangeWithdrawSurviveARestartAndReadTheirNotification() async throws {
        guard Daemon.installed(Self.gobgpd) else {
            Issue.record("gobgpd is not installed: the README's test command installs it")
            return
        }
        let port = try freePort(), api = try freePort()
        try await withInterop({ try Self.startGoBGP(port: port, api: api, neighbor: "127.0.0.2", passive: true) }) { t in
            let received = Received()
            let peer = t.own(BGPPeer(
                configuration: SessionConfiguration(
                    localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: Self.families, holdTime: 9, connectRetryTime: 1,
                    connectRetryMaximum: 2),
                remoteAddress: "127.0.0.1", remotePort: port, localAddress: "127.0.0.2", eventLoop: t.group.next()))
            peer.onUpdate = { received.add($0) }
            peer.onDown = { received.down($0) }
            // Announce our routes each time the session comes up, as the engine will.
            peer.onEstablished = { session in _ = peer.send(updates: Self.ourUpdates(session.sendContext)) }
            try await scenario(peer: peer, api: api, port: port, daemon: &t.daemon, received: received)
        }
    }

    func scenario(peer: BGPPeer, api: Int, port: Int, daemon: inout Daemon, received: Received) async throws {
        // GoBGP's routes: one our RT-Constraint asks for, one it does not.
        try Self.cli(api, ["global", "rib", "-a", "vpnv4", "add", "10.99.0.0/24", "label", "999", "rd", "64512:99", "rt", "64512:999", "nexthop", "192.0.2.100"])
        try Self.cli(api, ["global", "rib", "-a", "vpnv4", "add", "10.20.0.0/24", "label", "200", "rd", "64512:20", "rt", "64512:100", "nexthop", "192.0.2.100"])
        try Self.cli(api, ["global", "rib", "-a", "evpn", "add", "macadv", "02:00:00:00:00:99", "10.30.0.9", "etag", "0", "label", "5000", "rd", "64512:30", "rt", "64512:100", "encap", "vxlan", "nexthop", "192.0.2.100"])
        peer.start()
        let up = try await eventually { try await peer.state().get() == .established }
        #expect(up, "session with gobgpd did not come up")
        let negotiated = try #require(try await peer.negotiated().get())
        #expect(negotiated.families == Self.families)
        #expect(negotiated.peerRouterID == IPv4Address(192, 0, 2, 100))

        // gobgpd holds our routes with the right RD, label, route target and next hop.
        let vpn = try await poll { try Self.cli(api, ["neighbor", "127.0.0.2", "adj-in", "-a", "vpnv4", "-j"]) } until: { $0.contains("10.10.0.1/32") }
        #expect(vpn.contains("\"labels\":[100]") && vpn.contains("\"admin\":64512,\"assigned\":10"), "\(vpn)")
        #expect(vpn.contains("\"value\":\"64512:100\"") && vpn.contains("\"nexthop\":\"192.0.2.2\""), "\(vpn)")
        let evpn = try await poll { try Self.cli(api, ["neighbor", "127.0.0.2", "adj-in", "-a", "evpn", "-j"]) } until: { $0.contains("02:00:00:00:00:01") && $0.contains("\"type\":3") }
        #expect(evpn.contains("10.0.0.1") && evpn.contains("10000"), "\(evpn)")
        #expect(evpn.contains("\"type\":22"), "PMSI tunnel attribute missing: \(evpn)")
        let rtc = try await poll { try Self.cli(api, ["neighbor", "127.0.0.2", "adj-in", "-a", "rtc", "-j"]) } until: { $0.contains("64512:100") }
        #expect(rtc.contains("64512"), "\(rtc)")
        // And gobgpd's own: a VRF importing 64512:300 makes it send us that route target membership.
        try Self.cli(api, ["vrf", "add", "red", "rd", "64512:30", "rt", "both", "64512:300"])
        let wanted = RouteTargetMembership(originAS: 64512, routeTarget: .routeTarget(as: 64512, 300))
        let asked = try await eventually { received.routeTargetMemberships.contains(wanted) }
        #expect(asked, "RT-Constraint routes from gobgpd: \(received.routeTargetMemberships)")

        // We hold gobgpd's routes our RT-Constraint asked for, and not the other one.
        let got = try await eventually { received.vpnPrefixes.contains("64512:20 10.20.0.0/24") && received.macs.contains("02:00:00:00:00:99") }
        #expect(got, "received: \(received.vpnPrefixes) \(received.macs)")
        let route = try #require(received.vpnRoutes.first { $0.routeDistinguisher == .as2(64512, 20) })
        #expect(route.labels.labels == [200])
        #expect(received.nextHops.contains("192.0.2.100"))
        #expect(!received.vpnPrefixes.contains("64512:99 10.99.0.0/24"), "RT-Constraint let 64512:999 through")

        // Withdraws, both ways.
        let session = try #require(try await peer.negotiated().get())
        try await peer.send(updates: UpdateBuilder(context: session.sendContext).withdraw([Self.vpnRoute], family: .ipv4VPN)).get()
        _ = try await poll { try Self.cli(api, ["neighbor", "127.0.0.2", "adj-in", "-a", "vpnv4", "-j"]) } until: { !$0.contains("10.10.0.1/32") }
        try Self.cli(api, ["global", "rib", "-a", "vpnv4", "del", "10.20.0.0/24", "label", "200", "rd", "64512:20"])
        let withdrawn = try await eventually { received.withdrawnVPN.contains("64512:20 10.20.0.0/24") }
        #expect(withdrawn)

        // gobgpd restarts: the session and our routes come back.
        daemon.stop()
        let down = try await eventually { try await peer.state().get() != .established }
        #expect(down)
        daemon = try Self.startGoBGP(port: port, api: api, neighbor: "127.0.0.2", passive: true)
        let back = try await eventually(timeout: 20) { try await peer.state().get() == .established }
        #expect(back, "session did not come back after gobgpd restarted")
        _ = try await poll { try Self.cli(api, ["neighbor", "127.0.0.2", "adj-in", "-a", "vpnv4", "-j"]) } until: { $0.contains("10.10.0.1/32") }

        // A NOTIFICATION from gobgpd is decoded, shutdown communication included.
        try Self.cli(api, ["neighbor", "127.0.0.2", "shutdown", "--reason", "maintenance window"])
        // (Killing gobgpd above also sent a Cease: this waits for the one with the message.)
        try await expectShutdownCommunication(peer, "maintenance window")
    }

    @Test func theyConnect() async throws {
        guard Daemon.installed(Self.gobgpd) else { Issue.record("gobgpd is not installed"); return }
        let port = try freePort(), api = try freePort()
        try await peerConnectsToUs(families: Self.families) { ourPort in
            try Self.startGoBGP(port: port, api: api, neighbor: "127.0.0.3", passive: false, remotePort: ourPort)
        }
    }
}

extension Received {
    var vpnRoutes: [VPNPrefix] {
        updates.flatMap(\.announced).flatMap(\.elements).compactMap { if case .vpnPrefix(let p) = $0.nlri { return p } else { return nil } }
    }
    var vpnPrefixes: [String] { vpnRoutes.map { "\($0.routeDistinguisher) \($0.prefix)" } }
    var withdrawnVPN: [String] {
        updates.flatMap(\.withdrawn).flatMap(\.elements).compactMap { if case .vpnPrefix(let p) = $0.nlri { return "\(p.routeDistinguisher) \(p.prefix)" } else { return nil } }
    }
    var macs: [String] {
        updates.flatMap(\.announced).flatMap(\.elements).compactMap {
            if case .evpn(.macIPAdvertisement(let r)) = $0.nlri { return r.mac.description } else { return nil }
        }
    }
    var routeTargetMemberships: [RouteTargetMembership] {
        updates.flatMap(\.announced).flatMap(\.elements).compactMap { if case .routeTargetMembership(let m) = $0.nlri { return m } else { return nil } }
    }
    var nextHops: [String] { updates.compactMap { $0.attributes.mpReach?.nextHop.address?.description } }
}
