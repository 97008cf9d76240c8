import AgentCore
import Dispatch
import Foundation
import ProgramRunner
import NIOConcurrencyHelpers
import NeutronModel

/// Open vSwitch as the Neutron OVS agent lays it out, with networking-bagpipe's additions (reference
/// §4.6): `br-int` (VM ports, one local VLAN per network), `br-tun` (the E-VPN's VXLAN, whose
/// per-network rules bagpipe-bgp's E-VPN driver writes), `br-mpls` (the IP VPNs, bagpipe-bgp's IP
/// VPN driver), patched together. A VM interface is plugged as Nova's os-vif plugs it (`iface-id`,
/// `attached-mac` in `external_ids`); the agent tags its port with the network's VLAN.
///
/// The rules the agent owns carry its cookie, so that writing them again never touches bagpipe-bgp's.
/// `ovs-vsctl` and `ovs-ofctl` run on a queue of their own, never on the agent's executor.
public final class OVSPortPlugger: PortPlugger, @unchecked Sendable {
    public struct Bridges: Sendable {
        public var integration = "br-int"
        public var tunnel = "br-tun"
        public var mpls = "br-mpls"
        public var datapathType = "system"
        public init() {}
    }

    /// Patch ports (§4.6 names): br-int `patch-tun` ↔ br-tun `patch-int`, br-tun `patch-to-mpls` ↔
    /// br-mpls `patch-from-tun`, br-mpls `patch-mpls-to-int` ↔ br-int `patch-int-from-mpls`.
    enum Patch {
        static let intToTun = "patch-tun", tunToInt = "patch-int"
        static let tunToMPLS = "patch-to-mpls", mplsFromTun = "patch-from-tun"
        static let mplsToInt = "patch-mpls-to-int", intFromMPLS = "patch-int-from-mpls"
    }

    /// "agent" in ASCII: the cookie of the agent's rules.
    public static let cookie: UInt64 = 0x6167_656e_7400_0000
    /// What bagpipe-bgp writes as source of traffic the VRF sends back (§4.6), and the gateway MAC the
    /// ARP responder answers with when no router MAC is known.
    public static let fallbackMarker = "00:00:5e:2a:10:00"
    public static let gatewayMAC = "00:00:5e:00:43:64"

    let bridges: Bridges
    let ovs: OVSCommands
    private let queue = DispatchQueue(label: "bagpipe-agent.ovs")
    private let state = NIOLockedValueBox(State())

    struct State {
        var patches: OVSPatchPorts?
        var tunToInt = 0, tunToMPLS = 0
        /// network → local VLAN.
        var vlans: [String: Int] = [:]
        /// The gateway rules written, per VLAN.
        var gateways: [Int: GatewayRedirect] = [:]
    }

    public init(bridges: Bridges, ovsdbConnection: String, environment: [String: String] = [:]) {
        self.bridges = bridges
        ovs = OVSCommands(database: ovsdbConnection, environment: environment)
    }

    public var patchPorts: OVSPatchPorts? { state.withLockedValue { $0.patches } }

    func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    // MARK: - Layout

    public func setUp() async throws { try await onQueue { try self.layOut() } }

