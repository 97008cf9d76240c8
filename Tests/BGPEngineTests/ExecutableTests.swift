import BGPEngine
import BGPSession
import BagpipeLab
import BGPWire
import BagpipeConfig
import Foundation
import NIOCore
import NIOPosix
import Testing

@Suite struct ConfigurationTests {
    func options(_ text: String) throws -> (BGPOptions, [String]) {
        var warnings: [String] = []
        let o = try BGPOptions(try INIFile(parsing: text, origin: "bgp.conf"), warnings: &warnings)
        return (o, warnings)
    }

    @Test func originalFileKeepsTheOriginalBehaviour() throws {
        let (o, warnings) = try options("""
            [BGP]
            local_address=192.0.2.1
            peers=192.0.2.101, 192.0.2.102
            my_as=64512
            enable_rtc=True
            [API]
            host=localhost
            """)
        #expect(warnings.isEmpty)
        #expect(o.peers == [IPv4Address(192, 0, 2, 101), IPv4Address(192, 0, 2, 102)])
        #expect(o.myAS == 64512 && o.enableRTC && o.bgpPort == 179 && o.holdTime == 180)
        #expect(!o.routeReflector && !o.passive && !o.listens, "no listener unless one is configured")
        #expect(!o.enableIPv6VPN && o.md5Password == nil && o.gracefulRestartTime == nil, "the new options are off")
    }

    @Test func reflectorOptionsAndDefaults() throws {
        let (o, _) = try options("""
            [bgp]
            local_address = lo
            peers = 127.0.0.2,127.0.0.4
            my_as = 64512
            route_reflector = true
            non_client_peers = 127.0.0.4
            """)
        #expect(o.localAddress == IPv4Address(127, 0, 0, 1), "interface name resolved")
        #expect(o.routeReflector && o.passive && o.listens && o.clusterID == o.localAddress)
        #expect(o.nonClientPeers == [IPv4Address(127, 0, 0, 4)])
    }

    @Test(arguments: [
        ("my_as = 64512", "local_address"),
        ("local_address = 192.0.2.1\nmy_as = sixty", "my_as"),
        ("local_address = nosuchif0\nmy_as = 1", "local_address"),
        ("local_address = 192.0.2.1\nmy_as = 1\nenable_rtc = maybe", "enable_rtc"),
        ("local_address = 192.0.2.1\nmy_as = 1\npeers = 192.0.2.300", "peers"),
        ("local_address = 192.0.2.1\nmy_as = 1\nbgp_port = 70000", "bgp_port"),
        ("local_address = 192.0.2.1\nmy_as = 1\nhold_time = 2", "hold_time"),
        ("local_address = 192.0.2.1\nmy_as = 1\nnon_client_peers = 192.0.2.9", "non_client_peers"),
        ("local_address = 192.0.2.1\nmy_as = 1\ngraceful_restart_time = 5000", "graceful_restart_time"),
        ("local_address = 192.0.2.1\nmy_as = 1\nmd5_password = " + String(repeating: "p", count: 81), "md5_password"),
        ("local_address = 192.0.2.1\nmy_as = 1\nenable_ipv6_vpn = sometimes", "enable_ipv6_vpn"),
    ])
    func invalidValueNamesTheOption(body: String, option: String) {
        do {
            _ = try options("[BGP]\n" + body)
            Issue.record("accepted: \(body)")
        } catch {
            #expect("\(error)".contains("[BGP] \(option)"), "\(error)")
        }
    }

    func configuration(_ text: String) throws -> (BagpipeConfiguration, [String]) {
        var warnings: [String] = []
        let c = try BagpipeConfiguration(try INIFile(parsing: text, origin: "bgp.conf"), warnings: &warnings)
        return (c, warnings)
    }

    /// Behaviour 57 of the original's tests (reference §12).
    @Test func behaviour57LocalAddressTakesAnAddressOrAnInterfaceName() throws {
        #expect(try options("[BGP]\nlocal_address = lo\nmy_as = 1").0.localAddress == IPv4Address(127, 0, 0, 1))
        #expect(try options("[BGP]\nlocal_address = 192.0.2.7\nmy_as = 1").0.localAddress == IPv4Address(192, 0, 2, 7))
        #expect(throws: ConfigurationError.self) { try options("[BGP]\nlocal_address = nosuchif0\nmy_as = 1") }
    }

