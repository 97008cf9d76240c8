import Foundation

/// A test network of namespaces (as scripts/demo.sh builds it): an underlay bridge in a namespace
/// of its own, "hosts" plugged into it with addresses in 192.0.2.0/24, a bagpipe-bgp per host and
/// our route reflector, and "VMs" as namespaces attached through the REST API with our
/// bagpipe-rest-attach. `stop()` stops every daemon and deletes every namespace, on every path.
public final class Lab: @unchecked Sendable {
    public let spaces = TestNamespaces()
    public let underlay: String
    public var hosts: [String: String] = [:]  // name → namespace
    public var addresses: [String: String] = [:]
    public var daemons: [String: Daemon] = [:]
    public var vms: [String: String] = [:]  // name → namespace
    /// Open vSwitch of the hosts that have one (OVSLab.swift).
    public var switches: [String: OpenVSwitch] = [:]
    /// Underlay MTU; with Open vSwitch 9000, and TX checksum offload off on every veth (the
    /// userspace datapath reads and writes whole packets, checksums not filled in by anyone).
    public let mtu: Int
    public let ipCommand = FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/usr/bin/ip"

    public init(openVSwitch: Bool = false) throws {
        mtu = openVSwitch ? 9000 : 1600
        underlay = try spaces.add("lab-net")
        try run(["ip", "-n", underlay, "link", "add", "br0", "type", "bridge"])
        try run(["ip", "-n", underlay, "link", "set", "br0", "up", "mtu", "\(mtu)"])
    }

