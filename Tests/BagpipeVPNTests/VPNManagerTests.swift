import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeAPI
import Dataplane
import Foundation
import Testing
@testable import BagpipeVPN

/// The attach/detach rules (reference §1.5-1.8), as behaviours 8-13 and 16-26 of the original's
/// unit tests name them, on a real engine with the dummy drivers.
@Suite struct VPNManagerTests {
    static let local = IPv4Address(192, 0, 2, 1)

    final class Host {
        let engine: RouteEngine
        let evpnDriver = DummyDriver(vpnType: .evpn, localAddress: VPNManagerTests.local)
        let ipvpnDriver = DummyDriver(vpnType: .ipvpn, localAddress: VPNManagerTests.local, directions: [.both, .toPort, .fromPort])
        let manager: VPNManager
        let peer: WorkerID
        var sent: [AddressFamily: [RouteKey: (NLRIElement, AttributeSet)]] = [:]
        var announcements = 0, withdrawals = 0

        init(instanceIDs: IdentifierAllocator? = nil) {
            let configuration = VPNManager.Configuration(bgpAddress: VPNManagerTests.local, salt: "host-a")
            let drivers: [VPNType: any DataplaneDriver] = [.evpn: evpnDriver, .ipvpn: ipvpnDriver]
            let engine = RouteEngine(configuration: .init(localAS: 64512, routerID: VPNManagerTests.local))
            self.engine = engine
            if let instanceIDs {
                manager = VPNManager(configuration: configuration, engine: engine, drivers: drivers, instanceIDs: instanceIDs)
            } else {
                manager = VPNManager(configuration: configuration, engine: engine, drivers: drivers)
            }
            peer = engine.addPeer(name: "rr", source: PathSource(kind: .peer(external: false, client: false), routerID: IPv4Address(192, 0, 2, 100), address: IPv6Address(high: 0, low: 100)))
            engine.peerEstablished(peer, families: [.evpn, .ipv4VPN])
        }

        func request(_ fields: [String: Any]) throws -> JSONValue {
            try JSONValue(parsing: Array(JSONSerialization.data(withJSONObject: fields)))
        }

        func attach(_ fields: [String: Any]) throws(VPNError) {
            guard let json = try? request(fields) else { throw VPNError("bad test JSON") }
            try manager.attach(try AttachRequest(json: json))
            drain()
        }

        func detach(_ fields: [String: Any]) throws(VPNError) {
            guard let json = try? request(fields) else { throw VPNError("bad test JSON") }
            try manager.detach(try DetachRequest(json: json))
            drain()
        }

        func drain() {
            for (w, e) in engine.takeLocalEvents() { manager.deliver(w, e) }
            while let b = engine.takePending(peer: peer, limit: 100) {
                for (set, elements) in b.announce { for e in elements { sent[b.family, default: [:]][RouteKey(e)] = (e, set) }; announcements += elements.count }
                for e in b.withdraw { sent[b.family]?[RouteKey(e)] = nil }
                withdrawals += b.withdraw.count
            }
        }

        /// MAC/IP routes we advertise.
        var macRoutes: [EVPNMACIPRoute] { (sent[.evpn] ?? [:]).values.compactMap { if case .evpn(.macIPAdvertisement(let r)) = $0.0.nlri { r } else { nil } } }
        var vpnRoutes: [(VPNPrefix, AttributeSet)] { (sent[.ipv4VPN] ?? [:]).values.compactMap { if case .vpnPrefix(let p) = $0.0.nlri { (p, $0.1) } else { nil } } }
        func evpnDummy(_ id: String) -> DummyInstance? { manager.instance(id).flatMap { evpnDriver.instances[$0.id] } }
        func ipvpnDummy(_ id: String) -> DummyInstance? { manager.instance(id).flatMap { ipvpnDriver.instances[$0.id] } }
    }

