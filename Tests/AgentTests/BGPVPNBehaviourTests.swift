import AgentCore
import AgentService
import BagpipeLab
import NeutronModel
import Testing

/// The agent behaviours of reference §6.3 (networking-bagpipe's `test_agent_extension.py`), each
/// against a real controller and the recording bagpipe-bgp, on Open vSwitch shapes: the bodies are
/// checked field for field (§2.5, §4.4) and their order (§2.4).
@Suite(.serialized) struct BGPVPNBehaviourTests {
    static let patches = OVSPatchPorts(mplsFromTun: 7, mplsToInt: 8)

    /// An agent with only `bagpipe_bgpvpn` (the OpenStack OVS agent's bgpvpn extension): no E-VPN for
    /// the network itself.
    static func harness() async throws -> AgentHarness {
        let h = try await AgentHarness(extensions: [.bagpipeBGPVPN], dataplane: .ovs, patchPorts: patches)
        h.start()
        return h
    }

    static func ipvpn(_ vm: VM, vlan: Int = 5, gateway: String? = "10.10.0.1", imports: [String], exports: [String]? = nil) -> JSONObject {
        Expected.ovsIPVPN(vm, vlan: vlan, mplsFromTun: patches.mplsFromTun, gateway: gateway, imports: imports, exports: exports ?? imports)
    }

