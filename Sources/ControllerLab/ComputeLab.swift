import BagpipeLab
import Foundation
import NeutronModel

/// Compute nodes in namespaces, each with bagpipe-bgp and bagpipe-agent, our route reflector, and a
/// controller node on the same underlay (192.0.2.250): the agents reach it as they would in a
/// deployment. VMs are namespaces whose `eth0` is the peer of a `tap<port>` device on their host,
/// as Nova's Linux plugging leaves them.
public final class ComputeLab: @unchecked Sendable {
    public enum Dataplane: String, CaseIterable, Sendable {
        case linux, ovs
    }

    /// The route reflector every compute node peers with: ours (`bagpipe-bgp` with
    /// `route_reflector = True`), or gobgpd configured as networking-bagpipe's fullstack tests
    /// configure it (passive, cluster id 1.2.3.4, rtc, l2vpn-evpn, l3vpn-ipv4-unicast and flowspec).
    public enum Reflector: String, CaseIterable, Sendable {
        case bagpipe, gobgp
    }

    public let lab: Lab
    public let hosts: [String]
    public let dataplane: Dataplane
    public let reflector: Reflector
    /// Lines added to `[DATAPLANE_DRIVER_IPVPN]` on Open vSwitch hosts (the encapsulation).
    public let ipvpnOptions: [String]
    /// Bare MPLS on Open vSwitch hosts: br-mpls reaches the underlay bridge (br-phy) through a patch
    /// pair (its `mpls_interface`), and br-phy hands MPLS frames from the wire to br-mpls (the
    /// fullstack layout: a link from br-mpls to the data bridge).
    public let bareMPLS: Bool
    /// The IP VPN driver's tunnels on an address of their own (192.0.2.100 + n,
    /// `dataplane_local_address`): on Open vSwitch, VXLAN for the IP VPN beside the E-VPN's VXLAN on
    /// br-tun needs it, both terminating UDP 4789 on one switch (docs/dataplane.md).
    public let separateIPVPNAddress: Bool
    public private(set) var controller: ControllerDaemon?
    public private(set) var admin = ""

    public init(
        hosts: [String], dataplane: Dataplane = .linux, reflector: Reflector = .bagpipe, ipvpnOptions: [String] = [], bareMPLS: Bool = false,
        separateIPVPNAddress: Bool = false
    ) throws {
        lab = try Lab(openVSwitch: dataplane == .ovs)
        self.hosts = hosts
        self.dataplane = dataplane
        self.reflector = reflector
        self.ipvpnOptions = ipvpnOptions
        self.bareMPLS = bareMPLS
        self.separateIPVPNAddress = separateIPVPNAddress
    }

    /// On Open vSwitch the agents lay out br-int, br-tun and br-mpls before bagpipe-bgp starts on them.
    public func start() async throws {
        for (i, h) in hosts.enumerated() {
            switch dataplane {
            case .linux: try lab.addHost(h, address: "192.0.2.\(i + 1)")
            case .ovs:
                try lab.addOVSHost(h, address: "192.0.2.\(i + 1)", bridges: bareMPLS ? ["br-mpls"] : [])
                if bareMPLS {
                    try lab.ovs(h, "ovs-vsctl", [
                        "--timeout=30", "add-port", "br-phy", "phy-to-mpls", "--", "set", "Interface", "phy-to-mpls", "type=patch", "options:peer=mpls-to-phy",
                        "--", "add-port", "br-mpls", "mpls-to-phy", "--", "set", "Interface", "mpls-to-phy", "type=patch", "options:peer=phy-to-mpls",
                    ])
                    try lab.ovs(h, "ovs-ofctl", ["add-flow", "br-phy", "priority=10,in_port=eth0,mpls,actions=output:phy-to-mpls"])
                }
                if separateIPVPNAddress, let ns = lab.hosts[h] { try run(["ip", "-n", ns, "addr", "add", "192.0.2.\(101 + i)/24", "dev", "br-phy"]) }
            }
        }
        try lab.addHost("rr", address: "192.0.2.254")
        try startReflector()
        if dataplane == .linux { for h in hosts { try lab.startHost(h, reflector: "rr") } }
        let ns = try lab.addHost("controller", address: "192.0.2.250")
        let c = try await ControllerDaemon(namespace: ns, address: "192.0.2.250")
        controller = c
        admin = try await c.token("admin")
        for h in hosts { try startAgent(h) }
        if dataplane == .ovs {
            for (i, h) in hosts.enumerated() {
                _ = try await poll(timeout: 20) { (try? self.lab.ovs(h, "ovs-vsctl", ["list-ports", "br-mpls"])) ?? "" } until: { $0.contains("patch-from-tun") && $0.contains("patch-mpls-to-int") }
                let options = ipvpnOptions + (bareMPLS ? ["mpls_interface = mpls-to-phy", "mpls_over_gre = False"] : [])
                    + (separateIPVPNAddress ? ["dataplane_local_address = 192.0.2.\(101 + i)"] : [])
                try lab.startOVSHost(h, reflector: "rr", ipvpn: options, evpn: true)
            }
        }
        for h in hosts { try await lab.waitEstablished(h) }
    }

