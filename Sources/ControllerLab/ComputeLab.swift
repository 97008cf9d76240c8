import BagpipeLab
import ControllerLab
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

    public let lab: Lab
    public let hosts: [String]
    public let dataplane: Dataplane
    public private(set) var controller: ControllerDaemon?
    public private(set) var admin = ""

    public init(hosts: [String], dataplane: Dataplane = .linux) throws {
        lab = try Lab(openVSwitch: dataplane == .ovs)
        self.hosts = hosts
        self.dataplane = dataplane
    }

    /// On Open vSwitch the agents lay out br-int, br-tun and br-mpls before bagpipe-bgp starts on them.
    public func start() async throws {
        switch dataplane {
        case .linux:
            try lab.startHosts(hosts)
        case .ovs:
            for (i, h) in hosts.enumerated() { try lab.addOVSHost(h, address: "192.0.2.\(i + 1)", bridges: []) }
            try lab.addHost("rr", address: "192.0.2.254")
            try lab.startReflector("rr", peers: hosts)
        }
        let ns = try lab.addHost("controller", address: "192.0.2.250")
        let c = try await ControllerDaemon(namespace: ns, address: "192.0.2.250")
        controller = c
        admin = try await c.token("admin")
        for h in hosts { try startAgent(h) }
        if dataplane == .ovs {
            for h in hosts {
                _ = try await poll(timeout: 20) { (try? self.lab.ovs(h, "ovs-vsctl", ["list-ports", "br-mpls"])) ?? "" } until: { $0.contains("patch-from-tun") && $0.contains("patch-mpls-to-int") }
                try lab.startOVSHost(h, reflector: "rr", evpn: true)
            }
        }
        for h in hosts { try await lab.waitEstablished(h) }
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
        let n = try await create("/v2.0/networks", #"{"network": {"name": "n\#(vni)", "provider:network_type": "vxlan", "provider:segmentation_id": \#(vni)}}"#, "network")
        let id = n["id"]?.stringValue ?? ""
        _ = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(id)", "cidr": "\#(cidr)", "ip_version": 4}}"#, "subnet")
        return id
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
    public func bootVM(_ name: String, network: String, host: String, gateway: String) async throws -> VMPort {
        let p = try await create("/v2.0/ports", #"{"port": {"network_id": "\#(network)", "binding:host_id": "\#(host)", "device_owner": "compute:nova"}}"#, "port")
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