    @Test func anAssociationWithoutLocalPortsPlugsNothing() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1010, cidr: "10.10.0.0/24")
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = try await h.associate(vpn, network: net)
        // A port of the network on another host: still nothing here.
        _ = try await h.port(net, host: "compute-2")
        try await h.settle()
        #expect(h.bagpipe.calls.isEmpty, "\(h.bagpipe.calls)")
    }

    @Test func anAssociationArrivingBeforeThePortIsUpIsPickedUpWhenThePortComesUp() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1011, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = try await h.associate(vpn, network: net)
        try await h.settle()
        #expect(h.bagpipe.calls.isEmpty, "the port is not plugged yet: \(h.bagpipe.calls)")
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        try await h.settle()
        expectBodies(h.bagpipe.calls, attaches: [Self.ipvpn(vm, imports: ["64512:1"])])
    }

    @Test func twoNetworkAssociationsOfOneTypeMakeOneAttachmentWithTheUnionOfRouteTargets() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1012, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn1 = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        let vpn2 = try await h.bgpvpn(#""route_targets": ["64512:2"], "import_targets": ["64512:3"]"#)
        let a1 = try await h.associate(vpn1, network: net)
        _ = try await h.associate(vpn2, network: net)
        try await h.settle()
        let last = h.bagpipe.calls.last?.body ?? JSONObject()
        #expect(sameBody(last, Self.ipvpn(vm, imports: ["64512:1", "64512:2", "64512:3"], exports: ["64512:1", "64512:2"])), "\(last)")
        // Deleting one re-attaches with fewer route targets, and sends no detach.
        let mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/bgpvpn/bgpvpns/\(vpn1)/network_associations/\(a1)")
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), attaches: [Self.ipvpn(vm, imports: ["64512:2", "64512:3"], exports: ["64512:2"])])
    }

    @Test func associationsOfTwoTypesDetachOnlyTheTypeThatIsDeleted() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1013, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        let l3 = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        let l2 = try await h.bgpvpn(#""type": "l2", "route_targets": ["64512:2"]"#)
        let a3 = try await h.associate(l3, network: net)
        _ = try await h.associate(l2, network: net)
        try await h.settle()
        // The port comes up with both associations there: one plug, E-VPN first.
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        try await h.settle()
        let evpn = Expected.with(Expected.ovsEVPN(vm, vlan: 5, vni: 1013, rts: ["64512:2"]), [
            "gateway_ip": "10.10.0.1", "description": .object(object(["port": .string(vm.id)])), "instance_description": .string("BGPVPN l2 of network \(net)"),
        ])
        let ipvpn = Self.ipvpn(vm, imports: ["64512:1"])
        expectBodies(h.bagpipe.calls, attaches: [evpn, ipvpn])
        expectOrder(h.bagpipe.calls)
        let mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/bgpvpn/bgpvpns/\(l3)/network_associations/\(a3)")
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), detaches: [Expected.detach(of: ipvpn)])
        // The detach of an OVS IP VPN carries no VLAN nor br-mpls sub-object.
        #expect(h.bagpipe.calls.last?.body["local_port"] == .object(object(["linuxif": .string("patch2tun:5")])))
    }

    @Test func anUpdateWithEmptyRouteTargetsReattachesWithoutDetach() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1014, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = try await h.associate(vpn, network: net)
        try await h.settle()
        let mark = h.bagpipe.calls.count
        try await h.update("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"route_targets": []}}"#)
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), attaches: [Self.ipvpn(vm, imports: [])])
    }

    @Test func portAssociationPrefixRoutesMakePerPrefixVRFsWithAdvertiseSubnetAndLocalPref() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1015, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"], "local_pref": 50"#)
        let pa = h.id(try await h.create(
            "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations",
            #"{"port_association": {"port_id": "\#(vm.id)", "routes": [{"type": "prefix", "prefix": "20.0.0.0/24", "local_pref": 200}, {"type": "prefix", "prefix": "30.0.0.0/16"}]}}"#,
            "port_association"))
        try await h.settle()
        let fixed = Expected.with(Self.ipvpn(vm, imports: ["64512:1"]), ["local_pref": 50])
        let routes = [("20.0.0.0/24", "20_0_0_0_24", Int64(200)), ("30.0.0.0/16", "30_0_0_0_16", Int64(50))].map { prefix, name, pref in
            Expected.with(Self.ipvpn(vm, imports: ["64512:1"]), [
                "vpn_instance_id": .string("ipvpn_portassoc_\(pa)_prefix_\(name)"), "ip_address": .string(prefix), "advertise_subnet": true, "direction": "to-port",
                "local_pref": .int(pref),
            ])
        }
        expectBodies(h.bagpipe.calls, attaches: [fixed] + routes)
        // Deleting the association detaches all three.
        let mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations/\(pa)")
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), detaches: ([fixed] + routes).map(Expected.detach(of:)))
    }

    /// Found by the tempest `port_association_local_pref` scenario: a PUT that only changes a route's
    /// `local_pref` attaches that route again with the new one (and detaches nothing).
    @Test func aRoutesLocalPrefChangedReattachesWithTheNewOne() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1018, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        let path = "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations"
        let pa = h.id(try await h.create(
            path, #"{"port_association": {"port_id": "\#(vm.id)", "routes": [{"type": "prefix", "prefix": "20.0.0.1/32", "local_pref": 200}]}}"#, "port_association"))
        try await h.settle()
        let mark = h.bagpipe.calls.count
        try await h.update("\(path)/\(pa)", #"{"port_association": {"routes": [{"type": "prefix", "prefix": "20.0.0.1/32", "local_pref": 100}]}}"#)
        try await h.settle()
        let again = Expected.with(Self.ipvpn(vm, imports: ["64512:1"]), [
            "vpn_instance_id": .string("ipvpn_portassoc_\(pa)_prefix_20_0_0_1_32"), "ip_address": "20.0.0.1/32", "advertise_subnet": true, "direction": "to-port", "local_pref": .int(100),
        ])
        expectBodies(h.bagpipe.calls(since: mark), attaches: [again])
    }

    @Test func advertiseFixedIPsFalseMakesNoFixedIPAttachmentAndDetachesOnlyThePrefix() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1016, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        let pa = h.id(try await h.create(
            "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations",
            #"{"port_association": {"port_id": "\#(vm.id)", "advertise_fixed_ips": false, "routes": [{"type": "prefix", "prefix": "20.0.0.0/24", "local_pref": 200}]}}"#,
            "port_association"))
        try await h.settle()
        let route = Expected.with(Self.ipvpn(vm, imports: ["64512:1"]), [
            "vpn_instance_id": .string("ipvpn_portassoc_\(pa)_prefix_20_0_0_0_24"), "ip_address": "20.0.0.0/24", "advertise_subnet": true, "direction": "to-port", "local_pref": 200,
        ])
        expectBodies(h.bagpipe.calls, attaches: [route])
        let mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations/\(pa)")
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), detaches: [Expected.detach(of: route)])
    }

    @Test func aPortAssociationUpdateThatRemovesARouteDetachesOnlyThatRoute() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1017, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        let path = "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations"
        let pa = h.id(try await h.create(
            path, #"{"port_association": {"port_id": "\#(vm.id)", "routes": [{"type": "prefix", "prefix": "20.0.0.0/24"}, {"type": "prefix", "prefix": "30.0.0.0/24"}]}}"#,
            "port_association"))
        try await h.settle()
        let mark = h.bagpipe.calls.count
        try await h.update("\(path)/\(pa)", #"{"port_association": {"routes": [{"type": "prefix", "prefix": "20.0.0.0/24"}]}}"#)
        try await h.settle()
        let gone = Expected.with(Self.ipvpn(vm, imports: ["64512:1"]), [
            "vpn_instance_id": .string("ipvpn_portassoc_\(pa)_prefix_30_0_0_0_24"), "ip_address": "30.0.0.0/24", "advertise_subnet": true, "direction": "to-port", "local_pref": nil,
        ])
        expectBodies(h.bagpipe.calls(since: mark), detaches: [Expected.detach(of: gone)])
    }

    @Test func bgpvpnRoutesAreReadvertisedWithTheRightRouteTargetsAndLocalPref() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1018, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"], "export_targets": ["64512:9"]"#)
        let leaked = try await h.bgpvpn(#""route_targets": ["64512:20"], "import_targets": ["64512:21"]"#)
        let pa = h.id(try await h.create(
            "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations",
            #"{"port_association": {"port_id": "\#(vm.id)", "advertise_fixed_ips": false, "routes": [{"type": "bgpvpn", "bgpvpn_id": "\#(leaked)", "local_pref": 300}]}}"#,
            "port_association"))
        try await h.settle()
        let route = Expected.with(Self.ipvpn(vm, imports: ["64512:1"], exports: ["64512:1", "64512:9"]), [
            "vpn_instance_id": .string("ipvpn_portassoc_\(pa)_bgpvpn_\(leaked)"), "direction": "to-port", "local_pref": 300,
            "readvertise": .object(object(["from_rt": .strings(["64512:20", "64512:21"]), "to_rt": .strings(["64512:1", "64512:9"])])),
        ])
        expectBodies(h.bagpipe.calls, attaches: [route])
    }

    @Test func anL2BGPVPNsVNIOverridesTheSegmentationID() async throws {
        let h = try await AgentHarness(extensions: [.bagpipe, .bagpipeBGPVPN], dataplane: .ovs, patchPorts: Self.patches)
        h.start()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1019, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        try await h.settle()
        expectBodies(h.bagpipe.calls, attaches: [Expected.ovsEVPN(vm, vlan: 5, vni: 1019, rts: ["64512:1019"])])
        let mark = h.bagpipe.calls.count
        let l2 = try await h.bgpvpn(#""type": "l2", "route_targets": ["64512:2"], "vni": 4242"#)
        _ = try await h.associate(l2, network: net)
        try await h.settle()
        // A new VNI is a new E-VPN instance for bagpipe-bgp: the old one is detached, then the
        // network's route targets and the BGPVPN's together on the BGPVPN's VNI.
        let before = Expected.ovsEVPN(vm, vlan: 5, vni: 1019, rts: ["64512:1019"])
        let after = Expected.with(Expected.ovsEVPN(vm, vlan: 5, vni: 4242, rts: ["64512:1019", "64512:2"]), [
            "gateway_ip": "10.10.0.1", "description": .object(object(["port": .string(vm.id)])), "instance_description": .string("BGPVPN l2 of network \(net)"),
        ])
        expectBodies(h.bagpipe.calls(since: mark), attaches: [after], detaches: [Expected.detach(of: before)])
        #expect(h.bagpipe.calls(since: mark).first?.isAttach == false, "the detach comes first")
    }

    @Test func adminStateDownUpDownThenDelete() async throws {
        let h = try await AgentHarness(extensions: [.bagpipe, .bagpipeBGPVPN], dataplane: .ovs, patchPorts: Self.patches)
        h.start()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1020, cidr: "10.10.0.0/24")
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = try await h.associate(vpn, network: net)
        try await h.settle()
        let evpn = Expected.ovsEVPN(vm, vlan: 5, vni: 1020, rts: ["64512:1020"]), ipvpn = Self.ipvpn(vm, imports: ["64512:1"])
        expectBodies(h.bagpipe.calls, attaches: [evpn, ipvpn])
        expectOrder(h.bagpipe.calls)
        for (state, attaches, detaches) in [(false, [JSONObject](), [evpn, ipvpn].map(Expected.detach(of:))), (true, [evpn, ipvpn], []), (false, [], [evpn, ipvpn].map(Expected.detach(of:)))] {
            let mark = h.bagpipe.calls.count
            try await h.update("/v2.0/ports/\(vm.id)", #"{"port": {"admin_state_up": \#(state)}}"#)
            try await h.settle()
            expectBodies(h.bagpipe.calls(since: mark), attaches: attaches, detaches: detaches)
            expectOrder(h.bagpipe.calls(since: mark))
        }
        // Deleting a port that is down sends nothing more; deleting one that is up detaches it.
        var mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/ports/\(vm.id)")
        try await h.settle()
        #expect(h.bagpipe.calls(since: mark).isEmpty)
        let vm2 = VM(try await h.port(net))
        h.plugger.plug(vm2.id, .ovs(vlan: 5))
        try await h.settle()
        mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/ports/\(vm2.id)")
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), detaches: [Expected.ovsEVPN(vm2, vlan: 5, vni: 1020, rts: []), Self.ipvpn(vm2, imports: [])].map(Expected.detach(of:)))
        expectOrder(h.bagpipe.calls(since: mark))
    }

    @Test func theFallbackNamesTheRouterGatewayMACAndRouterInterfacesAreNeverAttached() async throws {
        let h = try await Self.harness()
        defer { h.stop() }
        let (net, subnet) = try await h.network(vni: 1021, cidr: "10.10.0.0/24")
        let router = h.id(try await h.create("/v2.0/routers", #"{"router": {"name": "r"}}"#, "router"))
        try await h.update("/v2.0/routers/\(router)/add_router_interface", #"{"subnet_id": "\#(h.id(subnet))"}"#)
        let interface = try await h.controller.request(.GET, "/v2.0/ports?device_owner=network:router_interface&network_id=\(net)", token: h.admin)
        let gatewayMAC = interface.json?["ports"]?.arrayValue?.first?["mac_address"]?.stringValue ?? ""
        #expect(!gatewayMAC.isEmpty, "\(interface.body)")
        // The router interface is bound here too (a distributed router's would be): never attached.
        if let rid = interface.json?["ports"]?.arrayValue?.first?["id"]?.stringValue {
            try await h.update("/v2.0/ports/\(rid)", #"{"port": {"binding:host_id": "compute-1"}}"#)
            h.plugger.plug(rid, .ovs(vlan: 5))
        }
        let vm = VM(try await h.port(net))
        h.plugger.plug(vm.id, .ovs(vlan: 5))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = h.id(try await h.create("/v2.0/bgpvpn/bgpvpns/\(vpn)/router_associations", #"{"router_association": {"router_id": "\#(router)"}}"#, "router_association"))
        try await h.settle()
        let expected = Expected.with(Self.ipvpn(vm, imports: ["64512:1"]), [
            "fallback": .object(object(["dst_mac": .string(gatewayMAC), "src_mac": "00:00:5e:2a:10:00", "ovs_port_number": .int(Self.patches.mplsToInt)])),
        ])
        expectBodies(h.bagpipe.calls, attaches: [expected])
    }
}
