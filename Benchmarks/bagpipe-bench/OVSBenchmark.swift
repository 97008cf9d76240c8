import ArgumentParser
import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeDataplane
import BagpipeLab
import BagpipeVPN
import Dataplane
import Foundation

/// Issue 7, acceptance 5, on an Open vSwitch of its own (userspace datapath, in a namespace): the
/// rules and select groups of 1,000 remote prefixes of a VRF,
/// - the original's way: one `ovs-ofctl` process per group and one per rule;
/// - our `ovs` driver, a route at a time, the burst applied as one bundle (as the daemon does after
///   each burst of routes);
/// - the whole path: 1,000 VPNv4 routes into the engine, the VRF's best-route tracking, the driver.
struct OVSBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ovs", abstract: "OpenFlow rules for remote prefixes in bundles against one ovs-ofctl process per rule.")

    @Option(help: "Remote prefixes programmed.") var prefixes = 1_000

    func run() throws {
        guard OpenVSwitch.installed else { throw FDBBenchmark.BenchError("Open vSwitch is not installed (apt-get install openvswitch-switch)") }
        let spaces = TestNamespaces()
        defer { spaces.remove() }
        let ovs = try OpenVSwitch(namespace: try spaces.add("ovsbench"))
        defer { ovs.stop() }
        try ovs.addBridge("br-mpls")
        let client = OVSClient(environment: ovs.environment)
        let local = IPv4Address(192, 0, 2, 1)
        let pe = IPv4Address(192, 0, 2, 2)
        func prefix(_ i: Int, _ base: UInt8) -> IPPrefix { IPPrefix(.v4(IPv4Address(base, UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF), 0)), length: 24) }
        func ours(_ match: String) throws -> Int { try ovs.flows("br-mpls", match).count }

        // 1. One process per group and per rule, as the original's driver ran ovs-ofctl.
        var start = now()
        for i in 0..<prefixes {
            let g = 100_000 + i
            try ovs.ovs("ovs-ofctl", ["-O", "OpenFlow15", "add-group", "br-mpls", "group_id=\(g),type=select,selection_method=dp_hash,bucket=bucket_id:0,actions=push_mpls:0x8847,set_field:\(100 + i)->mpls_label,set_field:\(pe)->tun_dst,output:1"])
            try ovs.ovs("ovs-ofctl", ["-O", "OpenFlow15", "add-flow", "br-mpls", "table=2,priority=36760,reg0=99,ip,nw_dst=\(prefix(i, 11)) actions=group:\(g)"])
        }
        let processSeconds = now() - start
        guard try ours("table=2,reg0=99") == prefixes else { throw FDBBenchmark.BenchError("ovs-ofctl installed \(try ours("table=2,reg0=99")) rules") }
        let processRate = Double(prefixes) / processSeconds

        // 2. Our driver: setUp per route, one flush for the burst.
        let driver = try OVSIPVPNDriver(localAddress: local, options: ["reconcile_interval": "0"], ovs: client)
        try driver.initialize()
        let vrf = try driver.makeInstance(id: 1, externalID: "bench-driver", label: 16, options: InstanceOptions(gateway: IPv4Address(10, 0, 0, 1), prefixLength: 24))
        start = now()
        for i in 0..<prefixes {
            try vrf.setUp(RemoteEndpoint(destination: .prefix(prefix(i, 12)), remotePE: pe, label: UInt32(100 + i), encapsulations: [.gre], loadBalancingOrder: 0))
        }
        driver.flush()
        let driverSeconds = now() - start
        guard try ours("table=2,reg0=1") == prefixes else { throw FDBBenchmark.BenchError("the driver installed \(try ours("table=2,reg0=1")) rules") }
        vrf.cleanup()

        // 3. The whole path: VPNv4 routes from a peer, the VRF, the driver, the flush.
        let path = RoutePath(local: local, family: .ipv4VPN)
        let rt = ExtendedCommunity.routeTarget(as: 64512, 1)
        let instance = try IPVPNInstance(
            id: 2, externalID: "bench-routes", label: 17, routeDistinguisher: .ipv4(local, 2), importRTs: [rt], exportRTs: [rt], gateway: .v4(IPv4Address(10, 0, 0, 1)),
            prefixLength: 24, engine: path.engine, driver: driver, bgpAddress: local, salt: "bench")
        let attributes = RoutePath.attributes(rt, .gre, nextHop: pe)
        let changes: [RouteChange] = (0..<prefixes).map { i in
            let e = NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [UInt32(100 + i)]), routeDistinguisher: .ipv4(pe, 1), prefix: prefix(i, 13))))
            return .announce(RouteKey(e), e, attributes)
        }
        start = now()
        path.receive(changes, into: instance)
        driver.flush()
        let pathSeconds = now() - start
        guard try ours("table=2,reg0=2") == prefixes else { throw FDBBenchmark.BenchError("the route path installed \(try ours("table=2,reg0=2")) rules") }
        instance.stop()

        print("| what | prefixes (a select group and a rule each) | seconds | prefixes/s | vs one process per group and rule |")
        print("|---|---|---|---|---|")
        print("| one `ovs-ofctl` process per group and per rule (the original) | \(prefixes) | \(format(processSeconds, 2)) | \(Int(processRate)) | 1 |")
        print("| our driver, setUp per route, the burst in one bundle | \(prefixes) | \(format(driverSeconds, 3)) | \(Int(Double(prefixes) / driverSeconds)) | \(format(Double(prefixes) / driverSeconds / processRate, 0))× faster |")
        print("| engine + VRF + driver, \(prefixes) VPNv4 routes | \(prefixes) | \(format(pathSeconds, 3)) | \(Int(Double(prefixes) / pathSeconds)) | \(format(Double(prefixes) / pathSeconds / processRate, 0))× faster |")
    }
}