    func layOut() throws {
        let b = bridges
        var commands: [[String]] = []
        for bridge in [b.integration, b.tunnel, b.mpls] {
            commands.append(["--may-exist", "add-br", bridge])
            commands.append(["set", "Bridge", bridge, "datapath_type=\(b.datapathType)", "fail_mode=secure", "protocols=OpenFlow10,OpenFlow13,OpenFlow15"])
        }
        for (x, y) in [((b.integration, Patch.intToTun), (b.tunnel, Patch.tunToInt)), ((b.tunnel, Patch.tunToMPLS), (b.mpls, Patch.mplsFromTun)), ((b.mpls, Patch.mplsToInt), (b.integration, Patch.intFromMPLS))] {
            commands += [["--may-exist", "add-port", x.0, x.1], ["set", "Interface", x.1, "type=patch", "options:peer=\(y.1)"]]
            commands += [["--may-exist", "add-port", y.0, y.1], ["set", "Interface", y.1, "type=patch", "options:peer=\(x.1)"]]
        }
        try ovs.vsctl(commands)
        let ports = try ovs.ofports([Patch.tunToInt, Patch.tunToMPLS, Patch.mplsFromTun, Patch.mplsToInt])
        guard let tunToInt = ports[Patch.tunToInt], let tunToMPLS = ports[Patch.tunToMPLS], let fromTun = ports[Patch.mplsFromTun], let toInt = ports[Patch.mplsToInt],
            [tunToInt, tunToMPLS, fromTun, toInt].allSatisfy({ $0 > 0 })
        else { throw ProgramFailure(command: "ovs-vsctl list Interface", output: "a patch port has no OpenFlow port number: \(ports)", status: 1) }
        let c = "cookie=\(Self.cookie)"
        // br-int: a learning switch on the local VLANs; what the VRF sends back goes the same way.
        try ovs.replaceFlows(bridge: b.integration, cookie: Self.cookie, ["table=0,priority=0,\(c) actions=NORMAL"])
        // br-tun: the Neutron OVS agent's base rules, ARP broadcasts through the responder table
        // (bagpipe-bgp's E-VPN driver answers there for the addresses it knows), traffic the VRF
        // sent back (the fallback marker) to the tunnels, and what comes from br-mpls to br-int.
        try ovs.replaceFlows(bridge: b.tunnel, cookie: Self.cookie, [
            "table=0,priority=1,\(c),in_port=\(tunToInt) actions=resubmit(,2)", "table=0,priority=1,\(c),in_port=\(tunToMPLS) actions=output:\(tunToInt)",
            "table=0,priority=0,\(c) actions=drop",
            "table=2,priority=2,\(c),dl_src=\(Self.fallbackMarker),dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)",
            "table=2,priority=2,\(c),dl_src=\(Self.fallbackMarker),dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)",
            "table=2,priority=1,\(c),arp,dl_dst=ff:ff:ff:ff:ff:ff actions=resubmit(,21)",
            "table=2,priority=0,\(c),dl_dst=00:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,20)",
            "table=2,priority=0,\(c),dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=resubmit(,22)",
            "table=4,priority=0,\(c) actions=drop", "table=10,priority=1,\(c) actions=output:\(tunToInt)",
            "table=20,priority=0,\(c) actions=resubmit(,22)", "table=21,priority=0,\(c) actions=resubmit(,22)", "table=22,priority=0,\(c) actions=drop",
        ])
        state.withLockedValue {
            $0.patches = OVSPatchPorts(mplsFromTun: fromTun, mplsToInt: toInt)
            ($0.tunToInt, $0.tunToMPLS) = (tunToInt, tunToMPLS)
            // The rules of the gateways are written again on the next look.
            $0.gateways = [:]
        }
    }

