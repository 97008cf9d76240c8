import AgentCore
import NeutronModel
import Testing

/// The planner alone (no I/O): the rules of §4.4 that the behaviour tests do not isolate.
@Suite struct AttachmentPlannerTests {
    static let port = ViewPort(id: "p1", networkID: "n1", macAddress: "fa:16:3e:00:00:01", fixedIPs: ["10.0.0.5"])
    static let subnet = SubnetInfo(id: "s1", cidr: "10.0.0.0/24", gatewayIP: "10.0.0.1")

    static func view(_ associations: [NetworkAssociationInfo]) -> HostViewModel {
        var v = HostViewModel()
        v.ports["p1"] = port
        v.networks["n1"] = ViewNetwork(id: "n1", segmentationID: 1500)
        for a in associations { v.networkAssociations[a.id] = a }
        return v
    }

    @Test func localPrefIsTheMaximumOfTheAssociationsBGPVPNs() {
        let a = NetworkAssociationInfo(id: "a", bgpvpn: BGPVPNInfo(id: "v1", type: .l3, routeTargets: ["64512:1"], localPref: 100), networkID: "n1", subnets: [Self.subnet])
        let b = NetworkAssociationInfo(id: "b", bgpvpn: BGPVPNInfo(id: "v2", type: .l3, routeTargets: ["64512:2"], localPref: 300), networkID: "n1", subnets: [Self.subnet])
        let c = NetworkAssociationInfo(id: "c", bgpvpn: BGPVPNInfo(id: "v3", type: .l3, routeTargets: ["64512:3"]), networkID: "n1", subnets: [Self.subnet])
        let planner = AttachmentPlanner(extensions: [.bagpipeBGPVPN], dataplane: .linux)
        let plan = planner.plan(Self.view([a, b, c]), plugged: ["p1": .linux(tap: "tapp1", bridge: "brqn1")])
        #expect(plan.count == 1)
        #expect(plan.first?.attach["local_pref"] == .int(300))
        #expect(plan.first?.attach["import_rt"] == .strings(["64512:1", "64512:2", "64512:3"]))
    }

    @Test func routerInterfacesAndPortsThatAreDownAreNeverAttached() {
        var v = Self.view([])
        v.ports["r1"] = ViewPort(id: "r1", networkID: "n1", macAddress: "fa:16:3e:00:00:09", fixedIPs: ["10.0.0.1"], deviceOwner: "network:router_interface")
        v.ports["p2"] = ViewPort(id: "p2", networkID: "n1", macAddress: "fa:16:3e:00:00:02", fixedIPs: ["10.0.0.6"], adminStateUp: false)
        let planner = AttachmentPlanner(extensions: [.bagpipe, .bagpipeBGPVPN], dataplane: .linux)
        let plugged: [String: PortPlug] = ["p1": .linux(tap: "tapp1", bridge: "brqn1"), "r1": .linux(tap: "tapr1", bridge: "brqn1"), "p2": .linux(tap: "tapp2", bridge: "brqn1")]
        #expect(planner.plan(v, plugged: plugged).map(\.key.portID) == ["p1"])
    }

    @Test func aNetworkThatIsNotVXLANHasNoEVPN() {
        var v = Self.view([])
        v.networks["n1"] = ViewNetwork(id: "n1", networkType: "vlan", segmentationID: 100)
        let planner = AttachmentPlanner(extensions: [.bagpipe], dataplane: .linux)
        #expect(planner.plan(v, plugged: ["p1": .linux(tap: "tapp1", bridge: "brqn1")]).isEmpty)
    }

    @Test func theOVSGatewayRulesFollowTheIPVPNAttachments() {
        let a = NetworkAssociationInfo(
            id: "a", bgpvpn: BGPVPNInfo(id: "v1", type: .l3, routeTargets: ["64512:1"]), networkID: "n1",
            subnets: [SubnetInfo(id: "s1", cidr: "10.0.0.0/24", gatewayIP: "10.0.0.1", gatewayMAC: "fa:16:3e:aa:bb:cc")])
        let planner = AttachmentPlanner(extensions: [.bagpipe, .bagpipeBGPVPN], dataplane: .ovs(OVSPatchPorts(mplsFromTun: 3, mplsToInt: 4)))
        let plan = planner.plan(Self.view([a]), plugged: ["p1": .ovs(vlan: 12)])
        #expect(GatewayRedirect.plan(plan) == [12: GatewayRedirect(gatewayIP: "10.0.0.1", routerMAC: "fa:16:3e:aa:bb:cc")])
        #expect(GatewayRedirect.plan(planner.plan(Self.view([]), plugged: ["p1": .ovs(vlan: 12)])).isEmpty)
    }
}
