import BagpipeLab
import Foundation
import Testing

/// Issue 16, acceptance 1 on Open vSwitch: the hosts in the OpenStack layout (br-int, br-tun with
/// the agent's rules, br-mpls), the `ovs` drivers, the E-VPN VMs on br-int and the IP VPN VMs on
/// br-mpls. A restart keeps every rule and group in place while the instances add theirs again.
extension HitlessRestartTests {
    static let ovsDrivers = """
        [DATAPLANE_DRIVER_EVPN]
        dataplane_driver = ovs
        [DATAPLANE_DRIVER_IPVPN]
        dataplane_driver = ovs
        ovs_bridge = br-mpls
        arp_responder = True
        """

    /// A host with its own Open vSwitch, the agent's layout, and its E-VPN VM on br-int.
    static func addOVSHost(_ lab: Lab, _ host: String, address: String) throws {
        try lab.addOVSHost(host, address: address, bridges: ["br-int", "br-tun", "br-mpls"])
        try OVSEVPNDataplaneTests.agentLayout(lab, host)
        try OVSEVPNDataplaneTests.addVM(lab, host)
    }

    /// What a packet depends on in a host's Open vSwitch: every rule (without its statistics), every
    /// group, and every port with its OpenFlow number. Empty for a host without one.
    static func switchState(_ lab: Lab, _ host: String) throws -> [String] {
        guard lab.switches[host] != nil else { return [] }
        var state: [String] = []
        for bridge in ["br-tun", "br-mpls"] {
            state += try lab.flows(host, bridge).map { "\(bridge) rule \($0)" }
            state += try lab.ovs(host, "ovs-ofctl", ["-O", "OpenFlow15", "dump-groups", bridge]).split(separator: "\n")
                .filter { $0.contains("group_id=") }.map { "\(bridge) \($0.trimmingCharacters(in: .whitespaces))" }
        }
        state += try lab.ovs(host, "ovs-vsctl", ["--format=csv", "--no-headings", "--columns=name,ofport", "list", "Interface"]).split(separator: "\n").map { "port \($0)" }
        return state
    }

    @Test(arguments: [Restart.crash, .upgrade, .reflector])
    func noPingLostOnOpenVSwitch(_ restart: Restart) async throws {
        try await Self.noPingLost(restart, openVSwitch: true)
    }

    /// The consistency check of the `ovs` drivers finds a rule removed behind their back, and one
    /// of ours they do not hold; `sweepStale` after a restart removes the earlier run's rule for a
    /// remote MAC that did not come back, and its tunnel port.
    @Test func openVSwitchConsistencyAndSweep() async throws {
        let setup = try await Setup(openVSwitch: true)
        let lab = setup.lab
        defer { setup.stop() }
        do {
            #expect(try Self.differences(lab, "b") == ["evpn": 0, "ipvpn": 0])
            let arp = "table=21,arp,dl_vlan=9,arp_tpa=\(OVSEVPNDataplaneTests.ip("a"))"
            #expect(try lab.flows("b", "br-tun", arp).count == 1)
            try lab.ovs("b", "ovs-ofctl", ["-O", "OpenFlow15", "del-flows", "br-tun", arp])
            try lab.ovs("b", "ovs-ofctl", ["-O", "OpenFlow15", "add-flow", "br-mpls", "table=2,priority=1,cookie=0x6261677000000063,reg0=99,ip actions=drop"])
            #expect(try Self.differences(lab, "b") == ["evpn": 1, "ipvpn": 1])
            try lab.ovs("b", "ovs-ofctl", ["-O", "OpenFlow15", "del-flows", "br-mpls", "table=2,cookie=0x6261677000000063/-1"])

            // b down; a's E-VPN port leaves meanwhile: b's rules toward it are stale when it is back.
            let daemon = try #require(lab.daemons["b"])
            kill(daemon.process.processIdentifier, SIGKILL)
            daemon.process.waitUntilExit()
            let r = try lab.request("a", "/detach_localport", post: OVSEVPNDataplaneTests.evpnDetachment("a"))
            #expect(r.status == 200, "\(r.body)")
            let tunnel = "vxlan-c0000201"
            #expect(try lab.flows("b", "br-tun", "table=20").contains { $0.contains("dl_dst=\(OVSEVPNDataplaneTests.mac("a"))") })
            try setup.startHost("b")
            _ = try await poll(timeout: 60) { lab.daemons["b"]?.log ?? "" } until: { $0.contains("restart over:") }
            let table20 = try await poll(timeout: 10) { try lab.flows("b", "br-tun", "table=20").joined(separator: "\n") } until: { !$0.contains(OVSEVPNDataplaneTests.mac("a")) }
            #expect(!table20.contains(OVSEVPNDataplaneTests.mac("a")), "the stale MAC rule went: \(table20)")
            #expect(try !lab.ovs("b", "ovs-vsctl", ["list-ports", "br-tun"]).contains(tunnel), "the unused tunnel port went")
            #expect(try Self.differences(lab, "b") == ["evpn": 0, "ipvpn": 0])
            let log = lab.daemons["b"]?.log ?? ""
            #expect(log.contains("removed") && log.contains(OVSEVPNDataplaneTests.mac("a")), "the removal is logged: \(log.suffix(3000))")
            try await lab.pingUntil(from: "a2", "10.20.2.1")
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }
}
