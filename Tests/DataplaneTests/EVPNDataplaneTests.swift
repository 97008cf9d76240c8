import BagpipeLab
import Foundation
import Testing

/// Issue 6, acceptance 1: the E-VPN `linux` driver with real namespaces and real packets. Three
/// hosts and our route reflector; VMs in one E-VPN ping each other (ARP through the flood list, then
/// unicast); a third host joins and the flood lists follow; a detach removes the FDB entries and the
/// ping stops; a MAC that moves to another host is followed by traffic within a second.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EVPNDataplaneTests {
    static let rt = "64512:10"

    @Test func vmsAcrossHostsFloodListsDetachAndMACMobility() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        try lab.startHosts(["a", "b", "c"])
        do {
            for h in ["a", "b", "c"] { try await lab.waitEstablished(h) }
            try lab.attachVM("a1", host: "a", ip: "10.10.0.1/24", type: "evpn", instance: "net", rt: Self.rt, mac: "52:54:00:00:0a:01")
            try lab.attachVM("b1", host: "b", ip: "10.10.0.2/24", type: "evpn", instance: "net", rt: Self.rt, mac: "52:54:00:00:0b:01")

            // A's flood list holds B; A learns B's MAC from BGP; ARP and ping go through.
            _ = try await poll(timeout: 20) { try lab.fdb("a") } until: { $0.contains("00:00:00:00:00:00 dst 192.0.2.2") && $0.contains("52:54:00:00:0b:01 dst 192.0.2.2") }
            try await lab.pingUntil(from: "a1", "10.10.0.2")
            #expect(try lab.exec("a1", ["ip", "neigh", "show", "10.10.0.2"]).contains("52:54:00:00:0b:01"), "ARP resolved across hosts")
            // B's address is a neighbour entry of A's bridge, whose VXLAN port suppresses known ARP requests.
            #expect(try lab.exec("a", ["ip", "neigh", "show", "10.10.0.2"]).contains("lladdr 52:54:00:00:0b:01 PERMANENT"))
            #expect(try lab.exec("a", ["ip", "-d", "link", "show", "type", "vxlan"]).contains("neigh_suppress on"))

            // A third host joins: everyone's flood list gains it.
            try lab.attachVM("c1", host: "c", ip: "10.10.0.3/24", type: "evpn", instance: "net", rt: Self.rt, mac: "52:54:00:00:0c:01")
            _ = try await poll(timeout: 20) { try lab.fdb("a") } until: { $0.contains("00:00:00:00:00:00 dst 192.0.2.3") }
            _ = try await poll(timeout: 20) { try lab.fdb("b") } until: { $0.contains("00:00:00:00:00:00 dst 192.0.2.3") }
            try await lab.pingUntil(from: "a1", "10.10.0.3")
            try await lab.pingUntil(from: "c1", "10.10.0.2")
            // The looking glass shows the same.
            let dataplane = try lab.api("a", "/looking-glass/vpns/instances/net/dataplane")
            #expect(dataplane.contains("52:54:00:00:0b:01 dst 192.0.2.2") && dataplane.contains("192.0.2.3"), "\(dataplane)")

            // Detach on B: its MAC leaves A's FDB, and the ping stops.
            try lab.detachVM("b1", host: "b", ip: "10.10.0.2/24", type: "evpn", instance: "net", rt: Self.rt)
            _ = try await poll(timeout: 20) { try lab.fdb("a") } until: { !$0.contains("52:54:00:00:0b:01") }
            _ = try lab.exec("a1", ["ip", "neigh", "flush", "all"])
            #expect(!lab.ping(from: "a1", "10.10.0.2", wait: 1), "no path after the detach")

            // MAC mobility: a VM on B moves to C (same MAC and address). B's copy goes away, C attaches
            // it, B detaches later; traffic from A follows within a second of C's attach.
            try lab.attachVM("m", host: "b", ip: "10.10.0.9/24", type: "evpn", instance: "net", rt: Self.rt, mac: "52:54:00:00:0e:09")
            try await lab.pingUntil(from: "a1", "10.10.0.9")
            try run(["ip", "netns", "delete", try #require(lab.vms["m"])])
            lab.vms["m"] = nil
            try lab.attachVM("m", host: "c", ip: "10.10.0.9/24", type: "evpn", instance: "net", rt: Self.rt, mac: "52:54:00:00:0e:09")
            let moved = Date()
            _ = try await poll(timeout: 5) { try lab.fdb("a") } until: { $0.contains("52:54:00:00:0e:09 dst 192.0.2.3") }
            try await lab.pingUntil(from: "a1", "10.10.0.9", timeout: 5)
            let delay = Date().timeIntervalSince(moved)
            #expect(delay < 1.0, "traffic followed the move after \(delay) s")
            // B's stale attachment leaves: C keeps the MAC.
            try lab.detachVM("m", host: "b", ip: "10.10.0.9/24", type: "evpn", instance: "net", rt: Self.rt, mac: "52:54:00:00:0e:09")
            #expect(lab.ping(from: "a1", "10.10.0.9"))
            #expect(try lab.fdb("a").contains("52:54:00:00:0e:09 dst 192.0.2.3"))
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }
}
