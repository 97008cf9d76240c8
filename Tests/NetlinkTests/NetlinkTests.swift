import BagpipeLab
import BGPWire
import Netlink
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// rtnetlink against the kernel, inside a network namespace of the test's own: every object is
/// created through `Netlink`, read back by a dump and by `ip`/`bridge`, and removed.
@Suite(.serialized) struct NetlinkTests {
    @Test func linksAddressesFDBNeighboursRoutesAndRules() throws {
        let spaces = TestNamespaces()
        defer { spaces.remove() }
        let ns = try spaces.add("nltest")
        let nl = try NetlinkSocket(namespace: ns)
        let lo = try #require(try nl.link(named: "lo"))
        try nl.perform(AddressRequests.add(IPPrefix("192.0.2.1/32")!, device: lo.index, deviceName: "lo"))
        #expect(try nl.addresses(device: lo.index).contains { $0.prefix == IPPrefix("192.0.2.1/32")! })

        // A bridge and a VXLAN device (per VNI), tagged; a veth pair whose one end joins the bridge.
        try nl.performAll(
            LinkRequests.createBridge("br-test", alias: "bagpipe:test")
                + LinkRequests.createVXLAN("vx-test", VXLANOptions(vni: 5001, local: IPv4Address(192, 0, 2, 1), port: 4789, proxy: true), alias: "bagpipe:test")
                + LinkRequests.createVeth("tap-a", peer: "tap-b", alias: "bagpipe:test", mtu: 9000))
        var links = try nl.links()
        let bridge = try #require(links.first { $0.name == "br-test" }), vxlan = try #require(links.first { $0.name == "vx-test" }), tap = try #require(links.first { $0.name == "tap-a" })
        #expect(bridge.kind == "bridge" && bridge.isUp && bridge.alias == "bagpipe:test")
        #expect(vxlan.kind == "vxlan" && vxlan.vxlanID == 5001 && vxlan.vxlanPort == 4789 && !vxlan.vxlanExternal)
        #expect(tap.kind == "veth" && tap.mtu == 9000)
        try nl.performAll([
            LinkRequests.set(vxlan.index, name: "vx-test", master: bridge.index), LinkRequests.set(tap.index, name: "tap-a", up: true, master: bridge.index),
        ])
        links = try nl.links()
        #expect(links.first { $0.name == "tap-a" }?.master == bridge.index && links.first { $0.name == "vx-test" }?.master == bridge.index)
        #expect(try spaces.exec(ns, ["ip", "-d", "link", "show", "vx-test"]).contains("vxlan id 5001"))

        // FDB: a remote MAC on the VXLAN device (and the bridge), two flood destinations appended.
        let mac = MACAddress("52:54:00:00:00:99")!
        try nl.performAll([
            NeighbourRequests.fdb(mac, device: vxlan.index, deviceName: "vx-test", destination: IPv4Address(192, 0, 2, 2), vni: 5001, master: false),
            NeighbourRequests.fdb(mac, device: vxlan.index, deviceName: "vx-test", master: true),
            NeighbourRequests.fdb(MACAddress(0), device: vxlan.index, deviceName: "vx-test", destination: IPv4Address(192, 0, 2, 2), master: false, append: true),
            NeighbourRequests.fdb(MACAddress(0), device: vxlan.index, deviceName: "vx-test", destination: IPv4Address(192, 0, 2, 3), master: false, append: true),
            NeighbourRequests.replace(.v4(IPv4Address(10, 0, 0, 99)), mac: mac, device: vxlan.index, deviceName: "vx-test"),
        ])
        var fdb = try nl.fdbEntries(device: vxlan.index)
        // The kernel leaves out a VNI that is the device's own.
        #expect(fdb.contains { $0.mac == mac && $0.isSelf && $0.destination == IPv4Address(192, 0, 2, 2) && ($0.vni ?? 5001) == 5001 })
        #expect(fdb.contains { $0.mac == mac && $0.isMaster })
        #expect(Set(fdb.filter { $0.mac == MACAddress(0) }.compactMap(\.destination)) == [IPv4Address(192, 0, 2, 2), IPv4Address(192, 0, 2, 3)])
        #expect(try spaces.exec(ns, ["bridge", "fdb", "show", "dev", "vx-test"]).contains("52:54:00:00:00:99 dst 192.0.2.2 self permanent"))
        #expect(try nl.neighbours(device: vxlan.index).contains { $0.ip == .v4(IPv4Address(10, 0, 0, 99)) && $0.mac == mac })
        // The MAC moves: one replace re-points it.
        try nl.perform(NeighbourRequests.fdb(mac, device: vxlan.index, deviceName: "vx-test", destination: IPv4Address(192, 0, 2, 3), vni: 5001, master: false))
        fdb = try nl.fdbEntries(device: vxlan.index)
        #expect(fdb.filter { $0.mac == mac && $0.isSelf }.map(\.destination) == [IPv4Address(192, 0, 2, 3)])
        try nl.performAll([
            NeighbourRequests.deleteFDB(mac, device: vxlan.index, deviceName: "vx-test", destination: IPv4Address(192, 0, 2, 3), master: false),
            NeighbourRequests.deleteFDB(MACAddress(0), device: vxlan.index, deviceName: "vx-test", destination: IPv4Address(192, 0, 2, 2), master: false),
        ])
        fdb = try nl.fdbEntries(device: vxlan.index)
        #expect(!fdb.contains { $0.mac == mac && $0.isSelf } && fdb.filter { $0.mac == MACAddress(0) }.compactMap(\.destination) == [IPv4Address(192, 0, 2, 3)])

        // Routes with lightweight-tunnel encapsulation on an external VXLAN device, one and several next hops.
        try nl.performAll(LinkRequests.createVXLAN("vx-ext", VXLANOptions(vni: nil, local: IPv4Address(192, 0, 2, 1), port: 4790), alias: "bagpipe:test"))
        let ext = try #require(try nl.link(named: "vx-ext"))
        #expect(ext.vxlanExternal)
        let hop = { (pe: IPv4Address) in RouteNextHop(device: ext.index, gateway: .v4(pe), tunnel: (5002, pe), onLink: true) }
        try nl.performAll([
            RouteRequests.replace(Route(table: 1001, prefix: IPPrefix("10.1.0.0/24")!, nextHops: [hop(IPv4Address(192, 0, 2, 2))])),
            RouteRequests.replace(Route(table: 1001, prefix: IPPrefix("10.2.0.0/24")!, nextHops: [hop(IPv4Address(192, 0, 2, 2)), hop(IPv4Address(192, 0, 2, 3))])),
            RouteRequests.replace(Route(table: 1001, prefix: IPPrefix("10.3.0.5/32")!, nextHops: [RouteNextHop(device: tap.index)])),
        ])
        let routes = try nl.routes(table: 1001)
        #expect(routes.first { $0.prefix == IPPrefix("10.1.0.0/24")! }?.nextHops.first?.tunnel?.id == 5002)
        #expect(routes.first { $0.prefix == IPPrefix("10.2.0.0/24")! }?.nextHops.count == 2)
        #expect(routes.allSatisfy { $0.protocolID == bagpipeRouteProtocol })
        let shown = try spaces.exec(ns, ["ip", "route", "show", "table", "1001"])
        #expect(shown.contains("encap ip id 5002") && shown.contains("dst 192.0.2.2") && shown.contains("nexthop"), "\(shown)")
        try nl.perform(RouteRequests.delete(Route(table: 1001, prefix: IPPrefix("10.1.0.0/24")!, nextHops: [])))
        #expect(try nl.routes(table: 1001).count == 2)

        // Rules: by input interface, by VXLAN tunnel id, by a 5-tuple classifier.
        let rules = [
            Rule(priority: 1000, table: 1001, inputInterface: "tap-a"),
            Rule(priority: 1001, table: 1001, tunnelID: 5002),
            Rule(priority: 999, table: 1002, inputInterface: "tap-a", destination: IPPrefix("10.9.0.0/16")!, ipProtocol: 6, destinationPorts: 80...80),
        ]
        try nl.performAll(rules.map(RuleRequests.add))
        let read = try nl.rules().filter { $0.protocolID == bagpipeRouteProtocol }
        #expect(Set(read) == Set(rules), "\(read)")
        #expect(try spaces.exec(ns, ["ip", "rule", "show"]).contains("tun_id 5002 lookup 1001"))
        try nl.performAll(rules.map(RuleRequests.delete))
        #expect(try nl.rules().filter { $0.protocolID == bagpipeRouteProtocol }.isEmpty)

        // Errors name the object and the kernel's errno; the others of the batch still happen.
        let results = nl.perform([LinkRequests.delete(99999, name: "no-such-link"), LinkRequests.delete(tap.index, name: "tap-a")])
        guard case .failure(let e) = results[0] else { Issue.record("deleting a missing link succeeded"); return }
        #expect(e.what == "delete link no-such-link" && e.errno == ENODEV && e.description.contains("No such device"))
        if case .failure(let e) = results[1] { Issue.record("\(e)") }
        #expect(try nl.link(named: "tap-a") == nil && nl.link(named: "tap-b") == nil)
    }

    /// A thousand FDB entries in one call: batched requests, every one acknowledged.
    @Test func batchesManyRequests() throws {
        let spaces = TestNamespaces()
        defer { spaces.remove() }
        let ns = try spaces.add("nlbatch")
        let nl = try NetlinkSocket(namespace: ns)
        try nl.performAll(LinkRequests.createVXLAN("vx-batch", VXLANOptions(vni: 7, local: IPv4Address(127, 0, 0, 1), port: 4789), alias: nil))
        let vx = try #require(try nl.link(named: "vx-batch"))
        let requests = (1...1000).map { NeighbourRequests.fdb(MACAddress(0x5254_0000_0000 + UInt64($0)), device: vx.index, deviceName: "vx-batch", destination: IPv4Address(10, 0, UInt8($0 >> 8), UInt8($0 & 0xFF)), vni: 7, master: false) }
        let results = nl.perform(requests)
        #expect(results.count == 1000 && results.allSatisfy { if case .success = $0 { true } else { false } })
        #expect(try nl.fdbEntries(device: vx.index).filter { $0.isSelf && $0.destination != nil }.count == 1000)
    }
}