    static func evpn(_ mac: String = "52:54:00:00:00:01", ip: String? = "10.0.0.1", port: Any = "tap1", id: String = "net-1", extra: [String: Any] = [:]) -> [String: Any] {
        var f: [String: Any] = ["vpn_type": "evpn", "vpn_instance_id": id, "mac_address": mac, "local_port": port, "import_rt": ["64512:1"], "export_rt": ["64512:1"]]
        if let ip { f["ip_address"] = ip }
        return f.merging(extra) { $1 }
    }

    static func ipvpn(_ mac: String = "52:54:00:00:00:01", ip: String = "10.0.0.5", port: Any = "tap1", extra: [String: Any] = [:]) -> [String: Any] {
        ["vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": mac, "local_port": port, "import_rt": ["64512:2"], "export_rt": ["64512:2"], "ip_address": ip, "gateway_ip": "10.0.0.1"].merging(extra) { $1 }
    }

    @Test func behaviour8ForcedVNIIsTheLabelAndIsNotReleased() throws {
        let h = Host()
        try h.attach(Self.evpn(extra: ["vni": 5000]))
        #expect(h.manager.instance("net-1")?.label == 5000 && h.evpnDummy("net-1")?.label == 5000)
        try h.detach(Self.evpn())
        #expect(h.manager.instance("net-1") == nil)
        #expect(!h.manager.labels.isAllocated(5000), "a forced VNI never came from the allocator")
    }

    @Test func behaviours9And11AllocatedLabelIsNonZeroAndReleasedOnStop() throws {
        let h = Host()
        try h.attach(Self.evpn())
        let label = try #require(h.manager.instance("net-1")?.label)
        #expect(label >= 16 && h.manager.labels.isAllocated(label))
        try h.detach(Self.evpn())
        #expect(!h.manager.labels.isAllocated(label))
    }

    @Test func behaviour10ForcedVNIUsedTwice() throws {
        let h = Host()
        try h.attach(Self.evpn(extra: ["vni": 5000]))
        #expect(throws: VPNError("A VPN instance using vni 5000 already exists.")) { try h.attach(Self.evpn(id: "net-2", extra: ["vni": 5000])) }
        #expect(h.manager.instance("net-2") == nil)
        try h.detach(Self.evpn())
        try h.attach(Self.evpn(id: "net-2", extra: ["vni": 5000]))
        #expect(h.manager.instance("net-2")?.label == 5000)
    }

    @Test func behaviour12VNIAndLinuxBridgeReachTheDataplaneAtCreation() throws {
        let h = Host()
        try h.attach(Self.evpn(extra: ["vni": 5000, "linuxbr": "br-test"]))
        #expect(h.evpnDummy("net-1")?.options == InstanceOptions(vni: 5000, linuxbr: "br-test"))
        try h.attach(Self.evpn(id: "net-2"))
        #expect(h.evpnDummy("net-2")?.options == InstanceOptions(), "no vni when none was given")
        // Instance-level parameters are fixed by the creating attach (quirk Q5, kept).
        try h.attach(Self.evpn("52:54:00:00:00:02", ip: "10.0.0.2", extra: ["vni": 5000, "linuxbr": "br-other"]))
        #expect(h.evpnDummy("net-1")?.options.linuxbr == "br-test")
    }

