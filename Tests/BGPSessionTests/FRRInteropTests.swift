import BGPSession
import BagpipeLab
import BGPWire
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Sessions with FRR 8.4's bgpd from Debian, run standalone (no zebra) on loopback: VPNv4 and EVPN
/// (FRR has no RT-Constraint), routes both ways checked with `vtysh ... json`, withdraws, a restart,
/// a shutdown NOTIFICATION, FRR connecting to us, and MD5.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FRRInteropTests {
    static let bgpd = "/usr/lib/frr/bgpd"
    static let vtysh = "/usr/bin/vtysh"

    static func configuration(neighbor: String, passive: Bool, port: Int? = nil, password: String? = nil) -> String {
        """
        frr defaults traditional
        hostname frr-test
        log stdout informational
        route-map RT permit 10
         set extcommunity rt 64512:100
        exit
        router bgp 64512
         bgp router-id 192.0.2.200
         no bgp default ipv4-unicast
         no bgp ebgp-requires-policy
         neighbor \(neighbor) remote-as 64512
         \(passive ? "neighbor \(neighbor) passive" : "neighbor \(neighbor) update-source 127.0.0.1")
         \(port.map { "neighbor \(neighbor) port \($0)" } ?? "")
         \(password.map { "neighbor \(neighbor) password \($0)" } ?? "")
         neighbor \(neighbor) timers 3 9
         neighbor \(neighbor) timers connect 1
         address-family ipv4 vpn
          neighbor \(neighbor) activate
          network 10.40.0.0/24 rd 64512:40 label 400 route-map RT
         exit-address-family
         address-family l2vpn evpn
          neighbor \(neighbor) activate
         exit-address-family
        exit
        """
    }

    static func start(port: Int, neighbor: String, passive: Bool, remotePort: Int? = nil, password: String? = nil) throws -> Daemon {
        let daemon = try Daemon(
            name: "frr", executable: bgpd,
            arguments: ["-f", "$DIR/bgpd.conf", "-S", "-Z", "-n", "-l", "127.0.0.1", "-p", "\(port)", "-P", "0", "--vty_socket", "$DIR", "-i", "$DIR/bgpd.pid", "-u", "root", "-g", "root"],
            files: ["bgpd.conf": configuration(neighbor: neighbor, passive: passive, port: remotePort, password: password)])
        return daemon
    }

    static func show(_ daemon: Daemon, _ command: String) throws -> String {
        try shell(vtysh, ["--vty_socket", daemon.directory.path, "-d", "bgpd", "-c", command])
    }

    static func configure(_ daemon: Daemon, _ lines: [String]) throws -> String {
        try shell(vtysh, ["--vty_socket", daemon.directory.path, "-d", "bgpd", "-c", "configure terminal"] + lines.flatMap { ["-c", $0] })
    }

    static func ourSpeaker(port: Int, group: any EventLoopGroup, password: String? = nil) -> BGPPeer {
        var configuration = SessionConfiguration(
            localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: [.ipv4VPN, .evpn, .routeTargetConstraint], holdTime: 9,
            connectRetryTime: 1, connectRetryMaximum: 2)
        configuration.security.md5Password = password
        return BGPPeer(configuration: configuration, remoteAddress: "127.0.0.1", remotePort: port, localAddress: "127.0.0.2", eventLoop: group.next())
    }

    static func announceOurRoutes(_ peer: BGPPeer) {
        let nextHop = IPv4Address(192, 0, 2, 2)
        let base = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
        let communities = PathAttribute(.extendedCommunities([.routeTarget(as: 64512, 100), .encapsulation(.vxlan)]))
        peer.announce([GoBGPInteropTests.vpnRoute], family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(nextHop)), attributes: base + [communities])
        let rd = RouteDistinguisher.ipv4(nextHop, 1)
        peer.announce(
            [NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: rd, mac: MACAddress("02:00:00:00:00:01")!, ip: .v4(IPv4Address(10, 0, 0, 1)), labelField1: 10000))))],
            family: .evpn, nextHop: .ipv4(nextHop), attributes: base + [communities])
        peer.announce(
            [NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: rd, originatingRouter: .v4(nextHop)))))],
            family: .evpn, nextHop: .ipv4(nextHop),
            attributes: base + [communities, PathAttribute(.pmsiTunnel(.ingressReplication(endpoint: .v4(nextHop), labelField: 10000)))])
    }

    @Test func weConnectExchangeWithdrawRestartAndShutdown() async throws {
        guard Daemon.installed(Self.bgpd) else { Issue.record("FRR is not installed: the README's test command installs it"); return }
        let port = try freePort()
        try await withInterop({ try Self.start(port: port, neighbor: "127.0.0.2", passive: true) }) { t in
            let peer = t.own(Self.ourSpeaker(port: port, group: t.group))
            let received = Received()
            peer.onUpdate = { received.add($0) }
            Self.announceOurRoutes(peer)
            peer.start()
            let up = try await eventually { try await peer.state().get() == .established }
            #expect(up, "no session with FRR: \(t.daemon.log.suffix(1500))")
            let negotiated = try #require(try await peer.negotiated().get())
            #expect(negotiated.families == [.ipv4VPN, .evpn], "FRR has no RT-Constraint")

            // FRR holds our VPNv4 route with its RD, label, route target and next hop.
            let vpn = try await poll { try Self.show(t.daemon, "show bgp ipv4 vpn 10.10.0.1/32 json") } until: { $0.contains("192.0.2.2") }
            #expect(vpn.contains("64512:10") && vpn.contains("\"remoteLabel\":100") && vpn.contains("RT:64512:100"), "\(vpn)")
            // And our EVPN MAC/IP and inclusive-multicast routes.
            let evpn = try await poll { try Self.show(t.daemon, "show bgp l2vpn evpn json") } until: { $0.contains("02:00:00:00:00:01") && $0.contains("[3]") }
            #expect(evpn.contains("192.0.2.2:1") && evpn.contains("10.0.0.1"), "\(evpn.prefix(3000))")
            let imet = try Self.show(t.daemon, "show bgp l2vpn evpn route type multicast json")
            #expect(imet.contains("192.0.2.2"), "\(imet.prefix(2000))")

            // We hold FRR's route.
            let got = try await eventually { received.vpnPrefixes.contains("64512:40 10.40.0.0/24") }
            #expect(got)
            let route = try #require(received.vpnRoutes.first { $0.routeDistinguisher == .as2(64512, 40) })
            #expect(route.labels.labels == [400])
            #expect(received.updates.flatMap { $0.attributes.extendedCommunities }.contains(.routeTarget(as: 64512, 100)))

            // Withdraws both ways.
            peer.withdraw([GoBGPInteropTests.vpnRoute], family: .ipv4VPN)
            _ = try await poll { try Self.show(t.daemon, "show bgp ipv4 vpn json") } until: { !$0.contains("10.10.0.1/32") }
            _ = try Self.configure(t.daemon, ["router bgp 64512", "address-family ipv4 vpn", "no network 10.40.0.0/24 rd 64512:40 label 400"])
            let withdrawn = try await eventually { received.withdrawnVPN.contains("64512:40 10.40.0.0/24") }
            #expect(withdrawn)

            // FRR restarts: the session comes back.
            t.daemon.stop()
            let down = try await eventually { try await peer.state().get() != .established }
            #expect(down)
            t.daemon = try Self.start(port: port, neighbor: "127.0.0.2", passive: true)
            let back = try await eventually(timeout: 20) { try await peer.state().get() == .established }
            #expect(back)
            _ = try await poll { try Self.show(t.daemon, "show bgp l2vpn evpn json") } until: { $0.contains("02:00:00:00:00:01") }

            // FRR shuts the session down with a message: we decode it.
            _ = try Self.configure(t.daemon, ["router bgp 64512", "neighbor 127.0.0.2 shutdown message maintenance window"])
            try await expectShutdownCommunication(peer, "maintenance window")
        }
    }

    @Test func theyConnect() async throws {
        guard Daemon.installed(Self.bgpd) else { Issue.record("FRR is not installed"); return }
        let port = try freePort()
        try await peerConnectsToUs(families: [.ipv4VPN, .evpn]) { ourPort in
            try Self.start(port: port, neighbor: "127.0.0.3", passive: false, remotePort: ourPort)
        }
    }

    @Test(arguments: [("secret", true), ("wrong", false)])
    func md5Signatures(password: String, comesUp: Bool) async throws {
        guard Daemon.installed(Self.bgpd) else { Issue.record("FRR is not installed"); return }
        let port = try freePort()
        try await withInterop({ try Self.start(port: port, neighbor: "127.0.0.2", passive: true, password: "secret") }) { t in
            let peer = t.own(Self.ourSpeaker(port: port, group: t.group, password: password))
            peer.start()
            let up = try await eventually(timeout: comesUp ? 10 : 6) { try await peer.state().get() == .established }
            #expect(up == comesUp, "password \(password): established \(up)")
        }
    }
}
