import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeLab
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Real daemons as clients of our route reflector, and gobgpd as the reflector of our speakers.
/// Addresses: our reflector 127.0.0.3, our injector 127.0.0.2, gobgpd 127.0.0.1, FRR 127.0.0.4.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReflectorInteropTests {
    static let gobgpd = "/usr/bin/gobgpd", gobgp = "/usr/bin/gobgp"
    static let bgpd = "/usr/lib/frr/bgpd", vtysh = "/usr/bin/vtysh"
    static let families: [AddressFamily] = [.ipv4VPN, .evpn, .routeTargetConstraint]
    static let clusterID = IPv4Address(192, 0, 2, 3)

    static func goBGPClient(rrPort: Int, api: Int, routeReflector: Bool = false, clients: [String] = []) -> Daemon? {
        let neighbors = (routeReflector ? clients : ["127.0.0.3"]).map { address in
            GoBGPConfiguration.Neighbor(
                address: address, localAddress: "127.0.0.1", passive: routeReflector, remotePort: routeReflector ? nil : rrPort, families: ["l3vpn-ipv4-unicast", "l2vpn-evpn", "rtc"],
                routeReflectorClusterID: routeReflector ? "192.0.2.100" : nil)
        }
        let config = GoBGPConfiguration(routerID: "192.0.2.100", port: routeReflector ? rrPort : -1, localAddress: "127.0.0.1", neighbors: neighbors).toml
        return try? Daemon(
            name: "gobgpd", executable: gobgpd, arguments: ["-f", "$DIR/gobgpd.toml", "--api-hosts=127.0.0.1:\(api)", "--pprof-disable", "-l", "info"],
            files: ["gobgpd.toml": config])
    }

    static func cli(_ api: Int, _ arguments: [String]) throws -> String { try shell(gobgp, ["-u", "127.0.0.1", "-p", "\(api)"] + arguments) }

    static func frrClient(rrPort: Int) throws -> Daemon {
        let config = """
            frr defaults traditional
            hostname frr-client
            log stdout informational
            router bgp 64512
             bgp router-id 192.0.2.4
             no bgp default ipv4-unicast
             neighbor 127.0.0.3 remote-as 64512
             neighbor 127.0.0.3 port \(rrPort)
             neighbor 127.0.0.3 update-source 127.0.0.4
             neighbor 127.0.0.3 timers 3 9
             neighbor 127.0.0.3 timers connect 1
             address-family ipv4 vpn
              neighbor 127.0.0.3 activate
             exit-address-family
             address-family l2vpn evpn
              neighbor 127.0.0.3 activate
             exit-address-family
            exit
            """
        return try Daemon(
            name: "frr", executable: bgpd,
            arguments: ["-f", "$DIR/bgpd.conf", "-S", "-Z", "-n", "-l", "127.0.0.4", "-p", "0", "-P", "0", "--vty_socket", "$DIR", "-i", "$DIR/bgpd.pid", "-u", "root", "-g", "root"],
            files: ["bgpd.conf": config])
    }

    static func frr(_ daemon: Daemon, _ command: String) throws -> String {
        try shell(vtysh, ["--vty_socket", daemon.directory.path, "-d", "bgpd", "-c", command])
    }

    static func session(_ id: UInt8, active: Bool, rtc: Bool = true) -> SessionConfiguration {
        SessionConfiguration(
            localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, id), families: rtc ? families : [.ipv4VPN, .evpn], holdTime: 9,
            active: active, connectRetryTime: 1, connectRetryMaximum: 2)
    }

    /// Routes of the injector: VPNv4 over three route targets, and an EVPN MAC/IP route.
    static let injected: [(NLRIElement, ExtendedCommunity)] = [
        (vpn(1, rd: 21), rt1), (vpn(2, rd: 21), rt1), (vpn(3, rd: 22), rt2), (vpn(4, rd: 22), rt2), (vpn(5, rd: 23), rt3),
    ]
    static let mac = NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .as2(64512, 21), mac: MACAddress("02:00:00:00:00:01")!, ip: .v4(IPv4Address(10, 0, 0, 1)), labelField1: 5000))))
    static let injectorNextHop = IPv4Address(192, 0, 2, 2)

    /// gobgp's RIB key of injected route i.
    static func goKey(_ i: Int) -> String { "\"64512:\(i < 3 ? 21 : i < 5 ? 22 : 23):10.0.0.\(i)/32\"" }

    static func inject(_ peer: BGPPeer) {
        for (element, rt) in injected {
            peer.announce([element], family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(injectorNextHop)), attributes: attributes([rt, .encapsulation(.vxlan)]))
        }
        peer.announce([mac], family: .evpn, nextHop: .ipv4(injectorNextHop), attributes: attributes([rt1, .encapsulation(.vxlan)]))
    }

    @Test func ourReflectorServesGoBGPWithConstraintAndFRRWithout() async throws {
        guard Daemon.installed(Self.gobgpd), Daemon.installed(Self.bgpd) else { Issue.record("gobgpd or FRR is not installed: the README's test command installs them"); return }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let rrPort = try freePort(host: "127.0.0.3"), api = try freePort()
        let rr = BGPSpeaker(configuration: .init(localAS: 64512, routerID: Self.clusterID, clusterID: Self.clusterID), eventLoop: group.next())
        for (address, rtc) in [("127.0.0.1", true), ("127.0.0.4", false), ("127.0.0.2", true)] {
            _ = try await rr.addPeer(.init(address: address, session: Self.session(3, active: false, rtc: rtc), client: true, keepsAdjRIBIn: false)).get()
        }
        _ = try await rr.listen(host: "127.0.0.3", port: rrPort).get()
        let injector = BGPPeer(configuration: Self.session(2, active: true), remoteAddress: "127.0.0.3", remotePort: rrPort, localAddress: "127.0.0.2", eventLoop: group.next())
        var gobgpd = Self.goBGPClient(rrPort: rrPort, api: api)
        var frr: Daemon? = nil
        do {
            Self.inject(injector)
            injector.start()
            frr = try Self.frrClient(rrPort: rrPort)
            let up = try await eventually(timeout: 20) { try await injector.state().get() == .established }
            #expect(up)
            // gobgpd imports rt1 only (a VRF), so it sends the membership route 64512:1.
            _ = try await poll(timeout: 20) { try Self.cli(api, ["neighbor"]) } until: { $0.contains("Establ") }
            _ = try Self.cli(api, ["vrf", "add", "red", "rd", "64512:30", "rt", "both", "64512:1"])

            // gobgpd: exactly the rt1 routes, with ORIGINATOR_ID (the injector) and CLUSTER_LIST (us).
            let vpnGoBGP = try await poll(timeout: 20) { try Self.cli(api, ["global", "rib", "-a", "vpnv4", "-j"]) } until: { $0.contains(Self.goKey(1)) && $0.contains(Self.goKey(2)) }
            // gobgp's JSON keys its RIB by "RD:prefix" (the attributes repeat the whole MP_REACH NLRI list).
            #expect(!vpnGoBGP.contains(Self.goKey(3)) && !vpnGoBGP.contains(Self.goKey(4)) && !vpnGoBGP.contains(Self.goKey(5)), "RT-Constraint ignored: \(vpnGoBGP)")
            #expect(vpnGoBGP.contains("\"nexthop\":\"192.0.2.2\"") && vpnGoBGP.contains("\"labels\":[100]"), "\(vpnGoBGP)")
            #expect(vpnGoBGP.contains("\"type\":9,\"value\":\"192.0.2.2\""), "ORIGINATOR_ID: \(vpnGoBGP)")
            #expect(vpnGoBGP.contains("\"type\":10,\"value\":[\"192.0.2.3\"]"), "CLUSTER_LIST: \(vpnGoBGP)")
            #expect(vpnGoBGP.contains("64512:1") && vpnGoBGP.contains("\"tunnel_type\":8"), "extended communities: \(vpnGoBGP)")
            let evpnGoBGP = try await poll { try Self.cli(api, ["global", "rib", "-a", "evpn", "-j"]) } until: { $0.contains("02:00:00:00:00:01") }
            #expect(evpnGoBGP.contains("02:00:00:00:00:01"))

            // FRR (no RT-Constraint): everything.
            let frrDaemon = try #require(frr)
            let vpnFRR = try await poll(timeout: 20) { try Self.frr(frrDaemon, "show bgp ipv4 vpn json") } until: { s in (1...5).allSatisfy { s.contains("10.0.0.\($0)/32") } }
            #expect((1...5).allSatisfy { vpnFRR.contains("10.0.0.\($0)/32") }, "\(vpnFRR.prefix(3000))")
            let detail = try Self.frr(frrDaemon, "show bgp ipv4 vpn 10.0.0.3/32 json")
            #expect(detail.contains("\"originatorId\":\"192.0.2.2\"") && detail.contains("192.0.2.3") && detail.contains("RT:64512:2"), "\(detail)")

            // A withdraw reaches both.
            injector.withdraw([vpn(1, rd: 21)], family: .ipv4VPN)
            _ = try await poll { try Self.cli(api, ["global", "rib", "-a", "vpnv4", "-j"]) } until: { !$0.contains(Self.goKey(1)) && $0.contains(Self.goKey(2)) }
            _ = try await poll { try Self.frr(frrDaemon, "show bgp ipv4 vpn json") } until: { !$0.contains("10.0.0.1/32") && $0.contains("10.0.0.2/32") }

            // gobgpd restarts: it gets its routes again (and, still, only those).
            gobgpd?.stop()
            gobgpd = Self.goBGPClient(rrPort: rrPort, api: api)
            _ = try await poll(timeout: 20) { try Self.cli(api, ["neighbor"]) } until: { $0.contains("Establ") }
            _ = try Self.cli(api, ["vrf", "add", "red", "rd", "64512:30", "rt", "both", "64512:1"])
            let again = try await poll(timeout: 20) { try Self.cli(api, ["global", "rib", "-a", "vpnv4", "-j"]) } until: { $0.contains(Self.goKey(2)) }
            #expect(!again.contains(Self.goKey(1)) && !again.contains(Self.goKey(3)), "\(again)")

            // gobgpd's own route, exported with rt2, goes to FRR (no filter) through us.
            _ = try Self.cli(api, ["global", "rib", "-a", "vpnv4", "add", "10.9.0.0/24", "label", "900", "rd", "64512:90", "rt", "64512:2", "nexthop", "192.0.2.100"])
            _ = try await poll { try Self.frr(frrDaemon, "show bgp ipv4 vpn json") } until: { $0.contains("10.9.0.0/24") }
        } catch {
            Issue.record("\(error)\ngobgpd: \(gobgpd?.log.suffix(2000) ?? "")\nfrr: \(frr?.log.suffix(2000) ?? "")")
        }
        injector.stop()
        gobgpd?.stop()
        frr?.stop()
        try await rr.stop().get()
        try await group.shutdownGracefully()
    }

    /// The reverse: gobgpd reflects between two of our hosts, which originate RT-Constraint routes for
    /// what their local workers import.
    @Test func goBGPReflectsBetweenOurHosts() async throws {
        guard Daemon.installed(Self.gobgpd) else { Issue.record("gobgpd is not installed"); return }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let rrPort = try freePort(), api = try freePort()
        let gobgpd = Self.goBGPClient(rrPort: rrPort, api: api, routeReflector: true, clients: ["127.0.0.2", "127.0.0.5"])
        var hosts: [BGPSpeaker] = []
        var workers: [WorkerID] = []
        do {
            let received = NIOLockedRoutes()
            for (i, address) in ["127.0.0.2", "127.0.0.5"].enumerated() {
                let host = BGPSpeaker(configuration: .init(localAS: 64512, routerID: IPv4Address(192, 0, 2, UInt8(20 + i))), eventLoop: group.next())
                hosts.append(host)
                _ = try await host.addPeer(.init(address: "127.0.0.1", port: rrPort, session: Self.session(UInt8(20 + i), active: true), localAddress: address)).get()
                let worker = try await host.addLocalWorker(name: "vrf") { event in received.record(host: i, event) }.get()
                workers.append(worker)
                _ = try await host.run { engine in
                    engine.subscribe(worker, to: Match(family: .ipv4VPN, routeTarget: i == 0 ? rt1 : rt2)!)
                    engine.advertise(from: worker, family: .ipv4VPN, vpn(i, rd: UInt32(40 + i)), nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, UInt8(20 + i)))), attributes: attributes([rt2]))
                    engine.advertise(from: worker, family: .ipv4VPN, vpn(10 + i, rd: UInt32(40 + i)), nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, UInt8(20 + i)))), attributes: attributes([rt3]))
                }.get()
            }
            // Host 1 imports rt2: it gets host 0's rt2 route through gobgpd; nothing with rt3.
            let got = try await eventually(timeout: 20) { received.elements(host: 1).contains(vpn(0, rd: 40)) }
            #expect(got, "gobgpd: \(gobgpd?.log.suffix(1500) ?? "")")
            // gobgpd holds both hosts' membership routes: 64512:1 and 64512:2.
            let rtc = try await poll { try Self.cli(api, ["global", "rib", "-a", "rtc"]) } until: { $0.contains("64512:1") && $0.contains("64512:2") }
            #expect(rtc.contains("64512:1") && rtc.contains("64512:2"), "\(rtc)")
            #expect(!received.elements(host: 1).contains(vpn(10, rd: 40)), "rt3 is imported by nobody")
            #expect(received.elements(host: 0).isEmpty, "host 0 imports rt1, which nobody exports: \(received.elements(host: 0))")
            // Host 0's route goes: host 1 is told.
            let worker = workers[0]
            _ = try await hosts[0].run { engine in engine.cleanup(worker) }.get()
            let gone = try await eventually { !received.elements(host: 1).contains(vpn(0, rd: 40)) }
            #expect(gone)
        } catch {
            Issue.record("\(error)\n\(gobgpd?.log.suffix(2000) ?? "")")
        }
        for host in hosts { try await host.stop().get() }
        gobgpd?.stop()
        try await group.shutdownGracefully()
    }
}

/// What local workers were told, per host: the routes they hold now.
final class NIOLockedRoutes: @unchecked Sendable {
    private let lock = NSLock()
    private var held: [Int: [RouteKey: NLRIElement]] = [:]

    func record(host: Int, _ event: RouteEngine.LocalEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .advertise(let r, _): held[host, default: [:]][RouteKey(r.element)] = r.element
        case .withdraw(let r): held[host]?[RouteKey(r.element)] = nil
        }
    }

    func elements(host: Int) -> Set<NLRIElement> {
        lock.lock()
        defer { lock.unlock() }
        return Set(held[host]?.values.map { $0 } ?? [])
    }
}