    @Test func allSectionsWithDefaultsAliasesAndDrivers() throws {
        let (defaults, quiet) = try configuration("[BGP]\nlocal_address = 192.0.2.1\nmy_as = 64512\n")
        #expect(quiet.isEmpty)
        #expect(defaults.api == (try configuration("[BGP]\nlocal_address = 192.0.2.1\nmy_as = 64512\n[API]\nhost = 127.0.0.1\nport = 8082").0.api))
        #expect(defaults.api.host == "127.0.0.1" && defaults.api.port == 8082 && defaults.common.rootHelper == "sudo")
        #expect(defaults.ipvpn.driver == "dummy" && defaults.evpn.driver == "dummy" && defaults.ipvpn.localAddress == nil)
        let (c, warnings) = try configuration("""
            [BGP]
            local_address = 192.0.2.1
            my_as = 64512
            [api]
            api_host = 0.0.0.0
            api_port = 9000
            [DATAPLANE_DRIVER_IPVPN]
            dataplane_driver = mpls_ovs_dataplane.MPLSOVSDataplaneDriver
            dataplane_local_address = lo
            ovs_bridge = br-mpls
            [DATAPLANE_DRIVER_EVPN]
            dataplane_driver = bagpipe.bgp.vpn.evpn.DummyDataplaneDriver
            [DATAPLANE_DRIVER]
            dataplane_driver = dummy
            """)
        #expect(c.api.host == "0.0.0.0" && c.api.port == 9000, "deprecated aliases still read")
        #expect(warnings.contains("[API] api_host is deprecated: use host") && warnings.contains("[API] api_port is deprecated: use port"))
        #expect(warnings.contains { $0.contains("[DATAPLANE_DRIVER] is no longer read") })
        #expect(c.ipvpn.driver == "ovs" && c.ipvpn.localAddress == IPv4Address(127, 0, 0, 1) && c.ipvpn.driverOptions == ["ovs_bridge": "br-mpls"])
        #expect(c.evpn.driver == "dummy")
    }

    @Test(arguments: [
        ("[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = mpls_ovs_dataplane.MPLSOVSDataplaneDriver", "[DATAPLANE_DRIVER_EVPN] dataplane_driver"),
        ("[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = fancy", "[DATAPLANE_DRIVER_IPVPN] dataplane_driver"),
        ("[DATAPLANE_DRIVER_IPVPN]\ndataplane_local_address = nosuchif0", "[DATAPLANE_DRIVER_IPVPN] dataplane_local_address"),
        ("[API]\nport = http", "[API] port"),
    ])
    func invalidSectionValueNamesTheOption(section: String, option: String) {
        do {
            _ = try configuration("[BGP]\nlocal_address = 192.0.2.1\nmy_as = 1\n" + section)
            Issue.record("accepted: \(section)")
        } catch {
            #expect("\(error)".contains(option), "\(error)")
        }
    }

    @Test func unknownOptionsAreWarnedAbout() throws {
        let (_, warnings) = try options("[BGP]\nlocal_address = 192.0.2.1\nmy_as = 1\nmy_sa = 2\n")
        #expect(warnings.count == 1 && warnings[0].contains("my_sa") && warnings[0].contains("bgp.conf:4"))
    }
}