    @Test func behaviour13InstanceIdsUniqueAcrossCyclesAndExhaustion() throws {
        let h = Host(instanceIDs: IdentifierAllocator(name: "VPN instance id", range: 1...3, reuses: false))
        var seen = Set<UInt32>()
        for _ in 0..<3 {
            try h.attach(Self.evpn())
            seen.insert(try #require(h.manager.instance("net-1")?.id))
            try h.detach(Self.evpn())
        }
        #expect(seen.count == 3)
        do {
            try h.attach(Self.evpn())
            Issue.record("attached beyond the last instance id")
        } catch {
            #expect(error.kind == .failed && error.message.contains("VPN instance id"))
        }
    }

    @Test func behaviour16SameEndpointTwiceIsPluggedOnce() throws {
        let h = Host()
        try h.attach(Self.evpn())
        try h.attach(Self.evpn(extra: ["local_pref": 300]))
        #expect(h.evpnDummy("net-1")?.plugged.count == 1)
        #expect(h.macRoutes.count == 1)
        let route = try #require(h.sent[.evpn]?.values.first { if case .evpn(.macIPAdvertisement) = $0.0.nlri { true } else { false } })
        #expect(route.1.attributes.localPreference == 300, "the refresh replaced the route")
    }

    @Test func quirkQ6AnAddressWithOrWithoutSlash32IsOneEndpoint() throws {
        let h = Host()
        try h.attach(Self.evpn(ip: "10.0.0.1"))
        try h.attach(Self.evpn(ip: "10.0.0.1/32"))
        #expect(h.evpnDummy("net-1")?.plugged.count == 1 && h.macRoutes.count == 1)
        #expect(throws: VPNError.self) { try h.attach(Self.evpn("52:54:00:00:00:02", ip: "10.0.0.1/32")) }
        try h.detach(Self.evpn(ip: "10.0.0.1/32"))
        #expect(h.manager.instance("net-1") == nil)
    }

    @Test func behaviour17AnIPAlreadyUsedByAnotherMAC() throws {
        let h = Host()
        try h.attach(Self.evpn())
        #expect(throws: VPNError.self) { try h.attach(Self.evpn("52:54:00:00:00:02")) }
        #expect(h.evpnDummy("net-1")?.plugged.count == 1 && h.macRoutes.count == 1)
    }

    @Test func behaviours18And19MACsAndIPsOnPorts() throws {
        let h = Host()
        try h.attach(Self.evpn(ip: "10.0.0.1"))
        try h.attach(Self.evpn(ip: "10.0.0.2"))
        try h.attach(Self.evpn("52:54:00:00:00:02", ip: "10.0.0.3"))
        try h.attach(Self.evpn("52:54:00:00:00:03", ip: "10.0.0.4", port: "tap2"))
        #expect(h.evpnDummy("net-1")?.plugged.count == 4 && h.macRoutes.count == 4)
    }

    @Test func behaviour20SameMACOnAnotherPort() throws {
        let h = Host()
        try h.attach(Self.evpn())
        for ip in ["10.0.0.1", "10.0.0.9"] {
            #expect(throws: VPNError.self) { try h.attach(Self.evpn(ip: ip, port: "tap2")) }
        }
        #expect(h.evpnDummy("net-1")?.plugged.map(\.port.linuxif) == ["tap1"])
    }

    @Test func behaviours21And23UnplugAndTheLastEndpointOfAPort() throws {
        let h = Host()
        try h.attach(Self.evpn(ip: "10.0.0.1"))
        try h.attach(Self.evpn("52:54:00:00:00:02", ip: "10.0.0.2"))
        try h.detach(Self.evpn(ip: "10.0.0.1"))
        #expect(h.evpnDummy("net-1")?.calls.last?.hasSuffix("last=false") == true)
        let dummy = try #require(h.evpnDummy("net-1"))
        try h.detach(Self.evpn("52:54:00:00:00:02", ip: "10.0.0.2"))
        #expect(dummy.calls.suffix(2).first?.hasSuffix("last=true") == true && dummy.calls.last == "cleanup")
        #expect(h.manager.instance("net-1") == nil && (h.sent[.evpn] ?? [:]).isEmpty, "the last detach stops the instance and withdraws everything")
    }

    @Test func behaviour22WrongMACOrUnknownIPChangesNothing() throws {
        let h = Host()
        try h.attach(Self.evpn())
        let calls = h.evpnDummy("net-1")?.calls.count
        #expect(throws: VPNError.self) { try h.detach(Self.evpn("52:54:00:00:00:09", ip: "10.0.0.1")) }
        #expect(throws: VPNError.self) { try h.detach(Self.evpn(ip: "10.0.0.7")) }
        #expect(h.evpnDummy("net-1")?.calls.count == calls && h.macRoutes.count == 1)
        #expect(throws: VPNError("VPN nope could not be found")) { try h.detach(Self.evpn(id: "nope")) }
    }

    @Test func behaviours24And25MACOnlyEndpoints() throws {
        let h = Host()
        try h.attach(Self.evpn(ip: nil))
        try h.attach(Self.evpn(ip: "10.0.0.1"))
        try h.attach(Self.evpn(ip: "10.0.0.2"))
        #expect(h.macRoutes.count == 2 && h.macRoutes.allSatisfy { $0.ip != nil }, "the MAC-only route gave way")
        try h.detach(Self.evpn(ip: nil))
        #expect(h.macRoutes.isEmpty && h.manager.instance("net-1") == nil)
        // MAC-only alone: one route, then none.
        let g = Host()
        try g.attach(Self.evpn(ip: nil))
        #expect(g.macRoutes.count == 1)
        try g.detach(Self.evpn(ip: nil))
        #expect(g.macRoutes.isEmpty)
    }

    @Test func behaviour26ExportChangeReadvertisesImportOnlyDoesNot() throws {
        let h = Host()
        try h.attach(Self.ipvpn())
        let before = h.announcements
        try h.attach(Self.ipvpn(extra: ["import_rt": ["64512:2", "64512:3"]]))
        #expect(h.announcements == before, "import-only change: nothing sent again")
        try h.attach(Self.ipvpn(extra: ["export_rt": ["64512:4"]]))
        let route = try #require(h.vpnRoutes.first)
        #expect(route.1.routeTargetKeys == [RouteTargetKey(.routeTarget(as: 64512, 4))])
    }

    @Test func behaviour14StopStopsAndForgetsEveryInstance() throws {
        let h = Host()
        try h.attach(Self.evpn())
        try h.attach(Self.ipvpn())
        let (evi, vrf) = (try #require(h.evpnDummy("net-1")), try #require(h.ipvpnDummy("vrf-1")))
        h.manager.stopAll()
        h.drain()
        #expect(h.manager.externalIDs.isEmpty && evi.cleanedUp && vrf.cleanedUp)
        #expect((h.sent[.evpn] ?? [:]).isEmpty && (h.sent[.ipv4VPN] ?? [:]).isEmpty)
    }

    @Test func behaviour28ToPortAdvertisesFromPortDoesNot() throws {
        let h = Host()
        try h.attach(Self.ipvpn(extra: ["direction": "to-port"]))
        #expect(h.ipvpnDummy("vrf-1")?.plugged.count == 1 && h.vpnRoutes.count == 1)
        try h.attach(Self.ipvpn("52:54:00:00:00:02", ip: "10.0.0.6", extra: ["direction": "from-port"]))
        #expect(h.ipvpnDummy("vrf-1")?.plugged.count == 2 && h.vpnRoutes.count == 1, "from-port: plugged, no route")
        // Quirk Q8: a from-port endpoint can be detached.
        try h.detach(Self.ipvpn("52:54:00:00:00:02", ip: "10.0.0.6"))
        #expect(h.ipvpnDummy("vrf-1")?.plugged.count == 1)
        // The E-VPN dummy driver forwards both ways only, as the original's.
        #expect(throws: VPNError("Unsupported direction: to-port")) { try h.attach(Self.evpn(extra: ["direction": "to-port"])) }
        #expect(h.manager.instance("net-1") == nil, "the refused first attach left no instance (Q17)")
    }

    @Test func ipvpnLabelsPerMACAndRDsForSubnets() throws {
        let h = Host()
        try h.attach(Self.ipvpn())
        try h.attach(Self.ipvpn("52:54:00:00:00:02", ip: "10.1.0.0/24", extra: ["advertise_subnet": true]))
        let routes = h.vpnRoutes.sorted { $0.0.prefix.length > $1.0.prefix.length }
        #expect(routes.count == 2)
        let vrf = try #require(h.manager.instance("vrf-1"))
        #expect(routes[0].0.routeDistinguisher == vrf.routeDistinguisher, "a /32: the instance RD")
        #expect(routes[1].0.routeDistinguisher != vrf.routeDistinguisher && routes[1].0.prefix.length == 24, "a subnet: its own RD")
        #expect(routes[0].0.labels.labels != routes[1].0.labels.labels, "a label per MAC")
        #expect(throws: VPNError.self) { try h.attach(Self.evpn(id: "vrf-1")) }
    }
}
