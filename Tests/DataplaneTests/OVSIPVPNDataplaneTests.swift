import BagpipeLab
import Foundation
import Testing

/// Issue 7, acceptance 1 and 4: the IP VPN `ovs` driver on real Open vSwitch (userspace datapath,
/// one per host namespace), VMs attached through the REST API, real pings: over MPLS-over-GRE
/// (Ethernet-in-GRE and MPLS-in-GRE), bare MPLS and VXLAN; two VRFs isolated; ECMP over both
/// buckets of a select group; an ovs-vswitchd crash repaired without restarting bagpipe-bgp.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct OVSIPVPNDataplaneTests {
    enum Encapsulation: String, CaseIterable, CustomTestStringConvertible {
        case ethernetInGRE, mplsInGRE, bareMPLS, vxlan
        var testDescription: String { rawValue }
        var options: [String] {
            switch self {
            case .ethernetInGRE: []
            case .mplsInGRE: ["gre_tunnel_options = packet_type=legacy_l3"]
            case .bareMPLS: ["mpls_interface = eth0", "mpls_over_gre = False"]
            case .vxlan: ["vxlan_encap = True"]
            }
        }
    }

    /// Two hosts, a VM on each in one VRF (two subnets): they ping each other through the encapsulation.
    @Test(arguments: Encapsulation.allCases)
    func pingAcrossHosts(_ encapsulation: Encapsulation) async throws {
        let lab = try Lab(openVSwitch: true)
        defer { lab.stop() }
        do {
            try lab.startOVSHosts(["a", "b"], bareMPLS: encapsulation == .bareMPLS, ipvpn: encapsulation.options)
            for h in ["a", "b"] { try await lab.waitEstablished(h) }
            try lab.attachVM("a1", host: "a", ip: "10.20.1.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            try lab.attachVM("b1", host: "b", ip: "10.20.2.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            try await lab.pingUntil(from: "a1", "10.20.2.1", timeout: 30)
            try await lab.pingUntil(from: "b1", "10.20.1.1")
            // The rule of the remote prefix sends to a group whose bucket has the encapsulation.
            let groups = try lab.ovs("a", "ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", "br-mpls"])
            switch encapsulation {
            case .vxlan:
                #expect(groups.contains("->tun_id") && groups.contains("192.0.2.2->tun_dst") && !groups.contains("push_mpls"), "\(groups)")
            case .bareMPLS:
                #expect(groups.contains("push_mpls:0x8847") && !groups.contains("tun_dst"), "\(groups)")
            case .ethernetInGRE, .mplsInGRE:
                #expect(groups.contains("push_mpls:0x8847") && groups.contains("192.0.2.2->tun_dst"), "\(groups)")
            }
            let interfaces = try lab.ovs("a", "ovs-vsctl", ["--columns=name,type,options", "list", "Interface"])
            if encapsulation == .mplsInGRE { #expect(interfaces.contains("packet_type=legacy_l3"), "\(interfaces)") }
            // Detach: the VRF's rules go, and the ping with them.
            try lab.detachVM("b1", host: "b", ip: "10.20.2.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            _ = try await poll(timeout: 20) { try lab.flows("a", "br-mpls", "table=2").joined(separator: "\n") } until: { !$0.contains("10.20.2.1") }
            #expect(!lab.ping(from: "a1", "10.20.2.1"))
            #expect(try lab.flows("b", "br-mpls").allSatisfy { !$0.contains("cookie=0x6261677000000001") }, "every rule of B's VRF went")
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }

    /// Over MPLS-over-GRE: two VRFs isolated; ECMP to an address attached on two hosts; then
    /// ovs-vswitchd of A crashes and starts again: bagpipe-bgp notices and installs its rules again.
    @Test func isolationECMPAndSwitchRestart() async throws {
        let lab = try Lab(openVSwitch: true)
        defer { lab.stop() }
        do {
            try lab.startOVSHosts(["a", "b", "c"])
            for h in ["a", "b", "c"] { try await lab.waitEstablished(h) }
            try lab.attachVM("a1", host: "a", ip: "10.20.1.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20", extra: ["--advertise-subnet"])
            try lab.attachVM("b1", host: "b", ip: "10.20.2.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            try await lab.pingUntil(from: "a1", "10.20.2.1", timeout: 30)

            // Red has the same subnets on other route targets: no path between the colours.
            try lab.attachVM("a2", host: "a", ip: "10.20.1.5/24", type: "ipvpn", instance: "vrf-red", rt: "64512:30")
            try lab.attachVM("b2", host: "b", ip: "10.20.2.5/24", type: "ipvpn", instance: "vrf-red", rt: "64512:30")
            try await lab.pingUntil(from: "a2", "10.20.2.5")
            #expect(!lab.ping(from: "a2", "10.20.2.1"), "red cannot reach green")
            #expect(!lab.ping(from: "b1", "10.20.1.5"), "green cannot reach red")

            // 10.20.9.9 on B and on C: A's group for it has two buckets. Flows from 16 source
            // addresses of a1 spread over both (the hash takes the addresses).
            try lab.attachVM("b9", host: "b", ip: "10.20.9.9/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            try lab.attachVM("c9", host: "c", ip: "10.20.9.9/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            let group = try await poll(timeout: 20) {
                try lab.ovs("a", "ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", "br-mpls"]).split(separator: "\n").first { $0.contains("192.0.2.3->tun_dst") }.map(String.init) ?? ""
            } until: { $0.contains("192.0.2.2->tun_dst") }
            #expect(group.contains("type=select") && group.components(separatedBy: "bucket=").count == 3, "\(group)")
            let sources = (2...17).map { "10.20.1.\($0)" }
            for s in sources { _ = try lab.exec("a1", ["ip", "addr", "add", "\(s)/32", "dev", "tovpn"]) }
            for s in sources { _ = try? lab.exec("a1", ["ping", "-c", "1", "-W", "1", "-I", s, "10.20.9.9"]) }
            let received = try ["b9", "c9"].map { vm in try Self.icmpReceived(lab, vm) }
            #expect(received.allSatisfy { $0 > 0 }, "both next hops got echo requests: \(received)")
            let stats = try lab.ovs("a", "ovs-ofctl", ["-O", "OpenFlow15", "dump-group-stats", "br-mpls"])
            let groupID = group.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("group_id=") } ?? "none"
            let line = stats.split(separator: "\n").first { $0.contains("\(groupID),") } ?? ""
            let buckets = line.components(separatedBy: "bucket").dropFirst().compactMap { $0.split(separator: "packet_count=").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) } }
            #expect(buckets.count == 2 && buckets.allSatisfy { $0 > 0 }, "both buckets used: \(line)\n\(stats)")

            // ovs-vswitchd of A crashes (every rule gone) and starts again.
            let pid = lab.daemons["a"]?.process.processIdentifier
            let before = try lab.flows("a", "br-mpls").filter { $0.contains("cookie=0x626167") }.count
            let ovs = try #require(lab.switches["a"])
            ovs.stopSwitch()
            try ovs.startSwitch()
            // (The switch does not answer at first.)
            let after = try await poll(timeout: 20) { ((try? lab.flows("a", "br-mpls")) ?? []).filter { $0.contains("cookie=0x626167") }.joined(separator: "\n") } until: {
                $0.split(separator: "\n").count >= before
            }
            #expect(after.split(separator: "\n").count == before, "the same rules again:\n\(after)")
            try await lab.pingUntil(from: "a1", "10.20.2.1", timeout: 30)
            try await lab.pingUntil(from: "a2", "10.20.2.5")
            #expect(lab.daemons["a"]?.process.isRunning == true && lab.daemons["a"]?.process.processIdentifier == pid, "bagpipe-bgp was not restarted")
            #expect(lab.daemons["a"]?.log.contains("had lost its rules") == true)
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }

    /// ICMP echo requests a VM's interface received (its receive counter of IP packets).
    static func icmpReceived(_ lab: Lab, _ vm: String) throws -> Int {
        let snmp = try lab.exec(vm, ["cat", "/proc/net/snmp"]).split(separator: "\n").filter { $0.hasPrefix("Icmp:") }
        guard snmp.count == 2 else { return 0 }
        let names = snmp[0].split(separator: " "), values = snmp[1].split(separator: " ")
        guard let i = names.firstIndex(of: "InEchos"), i < values.count else { return 0 }
        return Int(values[i]) ?? 0
    }
}