/// The executables as an operator runs them.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ExecutableTests {
    static func client(_ id: UInt8, port: Int, group: any EventLoopGroup, localAddress: String) -> BGPPeer {
        let session = SessionConfiguration(
            localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, id), families: [.ipv4VPN, .routeTargetConstraint], holdTime: 9, active: true,
            connectRetryTime: 1, connectRetryMaximum: 2)
        return BGPPeer(configuration: session, remoteAddress: "127.0.0.3", remotePort: port, localAddress: localAddress, eventLoop: group.next())
    }

    static func run(_ tool: String, _ arguments: [String], files: [String: String], environment: [String: String] = [:]) throws -> Daemon {
        try Daemon(name: tool, executable: builtProduct(tool), arguments: arguments, files: files, environment: environment)
    }

    @Test func reflectorFromBGPConfAndCleanStopOnSIGTERM() async throws {
        let port = try freePort(host: "127.0.0.3")
        let conf = """
            [BGP]
            local_address = 127.0.0.3
            peers = 127.0.0.2, 127.0.0.4
            my_as = 64512
            route_reflector = True
            listen_port = \(port)
            hold_time = 9
            """
        let daemon = try Self.run("bagpipe-bgp", ["--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": conf])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = Self.client(2, port: port, group: group, localAddress: "127.0.0.2"), b = Self.client(4, port: port, group: group, localAddress: "127.0.0.4")
        do {
            let membership = NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: rt1)))
            b.announce([membership], family: .routeTargetConstraint, nextHop: .ipv4(IPv4Address(127, 0, 0, 4)), attributes: attributes([]))
            a.announce([vpn(1), vpn(2)], family: .ipv4VPN, nextHop: nh, attributes: attributes([rt1]))
            a.announce([vpn(3)], family: .ipv4VPN, nextHop: nh, attributes: attributes([rt2]))
            a.start()
            b.start()
            let got = try await eventually(timeout: 20) { Set(try await b.receivedRoutes(.ipv4VPN).get().map(\.element)) == [vpn(1), vpn(2)] }
            let held = try await b.receivedRoutes(.ipv4VPN).get().map(\.element)
            #expect(got, "b holds \(held)\n\(daemon.log.suffix(2000))")
            daemon.process.terminate()
            daemon.process.waitUntilExit()
            #expect(daemon.process.terminationStatus == 0, "\(daemon.log.suffix(2000))")
            let ceased = try await eventually { try await b.currentStatistics().get().lastNotificationReceived?.code == .cease }
            #expect(ceased, "the reflector closes its sessions with a Cease")
            #expect(daemon.log.contains("listening for BGP sessions on 127.0.0.3"))
        } catch {
            Issue.record("\(error)\n\(daemon.log.suffix(2000))")
        }
        a.stop()
        b.stop()
        daemon.stop()
        try await group.shutdownGracefully()
    }

    @Test(arguments: [
        ("[BGP]\nlocal_address = 127.0.0.3\nmy_as = 64512\n[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = ovs\n", "[DATAPLANE_DRIVER_EVPN] dataplane_driver = ovs: Open vSwitch does not answer"),
        ("[BGP]\nlocal_address = 127.0.0.3\nmy_as = 64512\nroute_reflector = perhaps\n", "[BGP] route_reflector"),
    ])
    func refusesToStartWithAClearMessage(conf: String, message: String) throws {
        // No Open vSwitch answers from an empty run folder.
        let daemon = try Self.run("bagpipe-bgp", ["--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": conf], environment: ["OVS_RUNDIR": "/nonexistent"])
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus != 0)
        #expect(daemon.log.contains(message), "\(daemon.log)")
        daemon.stop()
    }

    /// Two host daemons and a route reflector (ours, then gobgpd), all real processes on loopback:
    /// ports attached through the REST API on each host, each host's (dummy) dataplane learns the
    /// other's, a route-target change re-subscribes, detach and stop withdraw.
    @Test(arguments: ["ours", "gobgpd"])
    func twoHostsThroughAReflector(reflector: String) async throws {
        let rrPort = try freePort(host: "127.0.0.3")
        let rr: Daemon
        if reflector == "ours" {
            rr = try Self.run("bagpipe-bgp", ["--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": "[BGP]\nlocal_address = 127.0.0.3\nmy_as = 64512\npeers = 127.0.0.2, 127.0.0.4\nroute_reflector = True\nlisten_port = \(rrPort)\nhold_time = 9\n"])
        } else {
            guard Daemon.installed("/usr/bin/gobgpd") else { Issue.record("gobgpd is not installed"); return }
            let config = GoBGPConfiguration(
                routerID: "127.0.0.3", port: rrPort, localAddress: "127.0.0.3",
                neighbors: ["127.0.0.2", "127.0.0.4"].map {
                    .init(address: $0, localAddress: "127.0.0.3", passive: true, families: ["l3vpn-ipv4-unicast", "l2vpn-evpn", "rtc"], fastTimers: false, routeReflectorClusterID: "127.0.0.3")
                }
            ).toml
            rr = try Daemon(name: "gobgpd", executable: "/usr/bin/gobgpd", arguments: ["-f", "$DIR/gobgpd.toml", "--api-hosts=127.0.0.1:\(try freePort())", "--pprof-disable"], files: ["gobgpd.toml": config])
        }
        var hosts: [Daemon] = []
        let apis = [try freePort(), try freePort()]
        defer {
            for h in hosts { h.stop() }
            rr.stop()
        }
        for (i, address) in ["127.0.0.2", "127.0.0.4"].enumerated() {
            let conf = "[BGP]\nlocal_address = \(address)\nmy_as = 64512\npeers = 127.0.0.3\nbgp_port = \(rrPort)\nhold_time = 9\n[API]\nport = \(apis[i])\n"
            hosts.append(try Self.run("bagpipe-bgp", ["--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": conf]))
        }
        func call(_ host: Int, _ method: String, _ path: String, _ body: String? = nil) throws -> String {
            try shell("/usr/bin/curl", ["-s", "-X", method, "-H", "Content-Type: application/json"] + (body.map { ["-d", $0] } ?? []) + ["http://127.0.0.1:\(apis[host])\(path)"])
        }
        do {
            _ = try await poll(timeout: 20) { (try? call(0, "GET", "/ping")) ?? "" } until: { Int($0.prefix(5)) != nil }
            _ = try await poll(timeout: 20) { (try? call(1, "GET", "/ping")) ?? "" } until: { Int($0.prefix(5)) != nil }
            for (i, mac) in ["52:54:00:00:00:0a", "52:54:00:00:00:0b"].enumerated() {
                let evpn = #"{"vpn_type": "evpn", "vpn_instance_id": "net-1", "mac_address": "\#(mac)", "ip_address": "10.0.0.\#(10 + i)", "local_port": "tap\#(i)", "import_rt": "64512:1", "export_rt": "64512:1", "vni": 5001}"#
                #expect(try call(i, "POST", "/attach_localport", evpn) == "null")
                let ipvpn = #"{"vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": "\#(mac)", "ip_address": "10.1.0.\#(10 + i)/24", "gateway_ip": "10.1.0.1", "local_port": "tap\#(i)", "import_rt": ["64512:2"], "export_rt": ["64512:2"]}"#
                #expect(try call(i, "POST", "/attach_localport", ipvpn) == "null")
            }
            // Each host's dataplane learns the other's MAC, flood entry and /32.
            let a = try await poll(timeout: 20) { try call(0, "GET", "/looking-glass/vpns/instances/net-1/dataplane") } until: { $0.contains("52:54:00:00:00:0b") && $0.contains("127.0.0.4 vni 5001") }
            #expect(a.contains("via 127.0.0.4"))
            _ = try await poll(timeout: 20) { try call(1, "GET", "/looking-glass/vpns/instances/net-1/dataplane") } until: { $0.contains("52:54:00:00:00:0a") && $0.contains("127.0.0.2 vni 5001") }
            _ = try await poll(timeout: 20) { try call(1, "GET", "/looking-glass/vpns/instances/vrf-1/dataplane") } until: { $0.contains("10.1.0.10/32 via 127.0.0.2") }
            // The looking glass: summary, absolute hrefs, best routes, key lookups, 404s.
            let summary = try await poll { try call(0, "GET", "/looking-glass/summary") } until: { $0.contains(#""BGP_established_peers":1"#) }
            #expect(summary.contains(#""vpn_instances_count":2"#) && summary.contains("received_routes_count"))
            #expect(try call(0, "GET", "/looking-glass/vpns/instances").contains("\"href\":\"http://127.0.0.1:\(apis[0])/looking-glass/vpns/instances/net-1\""))
            let best = try call(0, "GET", "/looking-glass/vpns/instances/net-1/best_routes")
            #expect(best.contains("type2:") && best.contains("52:54:00:00:00:0b") && best.contains("target:64512:1"), "\(best)")
            #expect(try call(0, "GET", "/looking-glass/vpns/instances/vrf-1/route_targets/import") == #"["target:64512:2"]"#)
            #expect(try call(0, "GET", "/looking-glass/bgp/peers/127.0.0.3/protocol/state") == #""Established""#)
            #expect(try call(0, "GET", "/looking-glass/vpns/instances/vrf-1/nope").contains(#""code":"404 Not Found""#))
            // The rest of the tree: config, routes of the speaker, workers, drivers, label allocations.
            #expect(try call(0, "GET", "/looking-glass/config/BGP/my_as") == "64512")
            let routes = try call(0, "GET", "/looking-glass/bgp/routes")
            #expect(routes.contains(#""l2vpn/evpn,*""#) && routes.contains(#""ipv4/rtc,*""#) && routes.contains("BGP-127.0.0.3"), "\(routes)")
            let workers = try call(0, "GET", "/looking-glass/bgp/workers")
            #expect(workers.contains(#""id":"BGP-127.0.0.3""#) && workers.contains(#""id":"EVI-1""#) && workers.contains(#""id":"VRF-2""#), "\(workers)")
            #expect(try call(0, "GET", "/looking-glass/bgp/workers/EVI-1/external_instance_id") == #""net-1""#)
            #expect(try call(0, "GET", "/looking-glass/vpns/dataplane/drivers/evpn/supported_encaps") == #"["VXLAN"]"#)
            #expect(try call(0, "GET", "/looking-glass/vpns/dataplane/ids").contains("vrf-1"))
            #expect(try call(0, "GET", "/looking-glass/vpns/instances/net-1/received_routes").contains("52:54:00:00:00:0b"))
            // Prometheus metrics: sessions by state, routes by family, instances, API requests.
            let metrics = try call(0, "GET", "/metrics")
            #expect(metrics.contains(#"bagpipe_bgp_peers{state="Established"} 1.0"#) && metrics.contains(#"bagpipe_vpn_instances{type="evpn"} 1.0"#), "\(metrics)")
            #expect(metrics.contains(#"bagpipe_bgp_routes{family="l2vpn-evpn",origin="received"}"#) && metrics.contains("hb_requests{"), "\(metrics)")
            // Errors are JSON 4xx; a known path with another method is a 405.
            let bad = try shell("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", #"{"vpn_type": "evpn"}"#, "http://127.0.0.1:\(apis[0])/attach_localport"])
            #expect(bad == "400")
            #expect(try call(0, "POST", "/attach_localport", "[1]").contains(#""code":"400 Bad Request""#))
            #expect(try shell("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "http://127.0.0.1:\(apis[0])/attach_localport"]) == "405")
            // Host B's VRF stops importing 64512:2 (another attach with new targets): A's route goes from
            // B's dataplane; importing it again brings it back.
            let retarget = #"{"vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": "52:54:00:00:00:0b", "ip_address": "10.1.0.11/24", "gateway_ip": "10.1.0.1", "local_port": "tap1", "import_rt": ["64512:3"], "export_rt": ["64512:2"]}"#
            #expect(try call(1, "POST", "/attach_localport", retarget) == "null")
            _ = try await poll(timeout: 20) { try call(1, "GET", "/looking-glass/vpns/instances/vrf-1/dataplane") } until: { !$0.contains("via 127.0.0.2") }
            #expect(try call(1, "POST", "/attach_localport", retarget.replacingOccurrences(of: "64512:3", with: "64512:2")) == "null")
            _ = try await poll(timeout: 20) { try call(1, "GET", "/looking-glass/vpns/instances/vrf-1/dataplane") } until: { $0.contains("10.1.0.10/32 via 127.0.0.2") }
            // Host A detaches its E-VPN port: B forgets the MAC, and A's instance is gone (its last port).
            let detach = #"{"vpn_type": "evpn", "vpn_instance_id": "net-1", "mac_address": "52:54:00:00:00:0a", "local_port": "tap0"}"#
            #expect(try call(0, "POST", "/detach_localport", detach) == "null")
            _ = try await poll(timeout: 20) { try call(1, "GET", "/looking-glass/vpns/instances/net-1/dataplane") } until: { !$0.contains("52:54:00:00:00:0a") && !$0.contains("127.0.0.2 vni") }
            #expect(try call(0, "GET", "/looking-glass/vpns/instances/net-1").contains(#""code":"404 Not Found""#))
            // Host A stops: B withdraws its VRF route.
            hosts[0].process.terminate()
            hosts[0].process.waitUntilExit()
            #expect(hosts[0].process.terminationStatus == 0)
            _ = try await poll(timeout: 20) { try call(1, "GET", "/looking-glass/vpns/instances/vrf-1/dataplane") } until: { !$0.contains("via 127.0.0.2") }
        } catch {
            Issue.record("\(error)\nrr: \(rr.log.suffix(3000))\nhost A: \(hosts.first?.log.suffix(2500) ?? "")\nhost B: \(hosts.last?.log.suffix(1500) ?? "")")
        }
    }

    /// Two speakers peer with each other through the relay, as two bagpipe-bgp did with the original.
    @Test func fakeRouteReflectorRelaysTwoSpeakers() async throws {
        let port = try freePort(host: "127.0.0.3")
        let relay = try Self.run("bagpipe-fakerr", ["--host", "127.0.0.3", "--port", "\(port)"], files: [:])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = Self.client(2, port: port, group: group, localAddress: "127.0.0.2"), b = Self.client(4, port: port, group: group, localAddress: "127.0.0.4")
        do {
            _ = try await poll { relay.log } until: { $0.contains("relaying") }
            a.announce([vpn(1)], family: .ipv4VPN, nextHop: nh, attributes: attributes([rt1]))
            a.start()
            // a's OPEN waits in the relay until b connects.
            b.start()
            let up = try await eventually(timeout: 20) {
                let (sa, sb) = (try await a.state().get(), try await b.state().get())
                return sa == .established && sb == .established
            }
            #expect(up, "\(relay.log)")
            let got = try await eventually { try await b.receivedRoutes(.ipv4VPN).get().map(\.element) == [vpn(1)] }
            #expect(got)
            let negotiated = try await b.negotiated().get()
            #expect(negotiated?.peerRouterID == IPv4Address(192, 0, 2, 2), "b is peered with a itself")
        } catch {
            Issue.record("\(error)\n\(relay.log)")
        }
        a.stop()
        b.stop()
        relay.stop()
        try await group.shutdownGracefully()
    }
}
