import ControllerCore
import NeutronModel
import Testing

/// The API's rules on the in-memory state, without HTTP or a database: networking-bgpvpn's §3.7
/// validation and §3.8 policies, Neutron's IPAM and VNI allocation.
@Suite struct ControllerRulesTests {
    static let admin = Caller(userID: "a", userName: "admin", projectID: "p-admin", roles: ["admin"])
    static let demo = Caller(userID: "d", userName: "demo", projectID: "p-demo", roles: ["member"])
    static let other = Caller(userID: "o", userName: "other", projectID: "p-other", roles: ["member"])

    static func context(_ caller: Caller, vni: [ClosedRange<Int>] = [1000...1002]) -> WriteContext {
        WriteContext(caller: caller, now: "2026-12-04T00:00:00Z", settings: ControllerSettings(vniRanges: vni))
    }

    static func body(_ member: String, _ text: String) throws -> RequestAttributes {
        try RequestAttributes.unwrap(try JSON.parse(text), member: member)
    }

    /// A state with, for `demo`: a network with a subnet, a router, and an L3 BGPVPN made by admin.
    struct Fixture {
        var state = ControllerState()
        var network = "", subnet = "", router = "", bgpvpn = ""

        init() throws {
            var b = try ControllerRulesTests.body("network", #"{"network": {"name": "net1"}}"#)
            network = try state.createNetwork(&b, ControllerRulesTests.context(ControllerRulesTests.demo)).id
            b = try ControllerRulesTests.body("subnet", #"{"subnet": {"network_id": "\#(network)", "cidr": "10.0.0.0/24", "ip_version": 4}}"#)
            subnet = try state.createSubnet(&b, ControllerRulesTests.context(ControllerRulesTests.demo)).id
            b = try ControllerRulesTests.body("router", #"{"router": {"name": "r1"}}"#)
            router = try state.createRouter(&b, ControllerRulesTests.context(ControllerRulesTests.demo)).id
            b = try ControllerRulesTests.body("bgpvpn", #"{"bgpvpn": {"name": "vpn", "route_targets": ["64512:1"], "tenant_id": "p-demo"}}"#)
            bgpvpn = try state.createBGPVPN(&b, ControllerRulesTests.context(ControllerRulesTests.admin)).id
        }
    }

    @Test func routeTargetSyntaxIsNetworkingBGPVPNs() {
        for good in ["64512:1", "0:0", "65535:4294967295", "4294967295:65535", "192.0.2.1:100", "1.2.3.4:0"] { #expect(RouteTargetSyntax.isValid(good), "\(good)") }
        for bad in ["0", "test", " ", "64512:1000000000000", "xyz", "65536:4294967295", "01:1", "1:01", "1.2.3:4", "256.1.1.1:1", "1.2.3.4:65536", "-1:1", "1:", ":1", "1:2:3"] {
            #expect(!RouteTargetSyntax.isValid(bad), "\(bad)")
        }
    }

    @Test func vnisComeFromTheRangesAndAdminMayChoose() throws {
        var s = ControllerState()
        var vnis: [Int] = []
        for _ in 0..<3 {
            var b = try Self.body("network", #"{"network": {}}"#)
            vnis.append(try s.createNetwork(&b, Self.context(Self.demo)).segmentationID)
        }
        #expect(vnis == [1000, 1001, 1002])
        var b = try Self.body("network", #"{"network": {}}"#)
        #expect(throws: NeutronError.self) { try s.createNetwork(&b, Self.context(Self.demo)) }
        b = try Self.body("network", #"{"network": {"provider:segmentation_id": 5000}}"#)
        #expect(throws: NeutronError.policy("create_network:provider:network_type")) { try s.createNetwork(&b, Self.context(Self.demo)) }
        b = try Self.body("network", #"{"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 5000}}"#)
        #expect(try s.createNetwork(&b, Self.context(Self.admin)).segmentationID == 5000)
        b = try Self.body("network", #"{"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 5000}}"#)
        #expect(throws: NeutronError.self) { try s.createNetwork(&b, Self.context(Self.admin)) }
    }

    @Test func subnetsGetNeutronsDefaultsAndPortsTheirAddresses() throws {
        var f = try Fixture()
        let s = try #require(f.state.subnets[f.subnet])
        #expect(s.gatewayIP == "10.0.0.1")
        #expect(s.allocationPools == [AllocationPool(start: "10.0.0.2", end: "10.0.0.254")])
        var b = try Self.body("port", #"{"port": {"network_id": "\#(f.network)"}}"#)
        let p = try f.state.createPort(&b, Self.context(Self.demo))
        #expect(p.fixedIPs == [FixedIP(subnetID: f.subnet, ipAddress: "10.0.0.2")])
        #expect(p.macAddress.hasPrefix("fa:16:3e:"))
        #expect(p.status == "DOWN")
        b = try Self.body("port", #"{"port": {"network_id": "\#(f.network)", "fixed_ips": [{"ip_address": "10.0.0.2"}]}}"#)
        #expect(throws: NeutronError.self) { try f.state.createPort(&b, Self.context(Self.demo)) }
        b = try Self.body("port", #"{"port": {"network_id": "\#(f.network)", "fixed_ips": [{"ip_address": "10.0.0.77"}], "mac_address": "\#(p.macAddress)"}}"#)
        #expect(throws: NeutronError.conflict("MacAddressInUse", "Unable to complete operation for network \(f.network). The mac address \(p.macAddress) is in use.")) {
            try f.state.createPort(&b, Self.context(Self.demo))
        }
        var v6 = try Self.body("subnet", #"{"subnet": {"network_id": "\#(f.network)", "cidr": "2001:db8::/64", "ip_version": 6}}"#)
        let s6 = try f.state.createSubnet(&v6, Self.context(Self.demo))
        #expect(s6.gatewayIP == "2001:db8::1")
        var overlapping = try Self.body("subnet", #"{"subnet": {"network_id": "\#(f.network)", "cidr": "10.0.0.128/25"}}"#)
        #expect(throws: NeutronError.self) { try f.state.createSubnet(&overlapping, Self.context(Self.demo)) }
    }

    @Test func bgpvpnPoliciesOfSection38() throws {
        var f = try Fixture()
        var b = try Self.body("bgpvpn", #"{"bgpvpn": {"name": "x"}}"#)
        #expect(throws: NeutronError.policy("create_bgpvpn")) { try f.state.createBGPVPN(&b, Self.context(Self.demo)) }
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"route_targets": ["64512:2"]}}"#)
        #expect(throws: NeutronError.policy("update_bgpvpn:route_targets")) { try f.state.updateBGPVPN(f.bgpvpn, &b, Self.context(Self.demo)) }
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"name": "renamed", "local_pref": 200}}"#)
        #expect(try f.state.updateBGPVPN(f.bgpvpn, &b, Self.context(Self.demo)).localPref == 200)
        #expect(throws: NeutronError.notFound(.bgpvpn, f.bgpvpn)) { try f.state.bgpvpn(f.bgpvpn, for: Self.other) }
        #expect(f.state.visibleResources(.bgpvpn, for: Self.other).isEmpty)
        let owner = try #require(f.state.visibleResources(.bgpvpn, for: Self.demo).first)
        #expect(owner["route_targets"] == nil, "owners do not see route targets")
        #expect(f.state.visibleResources(.bgpvpn, for: Self.admin).first?["route_targets"] == .strings(["64512:1"]))
        #expect(throws: NeutronError.policy("delete_bgpvpn")) { try f.state.deleteBGPVPN(f.bgpvpn, Self.context(Self.demo)) }
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"type": "l2"}}"#)
        #expect(throws: NeutronError.self) { try f.state.updateBGPVPN(f.bgpvpn, &b, Self.context(Self.admin)) }
        for bad in [#""0""#, #""test""#, #"" ""#, #""64512:1000000000000""#, #""xyz""#] {
            b = try Self.body("bgpvpn", #"{"bgpvpn": {"route_targets": [\#(bad)]}}"#)
            #expect(throws: NeutronError.self) { try f.state.createBGPVPN(&b, Self.context(Self.admin)) }
        }
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"route_distinguishers": ["64512:1"]}}"#)
        #expect(throws: NeutronError.self) { try f.state.createBGPVPN(&b, Self.context(Self.admin)) }
        for bad in [#""local_pref": 4294967296"#, #""local_pref": -1"#, #""vni": 0"#, #""vni": 16777216"#] {
            b = try Self.body("bgpvpn", #"{"bgpvpn": {\#(bad)}}"#)
            #expect(throws: NeutronError.self) { try f.state.createBGPVPN(&b, Self.context(Self.admin)) }
        }
    }

    @Test func associationRulesOfSection37() throws {
        var f = try Fixture()
        var b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(f.network)"}}"#)
        _ = try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(f.network)"}}"#)
        #expect(throws: NeutronError.self) { try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.demo)) }
        // Another project's network: not visible to them (404), and a foreign project's BGPVPN is 404 too.
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(f.network)"}}"#)
        #expect(throws: NeutronError.notFound(.bgpvpn, f.bgpvpn)) { try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.other)) }
        // The router associated, then an interface on the L3-associated network: 409.
        b = try Self.body("router_association", #"{"router_association": {"router_id": "\#(f.router)"}}"#)
        _ = try f.state.createRouterAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        var i = RequestAttributes(JSONObject([("subnet_id", .string(f.subnet))]), resource: "router_interface")
        #expect(throws: NeutronError.self) { try f.state.addRouterInterface(f.router, &i, Self.context(Self.demo)) }
        do {
            try f.state.addRouterInterface(f.router, &i, Self.context(Self.demo))
        } catch let e as NeutronError {
            #expect(e.kind == .conflict && e.type == "RouterInterfaceAttachmentConflict")
        }
        // An L2 BGPVPN refuses router associations.
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"type": "l2", "tenant_id": "p-demo"}}"#)
        let l2 = try f.state.createBGPVPN(&b, Self.context(Self.admin)).id
        b = try Self.body("router_association", #"{"router_association": {"router_id": "\#(f.router)"}}"#)
        #expect(throws: NeutronError.badRequest("Router associations require the bgpvpn to be of type l3")) { try f.state.createRouterAssociation(l2, &b, Self.context(Self.demo)) }
        // Port routes: a bgpvpn route must name a BGPVPN of the same type.
        var pb = try Self.body("port", #"{"port": {"network_id": "\#(f.network)"}}"#)
        let port = try f.state.createPort(&pb, Self.context(Self.demo)).id
        b = try Self.body("port_association", #"{"port_association": {"port_id": "\#(port)", "routes": [{"type": "bgpvpn", "bgpvpn_id": "\#(l2)"}]}}"#)
        #expect(throws: NeutronError.self) { try f.state.createPortAssociation(f.bgpvpn, &b, Self.context(Self.demo)) }
        b = try Self.body("port_association", #"{"port_association": {"port_id": "\#(port)", "routes": [{"type": "prefix", "prefix": "20.0.0.0/24", "local_pref": 300}], "bogus": 1}}"#)
        #expect(throws: NeutronError.badRequest("Unrecognized attribute(s) 'bogus'")) { try f.state.createPortAssociation(f.bgpvpn, &b, Self.context(Self.demo)) }
        b = try Self.body("port_association", #"{"port_association": {"port_id": "\#(port)", "routes": [{"type": "prefix", "prefix": "20.0.0.0/24", "local_pref": 300}]}}"#)
        let pa = try f.state.createPortAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        #expect(pa.routes == [PortRoute(type: .prefix, prefix: "20.0.0.0/24", localPref: 300)])
        // Deleting the BGPVPN takes its associations with it.
        try f.state.deleteBGPVPN(f.bgpvpn, Self.context(Self.admin))
        #expect(f.state.networkAssociations.isEmpty && f.state.routerAssociations.isEmpty && f.state.portAssociations.isEmpty)
    }

    @Test func aHostSeesOnlyItsPortsAndWhatAppliesToThem() throws {
        var f = try Fixture()
        var b = try Self.body("network", #"{"network": {"name": "net2"}}"#)
        let net2 = try f.state.createNetwork(&b, Self.context(Self.demo)).id
        var p = try Self.body("port", #"{"port": {"network_id": "\#(f.network)", "binding:host_id": "compute-1"}}"#)
        let port1 = try f.state.createPort(&p, Self.context(Self.admin)).id
        p = try Self.body("port", #"{"port": {"network_id": "\#(net2)", "binding:host_id": "compute-2"}}"#)
        let port2 = try f.state.createPort(&p, Self.context(Self.admin)).id
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(net2)"}}"#)
        let assoc = try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.demo)).id
        let view1 = f.state.hostView("compute-1"), view2 = f.state.hostView("compute-2")
        #expect(Set(view1.keys) == [ResourceKey(.port, port1), ResourceKey(.network, f.network), ResourceKey(.subnet, f.subnet)])
        #expect(Set(view2.keys) == [ResourceKey(.port, port2), ResourceKey(.network, net2), ResourceKey(.networkAssociation, assoc)])
        #expect(view2[ResourceKey(.networkAssociation, assoc)]?["bgpvpn"]?["route_targets"] == .strings(["64512:1"]))
        #expect(f.state.hostsConcerned(by: ResourceKey(.bgpvpn, f.bgpvpn)) == ["compute-2"])
        #expect(f.state.hostView("compute-3").isEmpty)
    }
}

/// The §3.7 rules the suite above does not reach, one test each.
extension ControllerRulesTests {
    @Test func aNetworkBehindARouterAssociatedRouterCannotBeNetAssociatedToAnL3BGPVPN() throws {
        var f = try Fixture()
        var i = RequestAttributes(JSONObject([("subnet_id", .string(f.subnet))]), resource: "router_interface")
        _ = try f.state.addRouterInterface(f.router, &i, Self.context(Self.demo))
        var b = try Self.body("router_association", #"{"router_association": {"router_id": "\#(f.router)"}}"#)
        _ = try f.state.createRouterAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"tenant_id": "p-demo"}}"#)
        let other = try f.state.createBGPVPN(&b, Self.context(Self.admin)).id
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(f.network)"}}"#)
        #expect(throws: NeutronError.self) { try f.state.createNetworkAssociation(other, &b, Self.context(Self.demo)) }
        // An L2 BGPVPN may: the rule is about L3 reachability.
        b = try Self.body("bgpvpn", #"{"bgpvpn": {"type": "l2", "tenant_id": "p-demo"}}"#)
        let l2 = try f.state.createBGPVPN(&b, Self.context(Self.admin)).id
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(f.network)"}}"#)
        _ = try f.state.createNetworkAssociation(l2, &b, Self.context(Self.demo))
    }

    @Test func aRouterWithAnInterfaceOnAnL3NetAssociatedNetworkCannotBeRouterAssociated() throws {
        var f = try Fixture()
        var b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(f.network)"}}"#)
        _ = try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        var i = RequestAttributes(JSONObject([("subnet_id", .string(f.subnet))]), resource: "router_interface")
        _ = try f.state.addRouterInterface(f.router, &i, Self.context(Self.demo))
        b = try Self.body("router_association", #"{"router_association": {"router_id": "\#(f.router)"}}"#)
        #expect(throws: NeutronError.self) { try f.state.createRouterAssociation(f.bgpvpn, &b, Self.context(Self.demo)) }
    }

    @Test func portRoutesMustNameABGPVPNOfTheSameProject() throws {
        var f = try Fixture()
        var b = try Self.body("bgpvpn", #"{"bgpvpn": {"tenant_id": "p-other"}}"#)
        let foreign = try f.state.createBGPVPN(&b, Self.context(Self.admin)).id
        var p = try Self.body("port", #"{"port": {"network_id": "\#(f.network)"}}"#)
        let port = try f.state.createPort(&p, Self.context(Self.demo)).id
        b = try Self.body("port_association", #"{"port_association": {"port_id": "\#(port)", "routes": [{"type": "bgpvpn", "bgpvpn_id": "\#(foreign)"}]}}"#)
        do {
            _ = try f.state.createPortAssociation(f.bgpvpn, &b, Self.context(Self.demo))
            Issue.record("a route to another project's BGPVPN was accepted")
        } catch let e as NeutronError {
            #expect(e.type == "BGPVPNPortAssocRouteWrongBGPVPNProject" && e.kind == .badRequest)
        }
    }

    @Test func externalNetworksAreNotAssociatedAndDeletingANetworkTakesItsAssociations() throws {
        var f = try Fixture()
        var b = try Self.body("network", #"{"network": {"router:external": true, "tenant_id": "p-demo"}}"#)
        let external = try f.state.createNetwork(&b, Self.context(Self.admin)).id
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(external)"}}"#)
        #expect(throws: NeutronError.self) { try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.demo)) }
        b = try Self.body("network", #"{"network": {}}"#)
        let net = try f.state.createNetwork(&b, Self.context(Self.demo)).id
        b = try Self.body("network_association", #"{"network_association": {"network_id": "\#(net)"}}"#)
        _ = try f.state.createNetworkAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        try f.state.deleteNetwork(net, Self.context(Self.demo))
        #expect(f.state.networkAssociations.isEmpty)
    }

    @Test func aPortAssociationUpdateReplacesItsRoutesAsTheReferenceDoes() throws {
        var f = try Fixture()
        var p = try Self.body("port", #"{"port": {"network_id": "\#(f.network)"}}"#)
        let port = try f.state.createPort(&p, Self.context(Self.demo)).id
        var b = try Self.body("port_association", #"{"port_association": {"port_id": "\#(port)", "routes": [{"type": "prefix", "prefix": "20.0.0.0/24"}]}}"#)
        let a = try f.state.createPortAssociation(f.bgpvpn, &b, Self.context(Self.demo))
        b = try Self.body("port_association", #"{"port_association": {"advertise_fixed_ips": false}}"#)
        let updated = try f.state.updatePortAssociation(f.bgpvpn, a.id, &b, Self.context(Self.demo))
        #expect(updated.routes.isEmpty && !updated.advertiseFixedIPs)
        // A port's deletion takes its association.
        try f.state.deletePort(port, Self.context(Self.demo))
        #expect(f.state.portAssociations.isEmpty)
    }

    @Test func anAgentReportsOnlyItsOwnHostsPorts() throws {
        var f = try Fixture()
        var p = try Self.body("port", #"{"port": {"network_id": "\#(f.network)", "binding:host_id": "compute-1"}}"#)
        let port = try f.state.createPort(&p, Self.context(Self.admin)).id
        let agent1 = Caller(userID: "c1", userName: "compute-1", projectID: "service", roles: ["agent"], host: "compute-1")
        let agent2 = Caller(userID: "c2", userName: "compute-2", projectID: "service", roles: ["agent"], host: "compute-2")
        #expect(throws: NeutronError.policy("update_port:status")) { try f.state.setPortStatus(port, up: true, Self.context(agent2)) }
        #expect(try f.state.setPortStatus(port, up: true, Self.context(agent1)).status == "ACTIVE")
        #expect(try f.state.setPortStatus(port, up: false, Self.context(agent1)).status == "DOWN")
    }
}
