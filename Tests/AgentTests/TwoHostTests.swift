import BagpipeLab
import ControllerLab
import Foundation
import Testing

/// Issue 14, acceptance 2 and 3: two compute nodes in namespaces, each with bagpipe-bgp and
/// bagpipe-agent, a controller and our route reflector; everything created through the controller's
/// API, real packets between VM namespaces.
@Suite(.serialized, .timeLimit(.minutes(10))) struct TwoHostTests {
    @Test(arguments: ComputeLab.Dataplane.allCases) func networksAndABGPVPNBetweenThem(on dataplane: ComputeLab.Dataplane) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], dataplane: dataplane)
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
            try await c.lab.pingUntil(from: "v1", vm2.ip, timeout: 30)
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
            try await c.lab.pingUntil(from: "v1", vm3.ip, timeout: 30)
            try await c.lab.pingUntil(from: "v3", vm1.ip)
            // And on one host: v2 and v3 are both on compute-2, in the two networks.
            step = "IP VPN ping on one host"
            try await c.lab.pingUntil(from: "v2", vm3.ip, timeout: 30)
            try await c.lab.pingUntil(from: "v3", vm2.ip)
            if dataplane == .ovs {
                // §4.6: the gateway answered on br-tun and its MAC sent to br-mpls.
                let responder = try c.lab.flows("compute-1", "br-tun", "table=21").filter { $0.contains("arp_tpa=10.50.0.1") }
                #expect(responder.count == 1 && responder[0].contains("00:00:5e:00:43:64") && responder[0].contains("IN_PORT"), "\(responder)")
                let redirect = try c.lab.flows("compute-1", "br-tun", "table=2").filter { $0.contains("dl_dst=00:00:5e:00:43:64") }
                #expect(redirect.count == 1 && redirect[0].contains("output:"), "\(redirect)")
            }
            if dataplane == .ovs, let ovs = c.lab.switches["compute-1"] {
                // ovs-vswitchd of compute-1 crashes and starts again with no rules: the agent lays
                // its bridges out again, bagpipe-bgp its own rules; both pings come back.
                step = "ovs-vswitchd restart"
                ovs.stopSwitch()
                try ovs.startSwitch()
                try await c.lab.pingUntil(from: "v1", vm3.ip, timeout: 40)
                try await c.lab.pingUntil(from: "v1", vm2.ip, timeout: 20)
                #expect(c.lab.daemons["agent-compute-1"]?.log.contains("laid out again") == true)
            }
            step = "associations deleted"

            // The associations deleted: the networks are apart again, each network's E-VPN goes on.
            for a in associations { try await c.delete("/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations/\(a)") }
            _ = try await poll(timeout: 20) { c.lab.ping(from: "v1", vm3.ip) ? "answered" : "silent" } until: { $0 == "silent" }
            #expect(c.lab.ping(from: "v1", vm2.ip), "the E-VPN still forwards")
            if dataplane == .ovs {
                _ = try await poll(timeout: 20) { try c.lab.flows("compute-1", "br-tun").joined(separator: "\n") } until: { !$0.contains("00:00:5e:00:43:64") }
            }
        } catch {
            Issue.record("\(step): \(error)\n\(c.diagnostics())")
        }
    }

    @Test func restartsOfBagpipeBGPTheAgentAndTheController() async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"])
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            let net = try await c.network(vni: 1600, cidr: "10.60.0.0/24")
            let instance = "evpn_\(net)"
            let vm1 = try await c.bootVM("r1", network: net, host: "compute-1", gateway: "10.60.0.1")
            let vm2 = try await c.bootVM("r2", network: net, host: "compute-2", gateway: "10.60.0.1")
            try await c.lab.pingUntil(from: "r1", vm2.ip)

            // bagpipe-bgp on compute-2 killed and started again: a new number, the agent replays.
            step = "bagpipe-bgp restart"
            c.lab.daemons["compute-2"]?.kill()
            #expect(!c.lab.ping(from: "r1", vm2.ip), "compute-2's dataplane went with its bagpipe-bgp")
            try c.lab.startHost("compute-2", reflector: "rr")
            try await c.lab.waitEstablished("compute-2")
            try await c.lab.pingUntil(from: "r1", vm2.ip, timeout: 30)
            #expect(c.lab.daemons["agent-compute-2"]?.log.contains("sending every attachment again") == true)

            // The agent on compute-1 killed; a port of compute-1 deleted meanwhile; the agent back:
            // that port's endpoint is detached, the one that stays is not.
            step = "agent restart"
            let vm3 = try await c.bootVM("r3", network: net, host: "compute-1", gateway: "10.60.0.1")
            _ = try await poll(timeout: 20) { try c.endpointMACs("compute-1", instance: instance).sorted().joined(separator: " ") } until: { $0.contains(vm3.mac) }
            c.lab.daemons["agent-compute-1"]?.kill()
            try await c.delete("/v2.0/ports/\(vm3.id)")
            try c.startAgent("compute-1")
            _ = try await poll(timeout: 20) { try c.endpointMACs("compute-1", instance: instance).sorted().joined(separator: " ") } until: { !$0.contains(vm3.mac) }
            #expect(try c.endpointMACs("compute-1", instance: instance).contains(vm1.mac))
            #expect(c.lab.ping(from: "r1", vm2.ip))
            let agentLog = c.lab.daemons["agent-compute-1"]?.log ?? ""
            #expect(!agentLog.contains("detached\" attachment=evpn \(instance) port \(vm1.id)") && !agentLog.contains("port=\(vm1.id) [AgentService] port unplugged"), "\(agentLog)")

            // The controller away for 30 s: forwarding goes on; back, the agents catch up.
            step = "controller away"
            c.stopController()
            let away = ContinuousClock.now
            var answered = 0, sent = 0
            while ContinuousClock.now - away < .seconds(30) {
                sent += 1
                if c.lab.ping(from: "r1", vm2.ip) { answered += 1 }
                try await Task.sleep(for: .seconds(2))
            }
            #expect(answered == sent, "\(answered) of \(sent) pings answered while the controller was away")
            try await c.restartController()
            let vm4 = try await c.bootVM("r4", network: net, host: "compute-2", gateway: "10.60.0.1")
            try await c.lab.pingUntil(from: "r1", vm4.ip, timeout: 30)
        } catch {
            Issue.record("\(step): \(error)\n\(c.diagnostics())")
        }
    }
}

extension ComputeLab.Dataplane: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}