    /// `ovsdb-client monitor` of the Interface table: a line per change (os-vif adding a port, its
    /// OpenFlow number arriving). Started again when it ends (ovsdb-server restarted).
    public func changes() -> AsyncStream<Void> {
        let ovs = self.ovs
        return AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let thread = Thread {
                while true {
                    ovs.monitor(table: "Interface", columns: ["name", "ofport", "external_ids"]) { continuation.yield() }
                    continuation.yield()
                    Thread.sleep(forTimeInterval: 1)
                }
            }
            thread.name = "bagpipe-agent.ovsdb-monitor"
            thread.start()
        }
    }

    /// A restarted ovs-vswitchd has no rules: br-int without the agent's rule is laid out again (the
    /// gateway rules are written again on the next reconcile). The ports and their tags are in
    /// OVSDB, which kept them.
    public func repairIfReset() async throws -> Bool {
        try await onQueue {
            guard try self.ovs.flowCount(bridge: self.bridges.integration, cookie: Self.cookie) == 0 else { return false }
            try self.layOut()
            return true
        }
    }

    // MARK: - Ports

    public func scan(wanted: [String: ViewPort]) async throws -> [String: PortPlug] {
        try await onQueue { try self.scanOnQueue(wanted) }
    }

    func scanOnQueue(_ wanted: [String: ViewPort]) throws -> [String: PortPlug] {
        let interfaces = try ovs.interfaces(bridge: bridges.integration)
        var vlans = state.withLockedValue { $0.vlans }
        // After a restart, the tags on the switch say which VLAN each network had.
        for i in interfaces {
            if let net = i.network, let tag = i.tag, vlans[net] == nil, !vlans.values.contains(tag) { vlans[net] = tag }
        }
        var plugged: [String: PortPlug] = [:]
        var commands: [[String]] = []
        for i in interfaces {
            guard let id = i.ifaceID, let port = wanted[id], i.ofport > 0, i.attachedMAC.map({ $0.lowercased() == port.macAddress.lowercased() }) ?? true else { continue }
            let vlan = vlans[port.networkID] ?? Self.firstFree(Set(vlans.values))
            vlans[port.networkID] = vlan
            if i.tag != vlan || i.network != port.networkID { commands.append(["set", "Port", i.name, "tag=\(vlan)", "other_config:net_uuid=\(port.networkID)"]) }
            plugged[id] = .ovs(vlan: vlan)
        }
        if !commands.isEmpty { try ovs.vsctl(commands) }
        // A network without a plugged port gives its VLAN back.
        let used = Set(plugged.values.compactMap { if case .ovs(let v) = $0 { v } else { nil } })
        vlans = vlans.filter { used.contains($0.value) }
        state.withLockedValue { $0.vlans = vlans }
        return plugged
    }

    static func firstFree(_ used: Set<Int>) -> Int { (1...4094).first { !used.contains($0) } ?? 4094 }

    // MARK: - Gateway redirection (§4.6)

    public func redirectGateways(_ wanted: [Int: GatewayRedirect]) async throws {
        try await onQueue { try self.redirectOnQueue(wanted) }
    }

    func redirectOnQueue(_ wanted: [Int: GatewayRedirect]) throws {
        let (current, toMPLS) = state.withLockedValue { ($0.gateways, $0.tunToMPLS) }
        guard current != wanted else { return }
        let cookie = Self.cookie + 1
        var flows: [String] = []
        for (vlan, g) in wanted.sorted(by: { $0.key < $1.key }) {
            let c = "cookie=\(cookie)"
            // The reference drops the responder once a router MAC is known, for the L3 agent's router
            // port answers then. There is no L3 agent here: every host answers its gateway itself,
            // with the router's MAC when the network is on a router (as DVR answers on each host).
            let answer = g.routerMAC ?? Self.gatewayMAC
            let mac = answer.replacingOccurrences(of: ":", with: "")
            let ip = g.gatewayIP.split(separator: ".").compactMap { UInt32($0) }.reduce(0) { $0 << 8 | $1 }
            flows.append(
                "table=21,priority=2,\(c),arp,arp_op=1,dl_vlan=\(vlan),arp_tpa=\(g.gatewayIP) actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:\(answer),load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0x\(mac)->NXM_NX_ARP_SHA[],load:0x\(String(ip, radix: 16))->NXM_OF_ARP_SPA[],in_port"
            )
            // Below the fallback marker's rules: what the VRF sent back to the router never returns.
            for mac in [Self.gatewayMAC] + (g.routerMAC.map { [$0] } ?? []) {
                flows.append("table=2,priority=1,\(c),in_port=\(state.withLockedValue { $0.tunToInt }),dl_vlan=\(vlan),dl_dst=\(mac) actions=output:\(toMPLS)")
            }
        }
        try ovs.replaceFlows(bridge: bridges.tunnel, cookie: cookie, flows)
        state.withLockedValue { $0.gateways = wanted }
    }
}
