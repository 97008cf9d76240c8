import AgentCore
import AgentService
import BagpipeLab
import Foundation
import NeutronModel
import Testing

/// The ML2 application on Linux, port status, bagpipe-bgp restarts, failures and the agent's own
/// restart (reference §1.2, §2.6, §2.7), against a real controller and the recording bagpipe-bgp.
@Suite(.serialized) struct AgentLifecycleTests {
    static func linuxHarness(_ extensions: Set<AgentExtension> = [.bagpipe, .bagpipeBGPVPN]) async throws -> AgentHarness {
        let h = try await AgentHarness(extensions: extensions, dataplane: .linux)
        h.start()
        return h
    }

    func portStatus(_ h: AgentHarness, _ id: String) async throws -> String? {
        try await h.controller.request(.GET, "/v2.0/ports/\(id)", token: h.admin).json?["port"]?["status"]?.stringValue
    }

    @Test func aNetworkIsAnEVPNWithOneRouteTargetPerASAndThePortIsReportedActiveThenDown() async throws {
        let h = try await AgentHarness(extensions: [.bagpipe], dataplane: .linux)
        h.configuration.asNumbers = [64512, 65000]
        await h.restartAgent()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1100, cidr: "10.11.0.0/24")
        let vm = VM(try await h.port(net))
        #expect(try await portStatus(h, vm.id) == "DOWN")
        h.plugger.plug(vm.id, .linux(tap: vm.tap, bridge: vm.bridge))
        try await h.settle()
        let evpn = Expected.linuxEVPN(vm, vni: 1100, rts: ["64512:1100", "65000:1100"])
        expectBodies(h.bagpipe.calls, attaches: [evpn])
        #expect(try await eventually { try await portStatus(h, vm.id) == "ACTIVE" })
        // The interface goes: detached, and DOWN.
        let mark = h.bagpipe.calls.count
        h.plugger.unplug(vm.id)
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), detaches: [Expected.detach(of: evpn)])
        #expect(try await eventually { try await portStatus(h, vm.id) == "DOWN" })
    }

    @Test func onLinuxTheIPVPNStitchesTheNetworksEVPNAndComesAfterIt() async throws {
        let h = try await Self.linuxHarness()
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1101, cidr: "10.11.0.0/24")
        let vm = VM(try await h.port(net))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = try await h.associate(vpn, network: net)
        h.plugger.plug(vm.id, .linux(tap: vm.tap, bridge: vm.bridge))
        try await h.settle()
        let evpn = Expected.linuxEVPN(vm, vni: 1101, rts: ["64512:1101"])
        let ipvpn = Expected.linuxIPVPN(vm, gateway: "10.11.0.1", imports: ["64512:1"], exports: ["64512:1"])
        expectBodies(h.bagpipe.calls, attaches: [evpn, ipvpn])
        expectOrder(h.bagpipe.calls)
        #expect(h.bagpipe.calls.first?.instance == "evpn_\(net)")
    }

    /// Two networks, both plugged, with a BGPVPN on one: what a replay must send again.
    func twoPortsAttached(_ h: AgentHarness) async throws -> (VM, VM, [JSONObject]) {
        let (net1, _) = try await h.network(vni: 1102, cidr: "10.12.0.0/24")
        let (net2, _) = try await h.network(vni: 1103, cidr: "10.13.0.0/24")
        let vm1 = VM(try await h.port(net1)), vm2 = VM(try await h.port(net2))
        let vpn = try await h.bgpvpn(#""route_targets": ["64512:1"]"#)
        _ = try await h.associate(vpn, network: net1)
        for vm in [vm1, vm2] { h.plugger.plug(vm.id, .linux(tap: vm.tap, bridge: vm.bridge)) }
        try await h.settle()
        let all = [
            Expected.linuxEVPN(vm1, vni: 1102, rts: ["64512:1102"]), Expected.linuxEVPN(vm2, vni: 1103, rts: ["64512:1103"]),
            Expected.linuxIPVPN(vm1, gateway: "10.12.0.1", imports: ["64512:1"], exports: ["64512:1"]),
        ]
        expectBodies(h.bagpipe.calls, attaches: all)
        return (vm1, vm2, all)
    }

    @Test func aBagpipeBGPRestartIsDetectedByItsNewNumberAndEverythingIsSentAgain() async throws {
        let h = try await Self.linuxHarness()
        defer { h.stop() }
        let (_, _, all) = try await twoPortsAttached(h)
        let mark = h.bagpipe.calls.count
        // A number above 2^64: compared as text.
        h.bagpipe.state.withLockedValue { $0.ping = "340282366920938463463374607431768211454" }
        #expect(try await eventually { h.bagpipe.calls.count >= mark + all.count })
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), attaches: all)
        expectOrder(h.bagpipe.calls(since: mark))
    }

    @Test func aBagpipeBGPThatWasDownAndAnswersWithTheSameNumberIsUpAgainAndReplayed() async throws {
        let h = try await Self.linuxHarness()
        defer { h.stop() }
        let (_, _, all) = try await twoPortsAttached(h)
        h.bagpipe.state.withLockedValue { $0.pingFails = true }
        let agent = h.agent
        #expect(try await eventually { await !agent.bagpipeBGPIsUp })
        let mark = h.bagpipe.calls.count
        h.bagpipe.state.withLockedValue { $0.pingFails = false }
        #expect(try await eventually { h.bagpipe.calls.count >= mark + all.count })
        try await h.settle()
        expectBodies(h.bagpipe.calls(since: mark), attaches: all)
    }

    @Test func aFailedDetachDoesNotBlockTheAttachesThatFollowAndIsRetried() async throws {
        let h = try await Self.linuxHarness([.bagpipe])
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1104, cidr: "10.14.0.0/24")
        let vm1 = VM(try await h.port(net))
        h.plugger.plug(vm1.id, .linux(tap: vm1.tap, bridge: vm1.bridge))
        try await h.settle()
        h.bagpipe.state.withLockedValue { $0.failingPaths = ["/detach_localport"] }
        let mark = h.bagpipe.calls.count
        try await h.delete("/v2.0/ports/\(vm1.id)")
        let vm2 = VM(try await h.port(net))
        h.plugger.plug(vm2.id, .linux(tap: vm2.tap, bridge: vm2.bridge))
        let attached = Expected.linuxEVPN(vm2, vni: 1104, rts: ["64512:1104"])
        // vm2 is attached while vm1's detach keeps failing, and that detach is tried more than once.
        #expect(try await eventually {
            let calls = h.bagpipe.calls(since: mark)
            return calls.contains { $0.isAttach && sameBody($0.body, attached) } && calls.filter { !$0.isAttach }.count >= 2
        }, "\(h.bagpipe.calls(since: mark))")
        h.bagpipe.state.withLockedValue { $0.failingPaths = [] }
        try await h.settle()
        let detach = Expected.detach(of: Expected.linuxEVPN(vm1, vni: 1104, rts: []))
        #expect(h.bagpipe.calls(since: mark).filter { !$0.isAttach }.allSatisfy { sameBody($0.body, detach) })
        #expect(await h.agent.appliedAttachments.map(\.key.portID) == [vm2.id])
    }

    @Test func aRestartedAgentDetachesOnlyWhatNoLongerBelongs() async throws {
        let h = try await Self.linuxHarness()
        defer { h.stop() }
        let (vm1, vm2, all) = try await twoPortsAttached(h)
        // What bagpipe-bgp's looking glass shows of these attachments.
        h.bagpipe.state.withLockedValue { s in
            for (i, vm) in [vm1, vm2].enumerated() {
                s.lookingGlass["evpn_\(vm.network)"] = ("EVI-\(i + 1)", .object(object([
                    (vm.tap): .object(object(["endpoints": .array([.object(object(["mac_address": .string(vm.mac), "ip_address": .string(vm.ip), "description": nil]))])])),
                ])))
            }
            s.lookingGlass["ipvpn_\(vm1.network)"] = ("VRF-3", .object(object([
                "ipvpn3-evpn1": .object(object(["endpoints": .array([.object(object(["mac_address": .string(vm1.mac), "ip_address": .string(vm1.ip), "description": .object(object(["port": .string(vm1.id)]))]))])])),
            ])))
        }
        await h.stopAgent()
        // While the agent is away, vm2's port is deleted.
        try await h.delete("/v2.0/ports/\(vm2.id)")
        let mark = h.bagpipe.calls.count
        await h.restartAgent()
        try await h.settle()
        let since = h.bagpipe.calls(since: mark)
        let detaches = since.filter { !$0.isAttach }
        #expect(Set(detaches.map { canonical(.object($0.body)) }).count == 1 && detaches.first?.instance == "evpn_\(vm2.network)" && detaches.first?.body["mac_address"]?.stringValue == vm2.mac, "\(since)")
        // vm1's attachments are sent again (idempotent), never detached.
        expectBodies(since.filter(\.isAttach), attaches: Array(all.filter { $0["mac_address"]?.stringValue == vm1.mac }))
    }

    @Test func theAgentCatchesUpAfterTheControllerWasAway() async throws {
        let h = try await Self.linuxHarness([.bagpipe])
        defer { h.stop() }
        let (net, _) = try await h.network(vni: 1105, cidr: "10.15.0.0/24")
        let vm1 = VM(try await h.port(net))
        h.plugger.plug(vm1.id, .linux(tap: vm1.tap, bridge: vm1.bridge))
        try await h.settle()
        // The controller restarts on its database; the agent's watch breaks and resumes.
        try await h.restartController()
        let vm2 = VM(try await h.port(net))
        h.plugger.plug(vm2.id, .linux(tap: vm2.tap, bridge: vm2.bridge))
        try await h.settle()
        #expect(h.bagpipe.calls.contains { $0.isAttach && sameBody($0.body, Expected.linuxEVPN(vm2, vni: 1105, rts: ["64512:1105"])) })
        #expect(h.bagpipe.calls.filter { !$0.isAttach }.isEmpty, "nothing detached: \(h.bagpipe.calls)")
    }
}

