import BagpipeLab
import Foundation
import Testing

/// Issue 14, acceptance 2 and 3: two compute nodes in namespaces, each with bagpipe-bgp and
/// bagpipe-agent, a controller and our route reflector; everything created through the controller's
/// API, real packets between VM namespaces.
@Suite(.serialized, .timeLimit(.minutes(10))) struct TwoHostTests {
    @Test func linuxNetworksAndABGPVPNBetweenThem() async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"])
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            // One network with a VM on each host: the VMs ping over the network's E-VPN.
            let net1 = try await c.network(vni: 1500, cidr: "10.50.0.0/24")
            let vm1 = try await c.bootVM("v1", network: net1, host: "compute-1", gateway: "10.50.0.1")
            let vm2 = try await c.bootVM("v2", network: net1, host: "compute-2", gateway: "10.50.0.1")
            #expect(try await eventually(timeout: 20) {
                let s1 = try await c.portStatus(vm1.id), s2 = try await c.portStatus(vm2.id)
                return s1 == "ACTIVE" && s2 == "ACTIVE"
            })
            step = "E-VPN ping"
            try await c.lab.pingUntil(from: "v1", vm2.ip)
            try await c.lab.pingUntil(from: "v2", vm1.ip)

            // A second network with a VM on compute-2, and a BGPVPN associated to both networks: the
            // VMs of the two networks ping through the IP VPN.
            let net2 = try await c.network(vni: 1501, cidr: "10.51.0.0/24")
            let vm3 = try await c.bootVM("v3", network: net2, host: "compute-2", gateway: "10.51.0.1")
            #expect(!c.lab.ping(from: "v1", vm3.ip), "no BGPVPN yet: the networks are apart")
            let vpn = try await c.create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"name": "both", "route_targets": ["64512:77"]}}"#, "bgpvpn")["id"]?.stringValue ?? ""
            var associations: [String] = []
            for net in [net1, net2] {
                let a = try await c.create("/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations", #"{"network_association": {"network_id": "\#(net)"}}"#, "network_association")
                associations.append(a["id"]?.stringValue ?? "")
            }
            step = "IP VPN ping"
            try await c.lab.pingUntil(from: "v1", vm3.ip)
            try await c.lab.pingUntil(from: "v3", vm1.ip)
            step = "associations deleted"

            // The associations deleted: the networks are apart again, each network's E-VPN goes on.
            for a in associations { try await c.delete("/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations/\(a)") }
            _ = try await poll(timeout: 20) { c.lab.ping(from: "v1", vm3.ip) ? "answered" : "silent" } until: { $0 == "silent" }
            #expect(c.lab.ping(from: "v1", vm2.ip), "the E-VPN still forwards")
        } catch {
            Issue.record("\(step): \(error)\n\(c.diagnostics())")
        }
    }
}
