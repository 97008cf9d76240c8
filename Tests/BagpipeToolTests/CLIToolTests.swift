import BagpipeLab
import BGPWire
import BagpipeCLI
import Foundation
import Testing

/// Our `bagpipe-rest-attach`, `bagpipe-looking-glass`, `bagpipe-impex2dot` and `bagpipe-bgp-cleanup`
/// (reference §4, §10) against a running daemon.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CLIToolTests {
    @Test func restAttachAndLookingGlass() async throws {
        let host = try await HostDaemon()
        defer { host.stop() }
        let api = ["--api-port", "\(host.apiPort)"]
        var r = try runTool("bagpipe-rest-attach", ["--attach", "--network-type", "evpn", "--port", "tap1", "--mac", "52:54:00:00:00:01", "--ip", "10.0.0.1", "--vpn-instance-id", "net1", "--rt", "64512:10"] + api)
        #expect(r.status == 0 && r.output.contains("response: 200 null") && r.output.contains("using 10.0.0.254 as gateway address"), "\(r.output)")
        #expect(r.output.contains(#""ip_address":"10.0.0.1/24""#), "the /24 default: \(r.output)")
        r = try runTool("bagpipe-rest-attach", ["--attach", "--network-type", "ipvpn", "--port", "evpn:net1", "--ip", "10.0.0.5", "--vpn-instance-id", "vrf1", "--rt", "64512:20"] + api)
        #expect(r.status == 0 && r.output.contains(#""local_port":{"evpn":{"id":"net1"}}"#), "links the E-VPN: \(r.output)")
        #expect(try await host.lookingGlass("vpns/instances/net1/gateway_port/ipvpn/external_instance_id") == "vrf1")
        // Refused: the message and a non-zero status.
        r = try runTool("bagpipe-rest-attach", ["--attach", "--network-type", "evpn", "--port", "tap2", "--mac", "nope", "--ip", "10.0.0.2", "--vpn-instance-id", "net1"] + api)
        #expect(r.status != 0 && r.output.contains("error 400") && r.output.contains("MAC address nope is not valid"), "\(r.output)")
        r = try runTool("bagpipe-rest-attach", ["--attach", "--network-type", "evpn", "--port", "tap2", "--ip", "10.0.0.2"] + api)
        #expect(r.status != 0 && r.output.contains("Need to specify --mac"), "\(r.output)")

        // The looking glass, as text.
        r = try runTool("bagpipe-looking-glass", ["--port", "\(host.apiPort)", "vpns", "instances"])
        #expect(r.status == 0 && r.output.contains("* net1 (...)\n  name: EVI-1") && r.output.contains("* vrf1 (...)"), "\(r.output)")
        r = try runTool("bagpipe-looking-glass", ["--port", "\(host.apiPort)", "-r", "vpns", "instances", "net1"])
        #expect(r.output.hasPrefix("instance_type: EVI\n") && r.output.contains("route_targets: \n  import: \n    * target:64512:10"), "\(r.output)")
        #expect(r.output.contains("mac_address: 52:54:00:00:00:01"), "recursed into ports: \(r.output)")
        r = try runTool("bagpipe-looking-glass", ["--port", "\(host.apiPort)", "summary"])
        #expect(r.output.contains("vpn_instances_count: 2") && r.output.contains("route_counts: \n  local_routes_count:"), "\(r.output)")
        r = try runTool("bagpipe-looking-glass", ["--port", "\(host.apiPort)", "no", "such"])
        #expect(r.status != 0 && r.output.contains("No such looking glass path: no such"), "\(r.output)")
        r = try runTool("bagpipe-looking-glass", ["--port", "\(try freePort())", "summary"])
        #expect(r.status != 0 && r.output.contains("No server at"), "\(r.output)")

        // The import/export graph.
        r = try runTool("bagpipe-impex2dot", ["--port", "\(host.apiPort)", "--server", "127.0.0.1"])
        #expect(r.output.hasPrefix("digraph import_export {") && r.output.contains("rt_64512_10 -> vpn_127_0_0_1__net1:0") && r.output.contains("vpn_127_0_0_1__vrf1:0 -> rt_64512_20"), "\(r.output)")
        #expect(r.output.contains("vpn_127_0_0_1__net1 -> vpn_127_0_0_1__vrf1 [weight=500]"), "the E-VPN to VRF link: \(r.output)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/dot") {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("impex-\(UUID().uuidString.prefix(6)).dot")
            try r.output.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            #expect(try shell("/usr/bin/dot", ["-Tsvg", file.path]).contains("<svg"), "Graphviz reads it")
        }

        // Detach.
        r = try runTool("bagpipe-rest-attach", ["--detach", "--network-type", "ipvpn", "--port", "evpn:net1", "--ip", "10.0.0.5", "--vpn-instance-id", "vrf1", "--rt", "64512:20"] + api)
        #expect(r.status == 0, "\(r.output)")
        r = try runTool("bagpipe-rest-attach", ["--detach", "--network-type", "evpn", "--port", "tap1", "--mac", "52:54:00:00:00:01", "--ip", "10.0.0.1", "--vpn-instance-id", "net1", "--rt", "64512:10"] + api)
        #expect(r.status == 0, "\(r.output)")
        #expect(try await host.lookingGlass("vpns/instances") == .array([]))
    }

    /// `--port netns`: a namespace with a veth pair stands for a VM; its MAC is what is attached.
    @Test func restAttachCreatesANamespaceWithAVethPair() async throws {
        let host = try await HostDaemon()
        let namespace = "bgt-\(UUID().uuidString.prefix(6).lowercased())"
        defer {
            host.stop()
            _ = try? shell("/usr/bin/env", ["ip", "link", "delete", "ns-\(namespace)"])
            _ = try? shell("/usr/bin/env", ["ip", "netns", "delete", namespace])
        }
        let r = try runTool("bagpipe-rest-attach", ["--attach", "--network-type", "evpn", "--port", "netns", "--netns", namespace, "--ip", "10.9.0.7", "--vpn-instance-id", "net-ns", "--rt", "64512:30", "--api-port", "\(host.apiPort)"])
        #expect(r.status == 0 && r.output.contains("response: 200"), "\(r.output)")
        let inside = try shell("/usr/bin/env", ["ip", "netns", "exec", namespace, "ip", "-o", "addr", "show", "dev", "tovpn"])
        #expect(inside.contains("10.9.0.7/24"), "\(inside)")
        let mac = try shell("/usr/bin/env", ["ip", "netns", "exec", namespace, "cat", "/sys/class/net/tovpn/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let ports = try await host.lookingGlass("vpns/instances/net-ns/ports")
        let outside = "ns-\(namespace)"
        #expect(ports[outside]?["endpoints"]?.arrayValue?.first?["mac_address"]?.stringValue == mac, "\(ports)")
        #expect(try shell("/usr/bin/env", ["ip", "-o", "link", "show", outside]).contains("mtu 9000"))
    }

    @Test func cleanupWithTheDummyDriversHasNothingToDo() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cleanup-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "[BGP]\nlocal_address = 127.0.0.2\nmy_as = 64512\n".write(to: dir.appendingPathComponent("bgp.conf"), atomically: true, encoding: .utf8)
        let r = try runTool("bagpipe-bgp-cleanup", ["--config-file", dir.appendingPathComponent("bgp.conf").path])
        #expect(r.status == 0 && r.output.contains("ipvpn: dummy driver state removed") && r.output.contains("evpn: dummy driver state removed"), "\(r.output)")
        let bad = try runTool("bagpipe-bgp-cleanup", ["--config-file", dir.appendingPathComponent("missing.conf").path])
        #expect(bad.status == 2 && bad.output.contains("missing.conf"), "\(bad.output)")
    }
}