    /// The host's end of the underlay: `eth0` in `ns`, its peer on the underlay bridge.
    public func plugIntoUnderlay(_ name: String, namespace ns: String) throws {
        try run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "port-\(name)", "netns", underlay])
        try run(["ip", "-n", underlay, "link", "set", "dev", "port-\(name)", "mtu", "\(mtu)", "master", "br0", "up"])
        try run(["ip", "-n", ns, "link", "set", "eth0", "mtu", "\(mtu)", "up"])
        if mtu > 1600 {
            try run(["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"])
            try run(["ip", "netns", "exec", underlay, "ethtool", "-K", "port-\(name)", "tx", "off"])
        }
    }

    /// A namespace on the underlay, `eth0` with `address`/24.
    @discardableResult
    public func addHost(_ name: String, address: String) throws -> String {
        let ns = try spaces.add("lab-\(name)")
        try plugIntoUnderlay(name, namespace: ns)
        try run(["ip", "-n", ns, "addr", "add", "\(address)/24", "dev", "eth0"])
        hosts[name] = ns
        addresses[name] = address
        return ns
    }

    /// bagpipe-bgp in a host's namespace with this bgp.conf (and the host's Open vSwitch, and `environment`).
    /// `executable`: another bagpipe-bgp binary (an upgrade).
    public func start(_ name: String, conf: String, environment: [String: String] = [:], executable: String? = nil) throws {
        guard let ns = hosts[name] else { throw LabError("no host \(name)") }
        daemons[name]?.kill()
        daemons[name] = try Daemon(
            name: "bagpipe-\(name)", executable: ipCommand, arguments: ["netns", "exec", ns, executable ?? builtProduct("bagpipe-bgp"), "--config-file", "$DIR/bgp.conf"],
            files: ["bgp.conf": conf], directory: daemons[name]?.directory, environment: (switches[name]?.environment ?? [:]).merging(environment) { $1 })
    }

    /// A command in a host's namespace, with its Open vSwitch's environment when it has one.
    public func hostCommand(_ host: String, _ arguments: [String]) throws -> [String] {
        guard let ns = hosts[host] else { throw LabError("no host \(host)") }
        let environment = (switches[host]?.environment ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return [ipCommand, "netns", "exec", ns] + (environment.isEmpty ? [] : ["env"] + environment) + arguments
    }

    public func startReflector(_ name: String, peers: [String]) throws {
        try start(name, conf: "[BGP]\nlocal_address = \(addresses[name] ?? "")\nmy_as = 64512\npeers = \(peers.compactMap { addresses[$0] }.joined(separator: ", "))\nroute_reflector = True\nhold_time = 9\n")
    }

    public static let linuxDrivers = "[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux\n[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = linux"

    /// A compute node with the Linux drivers, or the `drivers` sections given (and `extra` lines).
    public func startHost(_ name: String, reflector: String, extra: String = "", drivers: String = Lab.linuxDrivers) throws {
        try start(name, conf: """
            [BGP]
            local_address = \(addresses[name] ?? "")
            my_as = 64512
            peers = \(addresses[reflector] ?? "")
            hold_time = 9
            [API]
            port = 8082
            \(extra)
            \(drivers)
            """)
    }

    /// Hosts (`a` 192.0.2.1, `b` .2, `c` .3 …) running bagpipe-bgp with the Linux drivers, peering
    /// with our reflector `rr` (192.0.2.254); `extra` adds lines to a host's bgp.conf.
    public func startHosts(_ names: [String], extra: [String: String] = [:]) throws {
        for (i, name) in names.enumerated() { try addHost(name, address: "192.0.2.\(i + 1)") }
        try addHost("rr", address: "192.0.2.254")
        try startReflector("rr", peers: names)
        for name in names { try startHost(name, reflector: "rr", extra: extra[name] ?? "") }
    }

    /// A request to a host's API (inside its namespace).
    public func api(_ host: String, _ path: String, post body: String? = nil) throws -> String { try request(host, path, post: body).body }

    /// A request to a host's API, its HTTP status with its body.
    public func request(_ host: String, _ path: String, post body: String? = nil) throws -> (status: Int, body: String) {
        let out = try run(
            try hostCommand(host, ["curl", "-s", "-m", "10", "-w", "\n%{http_code}"] + (body.map { ["-X", "POST", "-H", "Content-Type: application/json", "-d", $0] } ?? [])
                + ["http://127.0.0.1:8082\(path)"]))
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    public func waitEstablished(_ host: String) async throws {
        _ = try await poll(timeout: 30) { (try? self.api(host, "/looking-glass/summary")) ?? "" } until: { $0.contains(#""BGP_established_peers":1"#) }
    }

    /// A VM: a namespace attached to `instance` on `host` by bagpipe-rest-attach (`--port netns`).
    @discardableResult
    public func attachVM(_ vm: String, host: String, ip: String, type: String, instance: String, rt: String, mac: String? = nil, extra: [String] = []) throws -> String {
        let command = try hostCommand(host, [])
        let ns = try vms[vm] ?? spaces.add("vm-\(vm)")
        vms[vm] = ns
        let arguments = command + [builtProduct("bagpipe-rest-attach"), "--attach", "--network-type", type, "--port", "netns", "--netns", ns, "--ip", ip,
            "--vpn-instance-id", instance, "--rt", rt, "--api-port", "8082"] + (mac.map { ["--mac", $0] } ?? []) + extra
        let out = try run(arguments)
        guard out.contains("response: 200") else { throw LabError("attach \(vm) on \(host): \(out)") }
        if switches[host] != nil { try run(["ip", "netns", "exec", ns, "ethtool", "-K", "tovpn", "tx", "off"]) }
        return ns
    }

    public func detachVM(_ vm: String, host: String, ip: String, type: String, instance: String, rt: String, mac: String? = nil) throws {
        guard let ns = vms[vm] else { throw LabError("no VM \(vm)") }
        let out = try run(try hostCommand(host, []) + [builtProduct("bagpipe-rest-attach"), "--detach", "--network-type", type, "--port", "netns", "--netns", ns, "--ip", ip,
            "--vpn-instance-id", instance, "--rt", rt, "--api-port", "8082"] + (mac.map { ["--mac", $0] } ?? []))
        guard out.contains("response: 200") else { throw LabError("detach \(vm) on \(host): \(out)") }
    }

    /// One ping; true when answered within `wait` seconds.
    public func ping(from vm: String, _ address: String, wait: Double = 1) -> Bool {
        guard let ns = vms[vm] else { return false }
        return (try? run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "\(max(1, Int(wait.rounded(.up))))", address])) != nil
    }

    /// Pings until one is answered; fails after `timeout` seconds.
    public func pingUntil(from vm: String, _ address: String, timeout: Double = 20) async throws {
        _ = try await poll(timeout: timeout) { self.ping(from: vm, address) ? "answered" : "no answer" } until: { $0 == "answered" }
    }

    public func exec(_ host: String, _ arguments: [String]) throws -> String {
        guard let ns = hosts[host] ?? vms[host] else { throw LabError("no namespace \(host)") }
        return try run(["ip", "netns", "exec", ns] + arguments)
    }

    /// The FDB of a host's E-VPN VXLAN devices, as `bridge fdb show dev <device>` prints it
    /// ("<mac> dst <remote> self permanent", "<mac> master <bridge> static").
    public func fdb(_ host: String) throws -> String {
        guard let ns = hosts[host] else { throw LabError("no host \(host)") }
        return try run(["bridge", "-n", ns, "fdb", "show"]).split(separator: "\n").filter { $0.contains("dev bgpv-") }.map { line in
            var words = line.split(separator: " ")
            if let i = words.firstIndex(of: "dev"), i + 1 < words.count { words.removeSubrange(i...(i + 1)) }
            return words.joined(separator: " ")
        }.joined(separator: "\n")
    }

    public func logs() -> String { daemons.map { "\($0.key): \($0.value.log.suffix(1500))" }.joined(separator: "\n") }

    public func stop() {
        for d in daemons.values { d.stop() }
        daemons = [:]
        for s in switches.values { s.stop() }
        switches = [:]
        spaces.remove()
    }

    public struct LabError: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }
}
