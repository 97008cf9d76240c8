import BGPSession
import BagpipeLab
import BGPWire
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Sessions with ExaBGP 4.2 from Debian: VPNv4 and EVPN both ways (ExaBGP's API prints what it
/// receives as JSON; its configuration has no RT-Constraint family), withdraws both ways, a restart, a
/// NOTIFICATION from ExaBGP, and ExaBGP connecting to us.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ExaBGPInteropTests {
    static let exabgp = "/usr/sbin/exabgp"

    /// ExaBGP's API process: what ExaBGP receives goes to received.jsonl; lines written to the FIFO
    /// `commands` go to ExaBGP.
    static let api = """
        import os, sys, threading
        here = os.path.dirname(os.path.abspath(__file__))
        def commands():
            while True:
                with open(os.path.join(here, 'commands')) as fifo:
                    for line in fifo:
                        sys.stdout.write(line)
                        sys.stdout.flush()
        threading.Thread(target=commands, daemon=True).start()
        with open(os.path.join(here, 'received.jsonl'), 'a') as out:
            for line in sys.stdin:
                out.write(line)
                out.flush()
        """

    static func configuration(neighbor: String, listen: Int?, connect: Int?) -> String {
        """
        process api {
            run /usr/bin/python3 -u $DIR/api.py;
            encoder json;
        }
        neighbor \(neighbor) {
            router-id 192.0.2.150;
            local-address 127.0.0.1;
            local-as 64512;
            peer-as 64512;
            hold-time 9;
            \(listen.map { "passive true;\n    listen \($0);" } ?? "")
            \(connect.map { "connect \($0);" } ?? "")
            family {
                ipv4 mpls-vpn;
                l2vpn evpn;
            }
            api {
                processes [ api ];
                receive { parsed; update; notification; }
                send { parsed; }
            }
            static {
                route 10.50.0.0/24 rd 64512:50 label 500 next-hop 192.0.2.150 extended-community [ target:64512:100 ];
            }
        }
        """
    }

    static func start(neighbor: String, listen: Int? = nil, connect: Int? = nil) throws -> Daemon {
        let daemon = try Daemon(
            name: "exabgp", executable: exabgp, arguments: ["$DIR/exabgp.conf"],
            files: ["exabgp.conf": "", "api.py": api])
        // The configuration names its own folder; the FIFO must exist before ExaBGP starts the API.
        daemon.kill()
        try configuration(neighbor: neighbor, listen: listen, connect: connect).replacingOccurrences(of: "$DIR", with: daemon.directory.path)
            .write(to: daemon.directory.appendingPathComponent("exabgp.conf"), atomically: true, encoding: .utf8)
        mkfifo(daemon.directory.appendingPathComponent("commands").path, 0o600)
        return try Daemon(
            name: "exabgp", executable: exabgp, arguments: [daemon.directory.appendingPathComponent("exabgp.conf").path],
            files: [:], directory: daemon.directory,
            // ExaBGP drops privileges by default; its API process writes into the test's folder.
            environment: [
                "exabgp_tcp_bind": "127.0.0.1", "exabgp_tcp_port": "\(listen ?? 0)", "exabgp_daemon_daemonize": "false",
                "exabgp_daemon_user": "root", "exabgp_log_destination": "stdout",
            ])
    }

    static func received(_ daemon: Daemon) -> String {
        (try? String(contentsOf: daemon.directory.appendingPathComponent("received.jsonl"), encoding: .utf8)) ?? ""
    }

    struct NoCommandReader: Error, CustomStringConvertible {
        var description: String { "ExaBGP's API process never opened its command FIFO" }
    }

    /// Writes one API command. A blocking open of a FIFO waits forever when ExaBGP failed to start
    /// its API process, so the open is non-blocking and retried until a reader is there or 20 s pass.
    static func command(_ daemon: Daemon, _ line: String) async throws {
        let path = daemon.directory.appendingPathComponent("commands").path
        var descriptor: Int32 = -1
        let opened = try await eventually(timeout: 20) {
            descriptor = open(path, O_WRONLY | O_NONBLOCK)
            return descriptor >= 0
        }
        guard opened else { throw NoCommandReader() }
        let fifo = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try fifo.write(contentsOf: Data((line + "\n").utf8))
        try fifo.close()
    }

    @Test func weConnectExchangeWithdrawRestartAndNotification() async throws {
        guard Daemon.installed(Self.exabgp) else { Issue.record("ExaBGP is not installed: the README's test command installs it"); return }
        let port = try freePort()
        try await withInterop({ try Self.start(neighbor: "127.0.0.2", listen: port) }) { t in
            let peer = t.own(FRRInteropTests.ourSpeaker(port: port, group: t.group))
            let received = Received()
            peer.onUpdate = { received.add($0) }
            FRRInteropTests.announceOurRoutes(peer)
            peer.start()
            let up = try await eventually(timeout: 20) { try await peer.state().get() == .established }
            #expect(up, "no session with ExaBGP: \(t.daemon.log.suffix(1500))")
            let negotiated = try await peer.negotiated().get()
            #expect(negotiated?.families == [.ipv4VPN, .evpn])

            // ExaBGP's own JSON for what we sent.
            let seen = try await eventually {
                let text = Self.received(t.daemon)
                return text.contains("10.10.0.1/32") && text.contains("02:00:00:00:00:01") && text.contains("Inclusive Multicast Ethernet Tag")
            }
            let text = Self.received(t.daemon)
            #expect(seen, "ExaBGP received: \(text.suffix(3000))")
            #expect(text.contains("\"rd\": \"64512:10\"") && text.contains("\"label\": [ [100] ]") && text.contains("target:64512:100"), "\(text.suffix(3000))")
            #expect(text.contains("\"mac\": \"02:00:00:00:00:01\""), "\(text.suffix(3000))")
            #expect(text.contains("Inclusive Multicast Ethernet Tag") && text.contains("pmsi"), "type 3 with its PMSI tunnel: \(text.suffix(3000))")

            // ExaBGP's static route reaches us.
            let got = try await eventually { received.vpnPrefixes.contains("64512:50 10.50.0.0/24") }
            #expect(got)
            #expect(received.vpnRoutes.first { $0.routeDistinguisher == .as2(64512, 50) }?.labels.labels == [500])

            // Withdraws both ways.
            peer.withdraw([GoBGPInteropTests.vpnRoute], family: .ipv4VPN)
            let ours = try await eventually { Self.received(t.daemon).contains("\"withdraw\"") }
            #expect(ours)
            try await Self.command(t.daemon, "withdraw route 10.50.0.0/24 rd 64512:50 label 500 next-hop 192.0.2.150")
            let theirs = try await eventually { received.withdrawnVPN.contains("64512:50 10.50.0.0/24") }
            #expect(theirs)

            // ExaBGP restarts: the session comes back.
            t.daemon.stop()
            let down = try await eventually { try await peer.state().get() != .established }
            #expect(down)
            t.daemon = try Self.start(neighbor: "127.0.0.2", listen: port)
            let back = try await eventually(timeout: 30) { try await peer.state().get() == .established }
            #expect(back)

            // ExaBGP tears the session down with Cease / Administrative Shutdown: we decode it. A
            // restarted ExaBGP may read its command pipe before its session is up and drop the
            // command: it is sent again until the NOTIFICATION comes.
            var notified = false
            for _ in 0..<3 where !notified {
                try await Self.command(t.daemon, "neighbor 127.0.0.2 teardown 2")
                notified = try await eventually { try await peer.currentStatistics().get().lastNotificationReceived?.subcode == 2 }
            }
            #expect(notified)
            #expect(try await peer.currentStatistics().get().lastNotificationReceived?.code == .cease)
        }
    }

    @Test func theyConnect() async throws {
        guard Daemon.installed(Self.exabgp) else { Issue.record("ExaBGP is not installed"); return }
        try await peerConnectsToUs(families: [.ipv4VPN, .evpn], timeout: 30) { ourPort in
            try Self.start(neighbor: "127.0.0.3", connect: ourPort)
        }
    }
}
