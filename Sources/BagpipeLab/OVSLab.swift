import Foundation

/// Hosts whose dataplane is an Open vSwitch of their own (userspace datapath, one ovsdb-server and
/// ovs-vswitchd per host namespace), laid out as on an OpenStack compute node: the host address on
/// the internal port of the bridge that holds `eth0` (`br-phy`, where userspace tunnels leave), or
/// on `br-mpls` itself for bare MPLS (the original's documented layout for that mode).
extension Lab {
    /// A host with an Open vSwitch, `bridges` created, `eth0` on `underlayBridge` with the address.
    @discardableResult
    public func addOVSHost(_ name: String, address: String, bridges: [String], underlayBridge: String = "br-phy") throws -> OpenVSwitch {
        let ns = try spaces.add("lab-\(name)")
        hosts[name] = ns
        addresses[name] = address
        try plugIntoUnderlay(name, namespace: ns)
        let ovs = try OpenVSwitch(namespace: ns)
        switches[name] = ovs
        for bridge in [underlayBridge] + bridges.filter({ $0 != underlayBridge }) { try ovs.addBridge(bridge) }
        try ovs.ovs("ovs-vsctl", ["--timeout=30", "add-port", underlayBridge, "eth0", "--", "set", "Interface", underlayBridge, "mtu_request=\(mtu)"])
        try run(["ip", "-n", ns, "addr", "add", "\(address)/24", "dev", underlayBridge])
        try run(["ip", "-n", ns, "link", "set", underlayBridge, "up"])
        return ovs
    }

    /// bagpipe-bgp on an OVS host: the IP VPN `ovs` driver on br-mpls (with `ipvpn` options), the
    /// E-VPN `ovs` driver on br-tun when `evpn`, else the dummy one.
    public func startOVSHost(_ name: String, reflector: String, ipvpn: [String] = [], evpn: Bool = false) throws {
        let drivers = ["[DATAPLANE_DRIVER_IPVPN]", "dataplane_driver = ovs", "ovs_bridge = br-mpls", "arp_responder = True"] + ipvpn
            + ["[DATAPLANE_DRIVER_EVPN]", "dataplane_driver = \(evpn ? "ovs" : "dummy")"]
        try startHost(name, reflector: reflector, drivers: drivers.joined(separator: "\n"))
    }

    /// OVS hosts `a` (192.0.2.1), `b` … with br-mpls (bare MPLS: the underlay on br-mpls, else on
    /// br-phy), and our reflector `rr` (192.0.2.254) on a plain namespace.
    public func startOVSHosts(_ names: [String], bareMPLS: Bool = false, ipvpn: [String] = []) throws {
        for (i, name) in names.enumerated() {
            try addOVSHost(name, address: "192.0.2.\(i + 1)", bridges: ["br-mpls"], underlayBridge: bareMPLS ? "br-mpls" : "br-phy")
        }
        try addHost("rr", address: "192.0.2.254")
        try startReflector("rr", peers: names)
        for name in names { try startOVSHost(name, reflector: "rr", ipvpn: ipvpn) }
    }

    /// An Open vSwitch client command on a host's switch.
    @discardableResult
    public func ovs(_ host: String, _ program: String, _ arguments: [String]) throws -> String {
        guard let s = switches[host] else { throw LabError("no Open vSwitch on \(host)") }
        return try s.ovs(program, arguments)
    }

    /// A host's rules of one bridge (optionally one table), without statistics.
    public func flows(_ host: String, _ bridge: String, _ match: String = "") throws -> [String] {
        guard let s = switches[host] else { throw LabError("no Open vSwitch on \(host)") }
        return try s.flows(bridge, match)
    }
}
