import BGPSession
import BagpipeLab
import BGPWire
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Sessions with BIRD 2.0.12 from Debian: VPNv4 both ways (BIRD has neither EVPN nor RT-Constraint),
/// checked with birdc, withdraws both ways, a restart, a shutdown message, BIRD connecting to us.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BIRDInteropTests {
    static let bird = "/usr/sbin/bird"
    static let birdc = "/usr/sbin/birdc"

    static func configuration(neighbor: String, localPort: Int, passive: Bool, neighborPort: Int? = nil) -> String {
        """
        router id 192.0.2.160;
        log stderr all;
        protocol device {}
        vpn4 table vpntab;
        protocol static vpnstatic {
          vpn4 { table vpntab; };
          route 64512:60 10.60.0.0/24 blackhole;
        }
        protocol bgp ours {
          local 127.0.0.1 port \(localPort) as 64512;
          neighbor \(neighbor) \(neighborPort.map { "port \($0)" } ?? "") as 64512;
          \(passive ? "passive on;" : "")
          hold time 9;
          keepalive time 3;
          connect retry time 1;
          vpn4 mpls { table vpntab; import all; export all; next hop self; };
        }
        """
    }

    static func start(neighbor: String, localPort: Int, passive: Bool, neighborPort: Int? = nil) throws -> Daemon {
        try Daemon(
            name: "bird", executable: bird, arguments: ["-f", "-c", "$DIR/bird.conf", "-s", "$DIR/bird.ctl"],
            files: ["bird.conf": configuration(neighbor: neighbor, localPort: localPort, passive: passive, neighborPort: neighborPort)])
    }

    static func birdc(_ daemon: Daemon, _ arguments: [String]) throws -> String {
        try shell(birdc, ["-s", daemon.directory.appendingPathComponent("bird.ctl").path] + arguments)
    }

    @Test func weConnectExchangeWithdrawRestartAndShutdown() async throws {
        guard Daemon.installed(Self.bird) else { Issue.record("BIRD is not installed: the README's test command installs it"); return }
        let port = try freePort()
        try await withInterop({ try Self.start(neighbor: "127.0.0.2", localPort: port, passive: true) }) { t in
            let peer = t.own(FRRInteropTests.ourSpeaker(port: port, group: t.group))
            let received = Received()
            peer.onUpdate = { received.add($0) }
            FRRInteropTests.announceOurRoutes(peer)
            peer.start()
            let up = try await eventually { try await peer.state().get() == .established }
            #expect(up, "no session with BIRD: \(t.daemon.log.suffix(1500))")
            #expect(try await peer.negotiated().get()?.families == [.ipv4VPN], "BIRD has neither EVPN nor RT-Constraint")

            // BIRD holds our route with RD, label, route target and next hop.
            let table = try await poll { try Self.birdc(t.daemon, ["show", "route", "table", "vpntab", "all"]) } until: { $0.contains("10.10.0.1/32") }
            #expect(table.contains("64512:10 10.10.0.1/32"), "\(table)")
            #expect(table.contains("(rt, 64512, 100)") && table.contains("192.0.2.2") && table.contains("BGP.mpls_label_stack: 100"), "\(table)")

            // We hold BIRD's route.
            let got = try await eventually { received.vpnPrefixes.contains("64512:60 10.60.0.0/24") }
            #expect(got)

            // Withdraws both ways.
            peer.withdraw([GoBGPInteropTests.vpnRoute], family: .ipv4VPN)
            _ = try await poll { try Self.birdc(t.daemon, ["show", "route", "table", "vpntab"]) } until: { !$0.contains("10.10.0.1/32") }
            _ = try Self.birdc(t.daemon, ["disable", "vpnstatic"])
            let withdrawn = try await eventually { received.withdrawnVPN.contains("64512:60 10.60.0.0/24") }
            #expect(withdrawn)

            // BIRD restarts: the session comes back.
            t.daemon.stop()
            _ = try await eventually { try await peer.state().get() != .established }
            t.daemon = try Self.start(neighbor: "127.0.0.2", localPort: port, passive: true)
            let back = try await eventually(timeout: 20) { try await peer.state().get() == .established }
            #expect(back)

            // BIRD shuts the session down with a message.
            _ = try Self.birdc(t.daemon, ["disable", "ours", "\"maintenance window\""])
            try await expectShutdownCommunication(peer, "maintenance window")
        }
    }

    @Test func theyConnect() async throws {
        guard Daemon.installed(Self.bird) else { Issue.record("BIRD is not installed"); return }
        let port = try freePort()
        try await peerConnectsToUs(families: [.ipv4VPN]) { ourPort in
            try Self.start(neighbor: "127.0.0.3", localPort: port, passive: false, neighborPort: ourPort)
        }
    }
}
