import AgentCore
import AgentService
import BagpipeLab
import NeutronModel
import Testing

/// Issue 17 on the agent's side: with distributed routing on, a router is realized on the host as
/// the VRF of each of its networks that has a port here, with the router's own route target; a
/// BGPVPN router association adds its targets; an interface removed detaches; BGPVPNs may not use
/// the routers' range.
@Suite(.serialized) struct DistributedRoutingTests {
    static func harness() async throws -> AgentHarness {
        let h = try await AgentHarness(extensions: [.bagpipeBGPVPN], dataplane: .ovs, patchPorts: BGPVPNBehaviourTests.patches, distributedRouting: true)
        h.start()
        return h
    }

    /// The route target the controller gave the router (read back from a host view is the agent's
    /// business; the allocation is the lowest free value of the default range).
    static let firstRouterTarget = "64512:\(1 << 24)"

    @Test func aRouterInterfaceAttachesThePortsOfItsNetworkToTheRoutersVRF() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, subnet) = try await h.network(vni: 1031, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        try await h.settle()
        #expect(h.bagpipe.calls.isEmpty, "no router yet: \(h.bagpipe.calls)")

        let router = h.id(try await h.create("/v2.0/routers", #"{"router": {"name": "r"}}"#, "router"))
        try await h.update("/v2.0/routers/\(router)/add_router_interface", #"{"subnet_id": "\#(h.id(subnet))"}"#)
        try await h.settle()
        let interface = try await h.controller.request(.GET, "/v2.0/ports?device_owner=network:router_interface&network_id=\(net)", token: h.admin)
        let gatewayMAC = interface.json?["ports"]?.arrayValue?.first?["mac_address"]?.stringValue ?? ""
        let routed = Expected.with(BGPVPNBehaviourTests.ipvpn(vm, imports: [Self.firstRouterTarget]), [
            "fallback": .object(object(["dst_mac": .string(gatewayMAC), "src_mac": "00:00:5e:2a:10:00", "ovs_port_number": .int(BGPVPNBehaviourTests.patches.mplsToInt)])),
        ])
        expectBodies(h.bagpipe.calls, attaches: [routed])

        // A BGPVPN associated with the router adds its targets to the same VRF.
        let before = h.bagpipe.calls.count
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = h.id(try await h.create("/v2.0/bgpvpn/bgpvpns/\(vpn)/router_associations", #"{"router_association": {"router_id": "\#(router)"}}"#, "router_association"))
        try await h.settle()
        let both = Expected.with(BGPVPNBehaviourTests.ipvpn(vm, imports: ["64512:1", Self.firstRouterTarget]), ["fallback": routed["fallback"] ?? .null])
        expectBodies(h.bagpipe.calls(since: before), attaches: [both])

        // The interface removed: the port leaves the VRF.
        let detachedFrom = h.bagpipe.calls.count
        try await h.update("/v2.0/routers/\(router)/remove_router_interface", #"{"subnet_id": "\#(h.id(subnet))"}"#)
        try await h.settle()
        let calls = h.bagpipe.calls(since: detachedFrom)
        #expect(calls.contains { !$0.isAttach && $0.body["vpn_type"]?.stringValue == "ipvpn" }, "\(calls)")
    }

    @Test func bgpvpnsMayNotUseTheRoutersRouteTargets() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let r = try await h.controller.request(.POST, "/v2.0/bgpvpn/bgpvpns", token: h.admin, body: #"{"bgpvpn": {"route_targets": ["\#(Self.firstRouterTarget)"]}}"#)
        #expect(r.status == 400 && r.body.contains("NeutronError") && r.body.contains("reserved for routers"), "\(r.status) \(r.body)")
    }
}