    public static let gobgpd = "/usr/bin/gobgpd"

    /// The reflector on `rr` (192.0.2.254).
    func startReflector() throws {
        switch reflector {
        case .bagpipe:
            try lab.startReflector("rr", peers: hosts)
        case .gobgp:
            guard Daemon.installed(Self.gobgpd), let ns = lab.hosts["rr"] else { throw Lab.LabError("gobgpd is not installed: the README's test command installs it") }
            let neighbors = hosts.compactMap { lab.addresses[$0] }.map {
                GoBGPConfiguration.Neighbor(
                    address: $0, localAddress: "192.0.2.254", passive: true, families: ["rtc", "l2vpn-evpn", "l3vpn-ipv4-unicast", "l3vpn-ipv4-flowspec"],
                    routeReflectorClusterID: "1.2.3.4")
            }
            let toml = GoBGPConfiguration(routerID: "192.0.2.254", port: 179, localAddress: "192.0.2.254", neighbors: neighbors).toml
            lab.daemons["rr"] = try Daemon(
                name: "gobgpd-rr", executable: lab.ipCommand,
                arguments: ["netns", "exec", ns, Self.gobgpd, "-f", "$DIR/gobgpd.toml", "--api-hosts=127.0.0.1:50051", "--pprof-disable", "-l", "info"],
                files: ["gobgpd.toml": toml])
        }
    }

    /// The controller process stops (its database stays); `start` brings it back on it.
    public func stopController() {
        controller?.daemon.kill()
    }

    public func restartController() async throws {
        guard let old = controller, let ns = lab.hosts["controller"] else { throw Lab.LabError("no controller") }
        old.daemon.kill()
        controller = try await ControllerDaemon(directory: old.daemon.directory, namespace: ns, address: old.address)
    }

    /// The MACs of an instance's endpoints in a host's bagpipe-bgp (its looking glass).
    public func endpointMACs(_ host: String, instance: String) throws -> Set<String> {
        let r = try lab.request(host, "/looking-glass/vpns/instances/\(instance)/ports")
        guard r.status == 200 else { return [] }
        let node = try JSON.parse(r.body)
        var macs = Set<String>()
        for (_, port) in node.objectValue ?? JSONObject() {
            for e in port["endpoints"]?.arrayValue ?? [] { if let m = e["mac_address"]?.stringValue { macs.insert(m) } }
        }
        return macs
    }

    public func agentConf(_ host: String) -> String {
        """
        [DEFAULT]
        host = \(host)
        [controller]
        url = http://192.0.2.250:9696
        username = \(host)
        password = secret
        watch_heartbeat = 1
        [agent]
        dataplane = \(dataplane.rawValue)
        extensions = bagpipe, bagpipe_bgpvpn
        [BAGPIPE]
        bagpipe_bgp_ip = 127.0.0.1
        bagpipe_bgp_port = 8082
        ping_interval = 1
        \(lab.switches[host].map { "[ovs]\novsdb_connection = unix:\($0.directory)/db.sock\ndatapath_type = netdev" } ?? "")
        [ml2_bagpipe_extension]
        as_number = 64512
        """
    }

    public func startAgent(_ host: String) throws {
        guard let ns = lab.hosts[host] else { throw Lab.LabError("no host \(host)") }
        let name = "agent-\(host)"
        lab.daemons[name]?.kill()
        lab.daemons[name] = try Daemon(
            name: name, executable: lab.ipCommand, arguments: ["netns", "exec", ns, builtProduct("bagpipe-agent"), "--config-file", "$DIR/agent.conf"],
            files: ["agent.conf": agentConf(host)], directory: lab.daemons[name]?.directory, environment: lab.switches[host]?.environment ?? [:])
    }

