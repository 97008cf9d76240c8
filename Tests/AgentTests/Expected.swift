import AgentCore
import NeutronModel
import Testing

// The bodies reference §2.5 and §4.4 describe, written out field by field, to compare with what the
// agent sent.

/// A canonical text of a JSON value: keys sorted at every level, so that two bodies compare equal when
/// they hold the same fields with the same values. Route-target lists are sets (§2.5: "sets are
/// serialized as JSON lists"): their order does not count.
func canonical(_ v: JSON) -> String {
    switch v {
    case .object(let o):
        return "{" + o.keys.sorted().map { key in
            let value = o[key] ?? .null
            let text = routeTargetSets.contains(key) ? canonical(.strings((value.arrayValue ?? []).compactMap(\.stringValue).sorted())) : canonical(value)
            return "\"\(key)\":" + text
        }.joined(separator: ",") + "}"
    case .array(let a): return "[" + a.map(canonical).joined(separator: ",") + "]"
    default: return v.serialized
    }
}

let routeTargetSets: Set<String> = ["import_rt", "export_rt", "from_rt", "to_rt"]

func sameBody(_ a: JSONObject, _ b: JSONObject) -> Bool { canonical(.object(a)) == canonical(.object(b)) }

/// `calls` hold exactly the bodies `expected` (as attaches or detaches), in any order. A body sent
/// twice counts once: a call whose answer came too late on a loaded machine is sent again, and
/// bagpipe-bgp takes the same attach or detach twice as once.
func expectBodies(_ calls: [RecordingBagpipeBGP.Call], attaches: [JSONObject] = [], detaches: [JSONObject] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    let gotA = Set(calls.filter(\.isAttach).map { canonical(.object($0.body)) })
    let gotD = Set(calls.filter { !$0.isAttach }.map { canonical(.object($0.body)) })
    #expect(gotA == Set(attaches.map { canonical(.object($0)) }), "attaches", sourceLocation: sourceLocation)
    #expect(gotD == Set(detaches.map { canonical(.object($0)) }), "detaches", sourceLocation: sourceLocation)
}

/// §2.4's order: every E-VPN attach before any IP VPN attach; every IP VPN detach before any E-VPN
/// detach; detaches before the attaches of one convergence.
func expectOrder(_ calls: [RecordingBagpipeBGP.Call], sourceLocation: SourceLocation = #_sourceLocation) {
    // The first sending of each body (a retry after a late answer comes when it comes).
    var seen = Set<String>()
    let firsts = calls.filter { seen.insert("\($0.path) \(canonical(.object($0.body)))").inserted }
    let types = firsts.map { ($0.isAttach, $0.body["vpn_type"]?.stringValue ?? "") }
    let attaches = types.filter(\.0).map(\.1), detaches = types.filter { !$0.0 }.map(\.1)
    #expect(attaches == attaches.sorted(), "E-VPN attached before IP VPN: \(calls)", sourceLocation: sourceLocation)
    #expect(detaches == detaches.sorted(by: >), "IP VPN detached before E-VPN: \(calls)", sourceLocation: sourceLocation)
}

struct VM {
    var id: String
    var mac: String
    var ip: String
    var network: String
    init(_ port: JSON) {
        id = port["id"]?.stringValue ?? ""
        mac = port["mac_address"]?.stringValue ?? ""
        ip = port["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue ?? ""
        network = port["network_id"]?.stringValue ?? ""
    }
    var tap: String { "tap" + id.prefix(11) }
    var bridge: String { "brq" + network.prefix(11) }
}

enum Expected {
    /// The ML2 E-VPN attachment on Linux (§2.5, "ML2 E-VPN attachment").
    static func linuxEVPN(_ vm: VM, vni: Int, rts: [String]) -> JSONObject {
        object([
            "vpn_instance_id": .string("evpn_\(vm.network)"), "vpn_type": "evpn", "mac_address": .string(vm.mac), "ip_address": .string(vm.ip),
            "local_port": .object(object(["linuxif": .string(vm.tap)])), "linuxbr": .string(vm.bridge), "vni": .int(vni), "import_rt": .strings(rts), "export_rt": .strings(rts),
        ])
    }

    /// The E-VPN attachment on Open vSwitch (§1.5, §2.5).
    static func ovsEVPN(_ vm: VM, vlan: Int, vni: Int, rts: [String]) -> JSONObject {
        object([
            "vpn_instance_id": .string("evpn_\(vm.network)"), "vpn_type": "evpn", "mac_address": .string(vm.mac), "ip_address": .string(vm.ip),
            "local_port": .object(object(["linuxif": .string("patch2tun:\(vlan)"), "vlan": .int(vlan)])), "vni": .int(vni), "import_rt": .strings(rts), "export_rt": .strings(rts),
        ])
    }

    /// A BGPVPN's network-level IP VPN attachment on Open vSwitch (§2.5, §4.4), before the optional
    /// fields.
    static func ovsIPVPN(_ vm: VM, vlan: Int, mplsFromTun: Int, gateway: String?, imports: [String], exports: [String]) -> JSONObject {
        object([
            "vpn_instance_id": .string("ipvpn_\(vm.network)"), "vpn_type": "ipvpn", "mac_address": .string(vm.mac), "ip_address": .string(vm.ip),
            "local_port": .object(object(["linuxif": .string("patch2tun:\(vlan)"), "ovs": .object(object(["plugged": true, "port_number": .int(mplsFromTun), "vlan": .int(vlan)]))])),
            "gateway_ip": .string(gateway), "description": .object(object(["port": .string(vm.id)])), "instance_description": .string("BGPVPN l3 of network \(vm.network)"),
            "import_rt": .strings(imports), "export_rt": .strings(exports),
        ])
    }

    /// The IP VPN attachment on Linux: the network's E-VPN stitched in.
    static func linuxIPVPN(_ vm: VM, gateway: String?, imports: [String], exports: [String]) -> JSONObject {
        object([
            "vpn_instance_id": .string("ipvpn_\(vm.network)"), "vpn_type": "ipvpn", "mac_address": .string(vm.mac), "ip_address": .string(vm.ip),
            "local_port": .object(object(["evpn": .object(object(["id": .string("evpn_\(vm.network)")]))])),
            "gateway_ip": .string(gateway), "description": .object(object(["port": .string(vm.id)])), "instance_description": .string("BGPVPN l3 of network \(vm.network)"),
            "import_rt": .strings(imports), "export_rt": .strings(exports),
        ])
    }

    /// A detach: instance, type, MAC, address and `local_port` reduced to `linuxif` (§2.5).
    static func detach(of attach: JSONObject) -> JSONObject {
        var d = object(["vpn_instance_id": attach["vpn_instance_id"] ?? .null, "vpn_type": attach["vpn_type"] ?? .null, "mac_address": attach["mac_address"] ?? .null])
        if let ip = attach["ip_address"] { d["ip_address"] = ip }
        d["local_port"] = attach["local_port"]?.objectValue.map { .object($0.keeping(["linuxif", "evpn"])) } ?? .null
        return d
    }

    static func with(_ o: JSONObject, _ changes: KeyValuePairs<String, JSON?>) -> JSONObject {
        var o = o
        for (k, v) in changes { o[k] = v }
        return o
    }
}
