import BagpipeLab
import BagpipeDataplane
import Foundation
import Testing

/// Issue 7, acceptance 2 and 3: the OpenStack OVS layout (br-int, br-tun, br-mpls and their patch
/// ports, the agent's br-tun base rules), attachments exactly as the bagpipe OVS agent sends them.
/// E-VPN: VMs on br-int (different local VLANs per host) ping over VXLAN between hosts; detach stops
/// it. IP VPN: the agent's `patch2tun:<vlan>` pseudo-port with `ovs.plugged` and `port_number`
/// gives the rules that agent expects, read back from the switch.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct OVSEVPNDataplaneTests {
    static let vni = 4242
    static let vlans = ["a": 7, "b": 9]

    /// How Open vSwitch prints setting a VLAN id (with the "present" bit, 0x1000).
    static func setVLAN(_ vlan: Int) -> String { "set_field:\(0x1000 + vlan)->vlan_vid" }

    static func mac(_ host: String) -> String { host == "a" ? "fa:16:3e:00:00:01" : "fa:16:3e:00:00:02" }
    static func ip(_ host: String) -> String { host == "a" ? "10.42.0.1" : "10.42.0.2" }

    /// What the Neutron OVS agent sets up: patch ports between the bridges, and br-tun's base rules
    /// (from br-int to table 2, unicast to 20, flooding to 22, table 10 back to br-int).
    static func agentLayout(_ lab: Lab, _ host: String) throws {
        func patch(_ a: (String, String), _ b: (String, String)) -> [String] {
            ["--", "add-port", a.0, a.1, "--", "set", "Interface", a.1, "type=patch", "options:peer=\(b.1)",
             "--", "add-port", b.0, b.1, "--", "set", "Interface", b.1, "type=patch", "options:peer=\(a.1)"]
        }
        try lab.ovs(host, "ovs-vsctl", ["--timeout=30"] + patch(("br-int", "patch-tun"), ("br-tun", "patch-int"))
            + patch(("br-tun", "patch-tun-to-mpls"), ("br-mpls", "patch-mpls-to-tun")) + patch(("br-int", "patch-int-to-mpls"), ("br-mpls", "patch-mpls-to-int")))
        let patchInt = try ofport(lab, host, "patch-int")
        try lab.ovs(host, "ovs-ofctl", ["del-flows", "br-tun"])
        let rules = [
            "table=0,priority=1,in_port=\(patchInt) actions=resubmit(,2)", "table=0,priority=0 actions=drop",
            "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)",
            "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)",
            "table=4,priority=0 actions=drop", "table=10,priority=1 actions=output:\(patchInt)",
            "table=20,priority=0 actions=resubmit(,22)", "table=22,priority=0 actions=drop",
        ]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("br-tun-\(UUID().uuidString.prefix(6)).flows").path
        try rules.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try lab.ovs(host, "ovs-ofctl", ["add-flows", "br-tun", file])
    }

    static func ofport(_ lab: Lab, _ host: String, _ port: String) throws -> Int {
        guard let s = lab.switches[host], let n = try OVSClient(environment: s.environment).ofport(port) else { throw Lab.LabError("no ofport for \(port) on \(host)") }
        return n
    }

    /// A VM on br-int, on the network's local VLAN of its host (as Nova and the agent plug it).
    static func addVM(_ lab: Lab, _ host: String) throws {
        let ns = try lab.spaces.add("vm-\(host)")
        lab.vms[host] = ns
        let tap = "tap-\(host)"
        guard let hostNS = lab.hosts[host] else { throw Lab.LabError("no host \(host)") }
        try run(["ip", "link", "add", tap, "netns", hostNS, "type", "veth", "peer", "name", "eth0", "netns", ns])
        try run(["ip", "-n", hostNS, "link", "set", tap, "up"])
        try run(["ip", "-n", ns, "link", "set", "eth0", "address", mac(host), "mtu", "1400", "up"])
        try run(["ip", "-n", ns, "addr", "add", "\(ip(host))/24", "dev", "eth0"])
        try run(["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"])
        try lab.ovs(host, "ovs-vsctl", ["--timeout=30", "add-port", "br-int", tap, "tag=\(vlans[host] ?? 1)"])
    }

    /// The agent's E-VPN attachment for a port on this host.
    static func evpnAttachment(_ host: String) -> String {
        let vlan = vlans[host] ?? 1
        return """
            {"vpn_type": "evpn", "vpn_instance_id": "evpn_net1", "instance_description": "E-VPN for network net1", "description": {"port": "port-\(host)"},
             "import_rt": ["64512:4242"], "export_rt": ["64512:4242"], "mac_address": "\(mac(host))", "ip_address": "\(ip(host))", "gateway_ip": "10.42.0.254",
             "local_port": {"linuxif": "patch2tun:\(vlan)", "vlan": \(vlan)}, "vni": \(vni)}
            """
    }

    /// Its detach: `local_port` reduced to the pseudo-port name.
    static func evpnDetachment(_ host: String) -> String {
        #"{"vpn_type": "evpn", "vpn_instance_id": "evpn_net1", "mac_address": "\#(mac(host))", "ip_address": "\#(ip(host))", "local_port": {"linuxif": "patch2tun:\#(vlans[host] ?? 1)"}}"#
    }

    /// The agent's IP VPN attachment: the pseudo-port, plugged on br-mpls through the patch from
    /// br-tun, with the local VLAN; the fallback to the router through the patch to br-int.
    static func ipvpnAttachment(_ lab: Lab, _ host: String, ip: String) throws -> String {
        let vlan = vlans[host] ?? 1
        return """
            {"vpn_type": "ipvpn", "vpn_instance_id": "ipvpn_net1", "description": {"port": "port-\(host)"}, "import_rt": ["64512:100"], "export_rt": ["64512:100"],
             "mac_address": "\(mac(host))", "ip_address": "\(ip)", "gateway_ip": "10.50.0.1", "advertise_subnet": false,
             "local_port": {"linuxif": "patch2tun:\(vlan)", "ovs": {"plugged": true, "port_number": \(try ofport(lab, host, "patch-mpls-to-tun")), "vlan": \(vlan)}},
             "fallback": {"src_mac": "00:00:5e:2a:10:00", "dst_mac": "fa:16:3e:aa:bb:cc", "ovs_port_number": \(try ofport(lab, host, "patch-mpls-to-int"))}}
            """
    }

    @Test func agentLayoutEVPNPingAndIPVPNRules() async throws {
        let lab = try Lab(openVSwitch: true)
        defer { lab.stop() }
        do {
            for (i, h) in ["a", "b"].enumerated() {
                try lab.addOVSHost(h, address: "192.0.2.\(i + 1)", bridges: ["br-int", "br-tun", "br-mpls"])
                try Self.agentLayout(lab, h)
                try Self.addVM(lab, h)
            }
            try lab.addHost("rr", address: "192.0.2.254")
            try lab.startReflector("rr", peers: ["a", "b"])
            for h in ["a", "b"] {
                try lab.startOVSHost(h, reflector: "rr", evpn: true)
                try await lab.waitEstablished(h)
            }

            // E-VPN: the agent's attachments; the VMs ping each other over VXLAN.
            for h in ["a", "b"] {
                let r = try lab.request(h, "/attach_localport", post: Self.evpnAttachment(h))
                #expect(r.status == 200, "\(r.body)")
            }
            let tunnelOnA = try await poll(timeout: 20) { (try? Self.ofport(lab, "a", "vxlan-c0000202")).map(String.init) ?? "" } until: { !$0.isEmpty }
            let remoteMAC = try await poll(timeout: 20) { try lab.flows("a", "br-tun", "table=20").joined(separator: "\n") } until: { $0.contains("dl_dst=\(Self.mac("b"))") }
            try await lab.pingUntil(from: "a", Self.ip("b"), timeout: 30)
            try await lab.pingUntil(from: "b", Self.ip("a"))

            // The rules the agent expects on A's br-tun (VNI 4242 = 0x1092, local VLAN 7).
            let table4 = try lab.flows("a", "br-tun", "table=4")
            #expect(table4.contains { $0.contains("tun_id=0x1092") && $0.contains(Self.setVLAN(7)) } && table4.contains { $0.contains("resubmit(,10)") }, "\(table4)")
            let unicast = remoteMAC.split(separator: "\n").first { $0.contains("dl_dst=\(Self.mac("b"))") }.map(String.init) ?? ""
            #expect(unicast.contains("dl_vlan=7") && unicast.contains("0x1092->tun_id") && unicast.contains("output:\(tunnelOnA)"), "\(unicast)")
            #expect(try lab.flows("a", "br-tun", "table=21").contains { $0.contains("arp_tpa=\(Self.ip("b"))") && $0.contains("dl_vlan=7") })
            #expect(try lab.flows("a", "br-tun", "table=22").contains { $0.contains("dl_vlan=7") && $0.contains("group:7") })
            let flood = try lab.ovs("a", "ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", "br-tun"])
            #expect(flood.contains("group_id=7,type=all") && flood.contains("output:\(tunnelOnA)"), "\(flood)")
            #expect(try lab.flows("a", "br-tun", "table=0").contains { $0.contains("in_port=\(tunnelOnA)") && $0.contains("resubmit(,4)") })
            // B maps the same VNI to its own VLAN.
            #expect(try lab.flows("b", "br-tun", "table=4").contains { $0.contains("tun_id=0x1092") && $0.contains(Self.setVLAN(9)) })

            // IP VPN in the agent's layout: the pseudo-port on br-mpls, VLAN 7 on A and 9 on B.
            for (h, ip) in [("a", "10.50.0.5"), ("b", "10.50.0.6")] {
                let r = try lab.request(h, "/attach_localport", post: try Self.ipvpnAttachment(lab, h, ip: ip))
                #expect(r.status == 200, "\(r.body)")
            }
            let patch = try Self.ofport(lab, "a", "patch-mpls-to-tun"), toInt = try Self.ofport(lab, "a", "patch-mpls-to-int")
            let input = try lab.flows("a", "br-mpls", "table=0").filter { $0.contains("in_port=\(patch)") }
            #expect(input.count == 2 && input.allSatisfy { $0.contains("dl_vlan=7") && $0.contains("pop_vlan") && $0.contains("->reg0") && $0.contains("resubmit(,2)") }, "\(input)")
            let delivery = try lab.flows("a", "br-mpls", "table=1")
            #expect(delivery.contains { $0.contains("mpls_bos=1") && $0.contains("pop_mpls:0x0800") && $0.contains("push_vlan:0x8100") && $0.contains(Self.setVLAN(7)) && $0.contains("output:\(patch)") }, "\(delivery)")
            let vrf = try await poll(timeout: 20) { try lab.flows("a", "br-mpls", "table=2").joined(separator: "\n") } until: { $0.contains("nw_dst=10.50.0.6") }
            #expect(vrf.contains("priority=36608") && vrf.contains("fa:16:3e:aa:bb:cc->eth_dst") && vrf.contains("output:\(toInt)"), "the fallback, below every prefix:\n\(vrf)")
            let detach = try lab.request("a", "/detach_localport", post: #"{"vpn_type": "ipvpn", "vpn_instance_id": "ipvpn_net1", "mac_address": "\#(Self.mac("a"))", "ip_address": "10.50.0.5", "local_port": {"linuxif": "patch2tun:7"}}"#)
            #expect(detach.status == 200, "\(detach.body)")
            #expect(try lab.flows("a", "br-mpls").allSatisfy { !$0.contains("cookie=0x6261677000000002") }, "the VRF's rules went")

            // Detaching B's port stops the E-VPN traffic: A forgets B's MAC.
            let r = try lab.request("b", "/detach_localport", post: Self.evpnDetachment("b"))
            #expect(r.status == 200, "\(r.body)")
            _ = try await poll(timeout: 20) { try lab.flows("a", "br-tun", "table=20").joined(separator: "\n") } until: { !$0.contains(Self.mac("b")) }
            #expect(!lab.ping(from: "a", Self.ip("b"), wait: 2))
            #expect(try lab.flows("b", "br-tun").allSatisfy { !$0.contains("cookie=0x62616765") || $0.contains("cookie=0x6261676500000000") }, "B's instance rules went")

            // A crashes with its E-VPN port attached; bagpipe-bgp-cleanup removes what it left
            // (our rules and groups), and the agent's rules stay.
            let daemon = try #require(lab.daemons["a"])
            #expect(try lab.flows("a", "br-tun").contains { $0.contains("cookie=0x6261676500000001") })
            kill(daemon.process.processIdentifier, SIGKILL)
            daemon.process.waitUntilExit()
            let cleanup = try run(try lab.hostCommand("a", [builtProduct("bagpipe-bgp-cleanup"), "--config-file", daemon.directory.appendingPathComponent("bgp.conf").path]))
            #expect(cleanup.contains("evpn: ovs driver state removed") && cleanup.contains("ipvpn: ovs driver state removed"), "\(cleanup)")
            let left = try lab.flows("a", "br-tun") + lab.flows("a", "br-mpls")
            #expect(left.allSatisfy { !$0.contains("cookie=0x626167") }, "\(left)")
            #expect(try lab.ovs("a", "ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", "br-tun"]).contains("group_id") == false)
            #expect(try lab.flows("a", "br-tun", "table=10").count == 1, "the agent's rules stay")
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }
}