    /// What a failed test prints: the daemons' logs and each host's links, bridge ports and FDB.
    public func diagnostics() -> String {
        var out = lab.logs()
        for h in hosts {
            guard let ns = lab.hosts[h] else { continue }
            for command in [["ip", "-br", "link"], ["bridge", "-d", "link"], ["bridge", "fdb", "show"], ["ip", "neigh"], ["ip", "route", "show", "table", "all"]] {
                out += "\n\(h) $ \(command.joined(separator: " ")):\n" + ((try? run(["ip", "netns", "exec", ns] + command)) ?? "(failed)")
            }
            if lab.switches[h] != nil {
                out += "\n\(h) $ ovs-vsctl show:\n" + ((try? lab.ovs(h, "ovs-vsctl", ["show"])) ?? "(failed)")
                for bridge in ["br-int", "br-tun", "br-mpls"] { out += "\n\(h) flows of \(bridge):\n" + ((try? lab.flows(h, bridge).joined(separator: "\n")) ?? "(failed)") }
            }
        }
        for (vm, ns) in lab.vms.sorted(by: { $0.key < $1.key }) {
            for command in [["ip", "-br", "addr"], ["ip", "neigh"], ["ip", "route"], ["ip", "-s", "link", "show", "eth0"]] {
                out += "\nVM \(vm) $ \(command.joined(separator: " ")):\n" + ((((try? runProcess("/usr/sbin/ip", ["netns", "exec", ns] + command)).map { "\($0.status) \($0.output)" }) ?? "(failed)"))
            }
        }
        return out
    }

    public func stop() {
        controller?.stop()
        lab.stop()
    }

    // MARK: - The controller's API

    public func create(_ path: String, _ body: String, _ member: String) async throws -> JSON {
        guard let c = controller else { throw Lab.LabError("no controller") }
        let r = try await c.request(.POST, path, token: admin, body: body)
        guard r.status == 201, let o = r.json?[member] else { throw Lab.LabError("POST \(path): \(r.status) \(r.body)") }
        return o
    }

    public func delete(_ path: String) async throws {
        guard let c = controller else { throw Lab.LabError("no controller") }
        let r = try await c.request(.DELETE, path, token: admin)
        guard r.status == 204 else { throw Lab.LabError("DELETE \(path): \(r.status) \(r.body)") }
    }

    public func network(vni: Int, cidr: String) async throws -> String {
        try await makeNetwork("n\(vni)", cidr: cidr, vni: vni).id
    }

    public struct NetworkInfo: Sendable {
        public var id: String
        public var subnetID: String
        public var cidr: String
        public var gateway: String
        public var vni: Int
    }

