import BGPWire
import BagpipeDataplane
import BagpipeLab
import BagpipeVPN
import Dataplane
import Foundation
import Testing

/// Behaviours 59-61 of the original (its OVS driver tests), against a real Open vSwitch (userspace
/// datapath) in a namespace of the test's own: the rules and ports are read back from it.
@Suite(.serialized, .timeLimit(.minutes(3))) struct OVSDriverBehaviourTests {
    static let local = IPv4Address(192, 0, 2, 1), pe2 = IPv4Address(192, 0, 2, 2)

    final class Switch {
        let spaces = TestNamespaces()
        let ovs: OpenVSwitch
        init(bridges: [String]) throws {
            let ns = try spaces.add("ovsb")
            ovs = try OpenVSwitch(namespace: ns)
            for b in bridges { try ovs.addBridge(b) }
        }
        func stop() {
            ovs.stop()
            spaces.remove()
        }
        var client: OVSClient { OVSClient(environment: ovs.environment) }
        func ports(_ bridge: String) throws -> [String] { try ovs.ovs("ovs-vsctl", ["list-ports", bridge]).split(separator: "\n").map(String.init) }
    }

    static func port(vlan: Int) -> LocalPort { LocalPort(linuxif: "patch2tun:\(vlan)", raw: .object([("linuxif", .string("patch2tun:\(vlan)")), ("vlan", JSONValue(vlan))])) }
    static func mac(_ n: UInt64) -> MACAddress { MACAddress(0x5254_0000_0000 + n) }
    static func remote(_ n: UInt64, pe: IPv4Address, vni: UInt32 = 5001, ip: IPAddress? = nil) -> RemoteEndpoint {
        RemoteEndpoint(destination: .mac(mac(n), ip: ip), remotePE: pe, label: vni, encapsulations: [.vxlan], loadBalancingOrder: 0)
    }

    @Test func behaviour59TunnelPortsSharedPerRemoteAddressAndDeletedWithTheLastUser() throws {
        let s = try Switch(bridges: ["br-tun"])
        defer { s.stop() }
        let driver = try OVSEVPNDriver(localAddress: Self.local, options: [:], ovs: s.client)
        let a = try driver.makeInstance(id: 1, externalID: "net-a", label: 5001, options: InstanceOptions())
        let b = try driver.makeInstance(id: 2, externalID: "net-b", label: 5002, options: InstanceOptions())
        try a.plug(Endpoint(mac: Self.mac(100), ip: nil, port: Self.port(vlan: 11), label: 5001, direction: .both))
        try b.plug(Endpoint(mac: Self.mac(200), ip: nil, port: Self.port(vlan: 12), label: 5002, direction: .both))
        try a.setUp(Self.remote(1, pe: Self.pe2, vni: 5001))
        driver.flush()  // the route path queues; the daemon flushes after each burst
        try b.setUp(Self.remote(2, pe: Self.pe2, vni: 5002))
        driver.flush()
        let name = OVSEVPNDriver.tunnelPortName(Self.pe2)
        #expect(name == "vxlan-c0000202")
        #expect(try s.ports("br-tun") == [name], "one port for both instances")
        try a.remove(Self.remote(1, pe: Self.pe2, vni: 5001))
        driver.flush()
        #expect(try s.ports("br-tun") == [name], "still used by the other instance")
        try b.remove(Self.remote(2, pe: Self.pe2, vni: 5002))
        driver.flush()
        #expect(try s.ports("br-tun").isEmpty, "deleted with its last user")
    }

    @Test func behaviour60EVPNRulesTunnelsAndFlooding() throws {
        let s = try Switch(bridges: ["br-tun"])
        defer { s.stop() }
        let driver = try OVSEVPNDriver(localAddress: Self.local, options: [:], ovs: s.client)
        let evi = try driver.makeInstance(id: 3, externalID: "net", label: 5001, options: InstanceOptions())
        // A plug installs the VNI → local VLAN rule of table 4.
        try evi.plug(Endpoint(mac: Self.mac(100), ip: nil, port: Self.port(vlan: 7), label: 5001, direction: .both))
        #expect(try s.ovs.flows("br-tun", "table=4").contains { $0.contains("tun_id=0x1389") && $0.contains("actions=push_vlan:0x8100,set_field:4103->vlan_vid,resubmit(,10)") || $0.contains("mod_vlan_vid:7") })
        // A MAC of this host: no tunnel, back into table 4.
        try evi.setUp(Self.remote(1, pe: Self.local))
        driver.flush()
        #expect(try s.ports("br-tun").isEmpty)
        let localRule = try s.ovs.flows("br-tun", "table=20").first { $0.contains("dl_dst=52:54:00:00:00:01") }
        #expect(localRule?.contains("dl_vlan=7") == true && localRule?.contains("resubmit(,4)") == true, "\(localRule ?? "none")")
        // A remote MAC (with its IP): a tunnel port, a table-20 rule on (VLAN, MAC), an ARP responder entry.
        try evi.setUp(Self.remote(2, pe: Self.pe2, ip: .v4(IPv4Address(10, 0, 0, 2))))
        driver.flush()
        #expect(driver.tunnelUsers(of: Self.pe2) == [OVSEVPNDriver.TunnelUser(instance: 3, vni: 5001, mac: Self.mac(2))], "keyed (instance, (vni, mac))")
        let tunnel = try #require(try s.client.ofport("vxlan-c0000202"))
        let remoteRule = try s.ovs.flows("br-tun", "table=20").first { $0.contains("dl_dst=52:54:00:00:00:02") }
        #expect(remoteRule?.contains("dl_vlan=7") == true && remoteRule?.contains("output:\(tunnel)") == true, "\(remoteRule ?? "none")")
        #expect(try s.ovs.flows("br-tun", "table=21").contains { $0.contains("arp_tpa=10.0.0.2") && $0.contains("dl_vlan=7") })
        #expect(try s.ovs.flows("br-tun", "table=0").contains { $0.contains("in_port=\(tunnel)") && $0.contains("resubmit(,4)") })
        // A MAC (with its IP) moving to another VTEP: the new route comes before the old one goes;
        // the rule follows it and its ARP responder entry stays.
        let pe3 = IPv4Address(192, 0, 2, 3), ip5 = IPAddress.v4(IPv4Address(10, 0, 0, 5))
        try evi.setUp(Self.remote(5, pe: Self.pe2, ip: ip5))
        try evi.setUp(Self.remote(5, pe: pe3, ip: ip5))
        try evi.remove(Self.remote(5, pe: Self.pe2, ip: ip5))
        driver.flush()
        let moved = try #require(try s.client.ofport("vxlan-c0000203"))
        #expect(try s.ovs.flows("br-tun", "table=20").contains { $0.contains("dl_dst=52:54:00:00:00:05") && $0.contains("output:\(moved)") })
        #expect(try s.ovs.flows("br-tun", "table=21").contains { $0.contains("arp_tpa=10.0.0.5") }, "the moved MAC still has its ARP entry")
        try evi.remove(Self.remote(5, pe: pe3, ip: ip5))
        driver.flush()
        #expect(try s.ovs.flows("br-tun", "table=21").allSatisfy { !$0.contains("arp_tpa=10.0.0.5") })
        #expect(try !s.ports("br-tun").contains("vxlan-c0000203"))
        // Flooding: keyed (vni, flood), a group with a bucket per member, table 22 to the group.
        try evi.addFlood(FloodEndpoint(remotePE: Self.pe2, vni: 5001, encapsulations: [.vxlan]))
        driver.flush()
        try evi.addFlood(FloodEndpoint(remotePE: Self.local, vni: 5001, encapsulations: [.vxlan]))
        driver.flush()
        #expect(driver.tunnelUsers(of: Self.pe2).contains(OVSEVPNDriver.TunnelUser(instance: 3, vni: 5001, mac: nil)))
        let group = try #require(try s.ovs.ovs("ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", "br-tun"]).split(separator: "\n").first { $0.contains("group_id=7") })
        #expect(group.contains("type=all") && group.components(separatedBy: "bucket=").count == 3 && group.contains("output:\(tunnel)") && group.contains("resubmit(,4)"), "\(group)")
        #expect(try s.ovs.flows("br-tun", "table=22").contains { $0.contains("dl_vlan=7") && $0.contains("group:7") })
        // Removals free the tunnel only for remote VTEPs, and only with its last user.
        try evi.remove(Self.remote(1, pe: Self.local))
        driver.flush()
        try evi.remove(Self.remote(2, pe: Self.pe2, ip: .v4(IPv4Address(10, 0, 0, 2))))
        driver.flush()
        #expect(try s.ports("br-tun") == ["vxlan-c0000202"], "the flood list still uses it")
        #expect(try s.ovs.flows("br-tun", "table=20").isEmpty && s.ovs.flows("br-tun", "table=21").isEmpty)
        try evi.removeFlood(FloodEndpoint(remotePE: Self.pe2, vni: 5001, encapsulations: [.vxlan]))
        driver.flush()
        #expect(try s.ports("br-tun").isEmpty)
        evi.cleanup()
        #expect(try s.ovs.flows("br-tun").allSatisfy { !$0.contains("cookie=0x62616765") }, "every rule of the instance went")
    }

    @Test func behaviour61LongerPrefixesGetHigherPrioritiesAndTheFallbackIsBelowTheDefault() throws {
        let s = try Switch(bridges: ["br-mpls"])
        defer { s.stop() }
        let driver = try OVSIPVPNDriver(localAddress: Self.local, options: [:], ovs: s.client)
        try driver.initialize()
        let vrf = try driver.makeInstance(id: 4, externalID: "vrf", label: 300, options: InstanceOptions(gateway: IPv4Address(10, 0, 0, 1), prefixLength: 24))
        for p in ["0.0.0.0/0", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32"] {
            try vrf.setUp(RemoteEndpoint(destination: .prefix(IPPrefix(p)!), remotePE: Self.pe2, label: 100, encapsulations: [.gre], loadBalancingOrder: 0))
        }
        driver.flush()
        vrf.updateFallback(Fallback(sourceMAC: try #require(MACAddress("00:00:5e:2a:10:00")), destinationMAC: try #require(MACAddress("fa:16:3e:aa:bb:cc")), ovsPortNumber: 3))
        func priority(_ rule: String) -> Int? { rule.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("priority=") }.flatMap { Int($0.dropFirst(9)) } }
        let rules = try s.ovs.flows("br-mpls", "table=2")
        let byPrefix = ["0.0.0.0/0": rules.first { $0.contains("reg0=0x4") && $0.contains("group:") && !$0.contains("nw_dst") }] .merging(
            ["10.1.0.0/16", "10.1.2.0/24", "10.1.2.3"].map { p in (p, rules.first { $0.contains("nw_dst=\(p)") }) }) { a, _ in a }
        let p0 = try #require(byPrefix["0.0.0.0/0"].flatMap { $0.flatMap(priority) }, "\(rules)"), p16 = try #require(byPrefix["10.1.0.0/16"].flatMap { $0.flatMap(priority) })
        let p24 = try #require(byPrefix["10.1.2.0/24"].flatMap { $0.flatMap(priority) }), p32 = try #require(byPrefix["10.1.2.3"].flatMap { $0.flatMap(priority) })
        #expect(p0 < p16 && p16 < p24 && p24 < p32, "\(rules)")
        let fallback = try #require(rules.first { $0.contains("fa:16:3e:aa:bb:cc->eth_dst") }.flatMap(priority))
        #expect(fallback < p0 && fallback == OVSIPVPNDriver.fallbackPriority)
        vrf.cleanup()
        #expect(try s.ovs.flows("br-mpls", "table=2").isEmpty)
    }

    /// The batch of one burst: a group's changes merge into its last content, added before the
    /// rules that use it, deleted after them when that is where it ends.
    @Test func queuedGroupChangesMergeAroundTheRules() {
        let p = OVSClient.phases([
            .addGroup("group_id=1,type=select,bucket=actions=drop"), .addFlow("table=2,ip actions=group:1"),
            .modifyGroup("group_id=1,type=select,bucket=actions=output:1"),
            .modifyGroup("group_id=2,type=all,bucket=actions=output:2"), .deleteGroup(3),
            .addGroup("group_id=4,type=all,bucket=actions=drop"), .deleteGroup(4),
            .deleteGroup(5), .addGroup("group_id=5,type=all,bucket=actions=output:5"),
        ])
        #expect(p.groupsFirst == [
            "add_or_mod group_id=1,type=select,bucket=actions=output:1", "modify group_id=2,type=all,bucket=actions=output:2",
            "add_or_mod group_id=4,type=all,bucket=actions=drop", "modify group_id=5,type=all,bucket=actions=output:5",
        ])
        #expect(p.flows == ["add table=2,ip actions=group:1"])
        #expect(p.groupsLast == ["delete group_id=3", "delete group_id=4"])
    }

    /// A bundle refused for one bad line is applied again line by line: the others hold.
    @Test func oneBadRuleDoesNotLoseTheBurst() throws {
        let s = try Switch(bridges: ["br-mpls"])
        defer { s.stop() }
        let client = s.client
        client.queue((1...50).map { .addFlow("table=7,priority=10,ip,nw_dst=10.0.0.\($0) actions=drop") } + [.addFlow("table=7,priority=10,ip actions=group:999")], bridge: "br-mpls")
        #expect(throws: OVSClient.Failure.self) { try client.flush() }
        #expect(try s.ovs.flows("br-mpls", "table=7").count == 50)
        #expect(!client.hasQueuedChanges)
    }

    /// The IP VPN driver's options and directions (reference §9.6), read back from the switch:
    /// `to-port` gets only the delivery rule, `from-port` only the input rules; `proxy_arp` answers
    /// for any address; `hash_method = hash` with `hash_fields` in the select group.
    @Test func ipvpnDirectionsProxyARPAndHashFields() throws {
        let s = try Switch(bridges: ["br-mpls"])
        defer { s.stop() }
        try s.ovs.ovs("ovs-vsctl", ["add-port", "br-mpls", "p-to", "--", "set", "Interface", "p-to", "type=internal",
            "--", "add-port", "br-mpls", "p-from", "--", "set", "Interface", "p-from", "type=internal"])
        let options = ["arp_responder": "True", "proxy_arp": "True", "hash_method": "hash", "hash_fields": "ip_src,ip_dst,tcp_src,tcp_dst", "hash_method_param": "7"]
        let driver = try OVSIPVPNDriver(localAddress: Self.local, options: options, ovs: s.client)
        try driver.initialize()
        let vrf = try driver.makeInstance(id: 5, externalID: "vrf", label: 300, options: InstanceOptions(gateway: IPv4Address(10, 0, 0, 1), prefixLength: 24))
        func port(_ name: String) -> LocalPort { LocalPort(linuxif: name, raw: .object([("linuxif", .string(name)), ("ovs", .object([("plugged", .bool(true)), ("port_name", .string(name))]))])) }
        let toNumber = try #require(try s.client.ofport("p-to")), fromNumber = try #require(try s.client.ofport("p-from"))
        try vrf.plug(Endpoint(mac: Self.mac(1), ip: .v4(IPv4Address(10, 0, 0, 2)), port: port("p-to"), label: 301, direction: .toPort))
        try vrf.plug(Endpoint(mac: Self.mac(2), ip: .v4(IPv4Address(10, 0, 0, 3)), port: port("p-from"), label: 302, direction: .fromPort))
        let input = try s.ovs.flows("br-mpls", "table=0").filter { $0.contains("cookie=0x6261677000000005") }
        #expect(input.count == 2 && input.allSatisfy { $0.contains("in_port=\(fromNumber)") }, "input rules for the from-port port only: \(input)")
        let delivery = try s.ovs.flows("br-mpls", "table=1")
        #expect(delivery.count == 1 && delivery.first?.contains("mpls_label=301") == true && delivery.first?.contains("output:\(toNumber)") == true, "delivery for the to-port endpoint only: \(delivery)")
        let arp = try s.ovs.flows("br-mpls", "table=2").filter { $0.contains("arp") }
        #expect(arp.count == 1 && !(arp.first ?? "").contains("arp_tpa"), "proxy ARP answers for any address: \(arp)")
        try vrf.setUp(RemoteEndpoint(destination: .prefix(IPPrefix("10.9.0.0/16")!), remotePE: Self.pe2, label: 100, encapsulations: [.gre], loadBalancingOrder: 3))
        driver.flush()
        let group = try s.ovs.ovs("ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", "br-mpls"])
        #expect(group.contains("selection_method=hash") && group.contains("fields(") && group.contains("tcp_src") && group.contains("selection_method_param=7") && group.contains("bucket_id:3"), "\(group)")
        vrf.cleanup()
        #expect(try s.ovs.flows("br-mpls").allSatisfy { !$0.contains("cookie=0x6261677000000005") })
    }
}