@Suite struct ViewCacheTests {
    static let port = JSON.object(object([
        "id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": .array([.object(object(["ip_address": "10.0.0.3"]))]), "device_owner": "compute:nova",
    ]))

    @Test func aDuplicateEventChangesNothing() throws {
        var cache = ViewCache()
        try cache.load(view: .object(object(["resource_version": 3, "objects": .array([])])))
        let added = JSON.object(object(["type": "ADDED", "resource_version": 4, "kind": "port", "id": "p1", "object": Self.port]))
        #expect(try cache.apply(event: added) == .changed(ResourceKey(.port, "p1"), Self.port.objectValue))
        let once = cache
        #expect(try cache.apply(event: added) == .unchanged)
        #expect(cache == once)
        let deleted = JSON.object(object(["type": "DELETED", "resource_version": 5, "kind": "port", "id": "p1"]))
        #expect(try cache.apply(event: deleted) == .changed(ResourceKey(.port, "p1"), nil))
        #expect(try cache.apply(event: deleted) == .unchanged)
        #expect(cache.objects.isEmpty && cache.version == 5)
        #expect(try cache.apply(event: .object(object(["type": "BOOKMARK", "resource_version": 9]))) == .unchanged)
        #expect(cache.version == 9)
    }

    @Test func aBadEventIsNamed() {
        var cache = ViewCache()
        #expect(throws: ViewError.self) { try cache.apply(event: .object(object(["type": "ADDED", "resource_version": 1, "kind": "port"]))) }
        #expect(throws: ViewError.self) { try cache.apply(event: .object(object(["type": "RENAMED", "resource_version": 1, "kind": "port", "id": "x"]))) }
    }

    @Test func anObjectThatDoesNotReadIsLeftOutAndNamed() throws {
        var cache = ViewCache()
        let bad = JSON.object(object(["kind": "port", "id": "p2", "object": .object(object(["id": "p2"]))]))
        try cache.load(view: .object(object(["resource_version": 1, "objects": .array([.object(object(["kind": "port", "id": "p1", "object": Self.port])), bad])])))
        let (model, skipped) = cache.model()
        #expect(Array(model.ports.keys) == ["p1"])
        #expect(skipped.count == 1 && skipped[0].contains("p2") && skipped[0].contains("network_id"), "\(skipped)")
    }
}