    /// A VXLAN network (its VNI given, or allocated by the controller) with one IPv4 subnet.
    public func makeNetwork(_ name: String, cidr: String, vni: Int? = nil) async throws -> NetworkInfo {
        let provider = vni.map { #", "provider:network_type": "vxlan", "provider:segmentation_id": \#($0)"# } ?? ""
        let n = try await create("/v2.0/networks", #"{"network": {"name": "\#(name)"\#(provider)}}"#, "network")
        let id = n["id"]?.stringValue ?? ""
        let s = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(id)", "cidr": "\#(cidr)", "ip_version": 4}}"#, "subnet")
        return NetworkInfo(
            id: id, subnetID: s["id"]?.stringValue ?? "", cidr: cidr, gateway: s["gateway_ip"]?.stringValue ?? "", vni: { if case .int(let v)? = n["provider:segmentation_id"] { Int(v) } else { vni ?? 0 } }())
    }

    /// A BGPVPN (`type` l3 or l2) with these route targets; its id.
    public func bgpvpn(_ name: String, type: String = "l3", routeTargets: [String] = [], importTargets: [String] = [], exportTargets: [String] = []) async throws -> String {
        func list(_ l: [String]) -> String { "[" + l.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let body = #"{"bgpvpn": {"name": "\#(name)", "type": "\#(type)", "route_targets": \#(list(routeTargets)), "import_targets": \#(list(importTargets)), "export_targets": \#(list(exportTargets))}}"#
        return try await create("/v2.0/bgpvpn/bgpvpns", body, "bgpvpn")["id"]?.stringValue ?? ""
    }

    /// A network association of `network` to `bgpvpn`; its id.
    public func associate(network: String, to bgpvpn: String) async throws -> String {
        try await create("/v2.0/bgpvpn/bgpvpns/\(bgpvpn)/network_associations", #"{"network_association": {"network_id": "\#(network)"}}"#, "network_association")["id"]?.stringValue ?? ""
    }

    /// A router association of `router` to `bgpvpn`; its id.
    public func associate(router: String, to bgpvpn: String) async throws -> String {
        try await create("/v2.0/bgpvpn/bgpvpns/\(bgpvpn)/router_associations", #"{"router_association": {"router_id": "\#(router)"}}"#, "router_association")["id"]?.stringValue ?? ""
    }

    /// A PUT of `body` to `path`; the answer's JSON.
    @discardableResult
    public func update(_ path: String, _ body: String) async throws -> JSON {
        guard let c = controller else { throw Lab.LabError("no controller") }
        let r = try await c.request(.PUT, path, token: admin, body: body)
        guard r.status == 200, let o = r.json else { throw Lab.LabError("PUT \(path): \(r.status) \(r.body)") }
        return o
    }

    /// A router; its id.
    public func router(_ name: String) async throws -> String {
        try await create("/v2.0/routers", #"{"router": {"name": "\#(name)"}}"#, "router")["id"]?.stringValue ?? ""
    }

    public func addInterface(router: String, subnet: String) async throws {
        try await update("/v2.0/routers/\(router)/add_router_interface", #"{"subnet_id": "\#(subnet)"}"#)
    }

    public func removeInterface(router: String, subnet: String) async throws {
        try await update("/v2.0/routers/\(router)/remove_router_interface", #"{"subnet_id": "\#(subnet)"}"#)
    }

    public func portStatus(_ id: String) async throws -> String? {
        try await controller?.request(.GET, "/v2.0/ports/\(id)", token: admin).json?["port"]?["status"]?.stringValue
    }

    // MARK: - VMs

    public struct VMPort: Sendable {
        public var id: String
        public var mac: String
        public var ip: String
        public var gateway: String
    }

    /// A port bound to `host` and a VM plugged into it: `tap<port>` on the host, `eth0` in the VM.
    /// `ip`: a fixed IP asked for, else one the controller allocates.
    public func bootVM(_ name: String, network: String, host: String, gateway: String, ip: String? = nil) async throws -> VMPort {
        let fixed = ip.map { #", "fixed_ips": [{"ip_address": "\#($0)"}]"# } ?? ""
        let p = try await create("/v2.0/ports", #"{"port": {"network_id": "\#(network)", "binding:host_id": "\#(host)", "device_owner": "compute:nova"\#(fixed)}}"#, "port")
        let port = VMPort(
            id: p["id"]?.stringValue ?? "", mac: p["mac_address"]?.stringValue ?? "", ip: p["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue ?? "", gateway: gateway)
        guard let hostNS = lab.hosts[host] else { throw Lab.LabError("no host \(host)") }
        let vm = try lab.spaces.add("vm-\(name)")
        lab.vms[name] = vm
        let tap = "tap" + port.id.prefix(11)
        try run(["ip", "-n", hostNS, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", vm])
        try run(["ip", "-n", vm, "link", "set", "eth0", "address", port.mac, "up"])
        if dataplane == .ovs {
            // As os-vif plugs it; the userspace datapath fills in no checksums.
            try run(["ip", "-n", hostNS, "link", "set", tap, "up"])
            try run(["ip", "-n", vm, "link", "set", "eth0", "mtu", "1400"])
            try run(["ip", "netns", "exec", vm, "ethtool", "-K", "eth0", "tx", "off"])
            try lab.ovs(host, "ovs-vsctl", [
                "--timeout=30", "add-port", "br-int", tap, "--", "set", "Interface", tap, "external_ids:iface-id=\(port.id)", "external_ids:attached-mac=\(port.mac)",
                "external_ids:iface-status=active",
            ])
        }
        try run(["ip", "-n", vm, "addr", "add", "\(port.ip)/24", "dev", "eth0"])
        try run(["ip", "-n", vm, "route", "add", "default", "via", gateway])
        return port
    }
}
