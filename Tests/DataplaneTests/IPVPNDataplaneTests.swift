import BagpipeLab
import Foundation
import Testing

/// Issue 6, acceptance 2: the IP VPN `linux` driver (over VXLAN) with real namespaces and packets.
/// VMs in different subnets of one VRF ping each other through the gateway; two VRFs with other
/// route targets are isolated; re-advertisement through a third VRF gives reachability.
@Suite(.serialized, .timeLimit(.minutes(5))) struct IPVPNDataplaneTests {
    @Test func routedAcrossHostsIsolatedAndReadvertised() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        try lab.startHosts(["a", "b", "c"])
        do {
            for h in ["a", "b", "c"] { try await lab.waitEstablished(h) }
            // One VRF (route target 64512:20) on A and B, two subnets.
            try lab.attachVM("a2", host: "a", ip: "10.20.1.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            try lab.attachVM("b2", host: "b", ip: "10.20.2.1/24", type: "ipvpn", instance: "vrf-green", rt: "64512:20")
            try await lab.pingUntil(from: "a2", "10.20.2.1")
            try await lab.pingUntil(from: "b2", "10.20.1.1")
            #expect(try lab.exec("a2", ["ping", "-c", "1", "10.20.1.254"]).contains("1 received"), "the gateway answers on the port")
            let rules = try lab.exec("a", ["ip", "rule", "show"])
            #expect(rules.contains("iif ns-") && rules.contains("tun_id") && rules.contains("proto 19"), "\(rules)")
            let dataplane = try lab.api("a", "/looking-glass/vpns/instances/vrf-green/dataplane")
            #expect(dataplane.contains("10.20.2.1/32 encap ip id") && dataplane.contains("dst 192.0.2.2"), "\(dataplane)")

            // Another VRF (64512:30) with the same subnets: no path to or from the first.
            try lab.attachVM("a3", host: "a", ip: "10.20.1.5/24", type: "ipvpn", instance: "vrf-red", rt: "64512:30")
            try lab.attachVM("b3", host: "b", ip: "10.20.2.5/24", type: "ipvpn", instance: "vrf-red", rt: "64512:30")
            try await lab.pingUntil(from: "a3", "10.20.2.5")
            #expect(!lab.ping(from: "a3", "10.20.2.1"), "red cannot reach green")
            #expect(!lab.ping(from: "b2", "10.20.1.5"), "green cannot reach red")
            #expect(!(try lab.api("a", "/looking-glass/vpns/instances/vrf-red/dataplane")).contains("10.20.2.1/32"))

            // Re-advertisement: blue (64512:41) on B imports 64512:42 only; a VRF on C imports the
            // yellow routes (64512:40) and re-advertises them to 64512:42 through its own port. Blue
            // reaches yellow through C; yellow imports blue directly for the way back.
            try lab.attachVM("a4", host: "a", ip: "10.40.1.1/24", type: "ipvpn", instance: "vrf-yellow", rt: "64512:40", extra: ["--import-rt", "64512:41"])
            try lab.attachVM("b4", host: "b", ip: "10.41.1.1/24", type: "ipvpn", instance: "vrf-blue", rt: "64512:41", extra: ["--import-rt", "64512:42"])
            try lab.attachVM("c4", host: "c", ip: "10.42.1.1/24", type: "ipvpn", instance: "vrf-relay", rt: "64512:43", extra: ["--import-rt", "64512:40", "--readv-from-rt", "64512:40", "--readv-to-rt", "64512:42"])
            _ = try await poll(timeout: 20) { try lab.api("b", "/looking-glass/vpns/instances/vrf-blue/dataplane") } until: { $0.contains("10.40.1.1/32") && $0.contains("dst 192.0.2.3") }
            try await lab.pingUntil(from: "b4", "10.40.1.1")
            let path = try lab.exec("b", ["ip", "route", "show", "table", "all", "10.40.1.1"])
            #expect(path.contains("dst 192.0.2.3"), "blue's route to yellow goes through C: \(path)")
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }
}
