import ControllerLab
import BagpipeLab
import Foundation
import NIOHTTP1
import NeutronModel
import Testing

/// Issue 13, acceptance 3: bad requests (bad types, unknown fields, bad route targets and RDs,
/// out-of-range values, conflicts, foreign projects, bad tokens, huge and malformed bodies) get a
/// 4xx NeutronError and change nothing: every collection reads the same, and the change log has
/// not moved.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BadInputTests {
    struct BadRequest {
        var method: HTTPMethod
        var path: String
        var body: String?
        var token: String?
        var headers: [(String, String)] = []
    }

    /// Values of the wrong type (or shape) for any attribute.
    static let booleans: Set<String> = ["admin_state_up", "shared", "router:external", "port_security_enabled", "enable_dhcp"]
    static let wrongValues = [#"{"a": 1}"#, "[1, 2]", "true", "12.5", #""not-a-valid-value-%%%""#, "-1", "99999999999999999999", #""""#]

    static func requests(_ ids: [String: String], tokens: [String: String]) -> [BadRequest] {
        let admin = tokens["admin"], demo = tokens["demo"], alt = tokens["alt"]
        let net = ids["net"] ?? "", subnet = ids["subnet"] ?? "", port = ids["port"] ?? "", router = ids["router"] ?? "", vpn = ids["bgpvpn"] ?? ""
        let l2 = ids["l2"] ?? "", assoc = ids["assoc"] ?? "", altNet = ids["altNet"] ?? ""
        var out: [BadRequest] = []
        func post(_ path: String, _ body: String, _ token: String? = admin) { out.append(BadRequest(method: .POST, path: path, body: body, token: token)) }
        func put(_ path: String, _ body: String, _ token: String? = admin) { out.append(BadRequest(method: .PUT, path: path, body: body, token: token)) }

        // Every attribute of every resource with values of the wrong type.
        let attributes: [(String, String, [String], String)] = [
            ("/v2.0/networks", "network", ["name", "admin_state_up", "shared", "router:external", "mtu", "provider:segmentation_id", "port_security_enabled", "description"], ""),
            ("/v2.0/subnets", "subnet", ["cidr", "ip_version", "gateway_ip", "allocation_pools", "enable_dhcp", "dns_nameservers", "host_routes", "ipv6_ra_mode", "name"], #""network_id": "\#(net)", "#),
            ("/v2.0/ports", "port", ["mac_address", "fixed_ips", "admin_state_up", "device_id", "device_owner", "binding:host_id", "name"], #""network_id": "\#(net)", "#),
            ("/v2.0/routers", "router", ["name", "admin_state_up", "external_gateway_info"], ""),
            ("/v2.0/bgpvpn/bgpvpns", "bgpvpn", ["type", "route_targets", "import_targets", "export_targets", "route_distinguishers", "local_pref", "vni", "name"], ""),
        ]
        for (path, member, names, prefix) in attributes {
            for name in names {
                for value in wrongValues {
                    // Strings are fine for free-text attributes, booleans for boolean ones.
                    if ["device_id", "device_owner", "binding:host_id", "name", "description"].contains(name) && value.hasPrefix("\"") { continue }
                    if Self.booleans.contains(name) && value == "true" { continue }
                    post(path, #"{"\#(member)": {\#(prefix)"\#(name)": \#(value)}}"#)
                }
            }
            post(path, #"{"\#(member)": {\#(prefix)"no_such_attribute": 1}}"#)
            post(path, #"{"\#(member)": {\#(prefix)"id": "\#(UUID().uuidString.lowercased())"}}"#)
            post(path, #"{"\#(member)s": {}}"#)
            post(path, #"["\#(member)"]"#)
            post(path, "{not json")
            post(path, #"{"\#(member)": "text"}"#)
            post(path, #"{"\#(member)": {}, "other": {}}"#)
            post(path, "")
            post(path, String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000))
            post(path, #"{"\#(member)": {"name": "\#(String(repeating: "x", count: 256))"}}"#)
            post(path, "{\"\(member)\": {\"name\": \"\(String(repeating: "y", count: 1_100_000))\"}}")
            out.append(BadRequest(method: .GET, path: path, token: nil))
            out.append(BadRequest(method: .GET, path: path, token: "garbage"))
            out.append(BadRequest(method: .POST, path: path, body: #"{"\#(member)": {}}"#, token: String((admin ?? "").dropLast(2)) + "xx"))
            out.append(BadRequest(method: .GET, path: "\(path)/not-a-uuid", token: admin))
            out.append(BadRequest(method: .GET, path: "\(path)/\(UUID().uuidString.lowercased())", token: admin))
            out.append(BadRequest(method: .DELETE, path: "\(path)/\(UUID().uuidString.lowercased())", token: admin))
            out.append(BadRequest(method: .PUT, path: "\(path)/\(UUID().uuidString.lowercased())", body: #"{"\#(member)": {"name": "x"}}"#, token: admin))
            out.append(BadRequest(method: .GET, path: "\(path)?no_such_filter=1", token: admin))
            out.append(BadRequest(method: .GET, path: "\(path)?sort_key=no_such_key", token: admin))
            out.append(BadRequest(method: .GET, path: "\(path)?limit=-3", token: admin))
            out.append(BadRequest(method: .PATCH, path: path, body: "{}", token: admin))
        }
        // Route targets and RDs, create and update.
        for rt in ["0", "test", " ", "64512:1000000000000", "xyz", "65536:4294967296", "1.2.3.4:65536", "01:1", "1:01", "a:b", "1:2:3", ":", "256.0.0.1:1", "-1:5", "4294967296:1"] {
            post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"route_targets": ["\#(rt)"]}}"#)
            post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"import_targets": ["64512:1", "\#(rt)"]}}"#)
            post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"export_targets": "\#(rt)"}}"#)
            put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"route_targets": ["\#(rt)"]}}"#)
            put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"route_distinguishers": ["\#(rt)"]}}"#)
        }
        post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"route_distinguishers": ["64512:1"]}}"#)
        post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"route_targets": [\#((0..<40).map { "\"64512:\(100_000 + $0)\"" }.joined(separator: ","))]}}"#)
        for lp in ["-1", "4294967296", "1.5", #""high""#] { post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"local_pref": \#(lp)}}"#) }
        for vni in ["0", "16777216", "-5", #""x""#] { post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"vni": \#(vni)}}"#) }
        put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"type": "l2"}}"#)
        put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"vni": 10}}"#)
        put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"tenant_id": "x"}}"#)
        // Policies: members may not create, delete or change the targets of BGPVPNs.
        post("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"name": "mine"}}"#, demo)
        out.append(BadRequest(method: .DELETE, path: "/v2.0/bgpvpn/bgpvpns/\(vpn)", token: demo))
        put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"route_targets": ["64512:5"]}}"#, demo)
        put("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"vni": 5}}"#, demo)
        // Foreign projects: alt sees nothing of demo's.
        for (path, member) in [("/v2.0/networks/\(net)", "network"), ("/v2.0/subnets/\(subnet)", "subnet"), ("/v2.0/ports/\(port)", "port"), ("/v2.0/routers/\(router)", "router"), ("/v2.0/bgpvpn/bgpvpns/\(vpn)", "bgpvpn")] {
            out.append(BadRequest(method: .GET, path: path, token: alt))
            out.append(BadRequest(method: .DELETE, path: path, token: alt))
            put(path, #"{"\#(member)": {"name": "stolen"}}"#, alt)
        }
        post("/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations", #"{"network_association": {"network_id": "\#(net)"}}"#, alt)
        post("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "10.9.0.0/24"}}"#, alt)
        post("/v2.0/ports", #"{"port": {"network_id": "\#(net)"}}"#, alt)
        post("/v2.0/networks", #"{"network": {"project_id": "someone-else"}}"#, demo)
        put("/v2.0/routers/\(router)/add_router_interface", #"{"subnet_id": "\#(subnet)"}"#, alt)
        // Associations: conflicts, unknown ids, wrong types, other projects.
        let na = "/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations"
        post(na, #"{"network_association": {"network_id": "\#(ids["assocNet"] ?? "")"}}"#, demo)
        post(na, #"{"network_association": {"network_id": "\#(UUID().uuidString.lowercased())"}}"#, demo)
        post(na, #"{"network_association": {"network_id": "not-a-uuid"}}"#, demo)
        post(na, #"{"network_association": {}}"#, demo)
        post(na, #"{"network_association": {"network_id": "\#(altNet)"}}"#, admin)
        post("/v2.0/bgpvpn/bgpvpns/\(UUID().uuidString.lowercased())/network_associations", #"{"network_association": {"network_id": "\#(net)"}}"#, demo)
        post("/v2.0/bgpvpn/bgpvpns/\(l2)/router_associations", #"{"router_association": {"router_id": "\#(router)"}}"#, demo)
        post("/v2.0/bgpvpn/bgpvpns/\(vpn)/router_associations", #"{"router_association": {"router_id": "\#(UUID().uuidString.lowercased())"}}"#, demo)
        out.append(BadRequest(method: .GET, path: "\(na)/\(UUID().uuidString.lowercased())", token: demo))
        out.append(BadRequest(method: .DELETE, path: "\(na)/\(UUID().uuidString.lowercased())", token: demo))
        out.append(BadRequest(method: .GET, path: "\(na)/\(assoc)", token: alt))
        out.append(BadRequest(method: .DELETE, path: "\(na)/\(assoc)", token: alt))
        let pa = "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations"
        for routes in [
            #"[{"type": "prefix"}]"#, #"[{"type": "prefix", "prefix": "not-a-cidr"}]"#, #"[{"type": "prefix", "prefix": "10.0.0.0/24", "local_pref": -1}]"#,
            #"[{"type": "prefix", "prefix": "10.0.0.0/24", "local_pref": 4294967296}]"#, #"[{"type": "prefix", "prefix": "10.0.0.0/24", "extra": 1}]"#,
            #"[{"type": "bgpvpn", "bgpvpn_id": "\#(UUID().uuidString.lowercased())"}]"#, #"[{"type": "bgpvpn", "bgpvpn_id": "\#(l2)"}]"#,
            #"[{"type": "bgpvpn"}]"#, #"[{"type": "other", "prefix": "10.0.0.0/24"}]"#, #"[{}]"#, #""prefix""#, "[1]",
        ] {
            post(pa, #"{"port_association": {"port_id": "\#(port)", "routes": \#(routes)}}"#, demo)
        }
        // Networks, subnets, ports: conflicts and bad values.
        post("/v2.0/networks", #"{"network": {"provider:network_type": "vxlan", "provider:segmentation_id": \#(ids["vni"] ?? "0")}}"#)
        post("/v2.0/networks", #"{"network": {"provider:network_type": "vlan"}}"#)
        post("/v2.0/networks", #"{"network": {"shared": true}}"#, demo)
        for cidr in ["10.0.0.0/33", "10.0.0.1/24", "300.0.0.0/8", "2001:db8::/129", "10.0.0.0", "10.0.0.0/24x", "10.1.0.0/25"] {
            post("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "\#(cidr)"}}"#)
        }
        post("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "10.5.0.0/24", "ip_version": 6}}"#)
        post("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "10.5.0.0/24", "gateway_ip": "10.6.0.1"}}"#)
        post("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "10.5.0.0/24", "allocation_pools": [{"start": "10.5.0.10", "end": "10.5.1.10"}]}}"#)
        post("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "10.5.0.0/24", "allocation_pools": [{"start": "10.5.0.1", "end": "10.5.0.10"}]}}"#)
        post("/v2.0/subnets", #"{"subnet": {"cidr": "10.5.0.0/24"}}"#)
        for mac in ["zz:zz:zz:zz:zz:zz", "01:00:5e:00:00:01", "00:00:00:00:00:00", "fa:16:3e:00:00", "\(ids["mac"] ?? "")"] {
            post("/v2.0/ports", #"{"port": {"network_id": "\#(net)", "mac_address": "\#(mac)"}}"#)
        }
        for ip in ["10.1.0.1", "10.9.9.9", "not-an-ip", ids["ip"] ?? ""] {
            post("/v2.0/ports", #"{"port": {"network_id": "\#(net)", "fixed_ips": [{"ip_address": "\#(ip)"}]}}"#)
        }
        post("/v2.0/ports", #"{"port": {"network_id": "\#(net)", "fixed_ips": [{"subnet_id": "\#(UUID().uuidString.lowercased())"}]}}"#)
        post("/v2.0/ports", #"{"port": {"network_id": "\#(net)", "binding:host_id": "compute-1"}}"#, demo)
        put("/v2.0/ports/\(port)", #"{"port": {"network_id": "\#(UUID().uuidString.lowercased())"}}"#)
        put("/v2.0/ports/\(port)", #"{"port": {"status": "ACTIVE"}}"#)
        out.append(BadRequest(method: .DELETE, path: "/v2.0/networks/\(net)", token: admin))
        out.append(BadRequest(method: .DELETE, path: "/v2.0/subnets/\(subnet)", token: admin))
        out.append(BadRequest(method: .DELETE, path: "/v2.0/routers/\(router)", token: admin))
        out.append(BadRequest(method: .DELETE, path: "/v2.0/ports/\(ids["interface"] ?? "")", token: admin))
        put("/v2.0/routers/\(router)/add_router_interface", #"{"subnet_id": "\#(subnet)"}"#)
        put("/v2.0/routers/\(router)/add_router_interface", "{}")
        put("/v2.0/routers/\(router)/add_router_interface", #"{"subnet_id": "\#(subnet)", "port_id": "\#(port)"}"#)
        put("/v2.0/routers/\(router)/remove_router_interface", #"{"subnet_id": "\#(UUID().uuidString.lowercased())"}"#)
        put("/v2.0/routers/\(UUID().uuidString.lowercased())/add_router_interface", #"{"subnet_id": "\#(subnet)"}"#)
        // The agent API: other hosts, bad versions, bad statuses.
        let agent = tokens["compute-1"]
        out.append(BadRequest(method: .GET, path: "/v2.0/agent/hosts/compute-2/view", token: agent))
        out.append(BadRequest(method: .GET, path: "/v2.0/agent/hosts/compute-1/watch", token: agent))
        out.append(BadRequest(method: .GET, path: "/v2.0/agent/hosts/compute-1/watch?resource_version=x", token: agent))
        out.append(BadRequest(method: .GET, path: "/v2.0/agent/hosts/compute-1/watch?resource_version=999999", token: agent))
        out.append(BadRequest(method: .GET, path: "/v2.0/agent/hosts/compute-1/watch?resource_version=0&heartbeat=0", token: agent))
        out.append(BadRequest(method: .PUT, path: "/v2.0/agent/ports/\(port)/status", body: #"{"status": "UP"}"#, token: agent))
        out.append(BadRequest(method: .PUT, path: "/v2.0/agent/ports/\(port)/status", body: #"{"status": "ACTIVE"}"#, token: tokens["compute-2"]))
        out.append(BadRequest(method: .PUT, path: "/v2.0/agent/ports/\(port)/status", body: #"{"status": "ACTIVE"}"#, token: demo))
        out.append(BadRequest(method: .GET, path: "/v2.0/no_such_collection", token: admin))
        out.append(BadRequest(method: .GET, path: "/v2.0/extensions/no-such-extension", token: admin))
        return out
    }

    @Test(arguments: Storage.allCases) func badRequestsGetA4xxAndChangeNothing(on storage: Storage) async throws {
        guard let database = try storage.database() else { return }
        let controller = try await ControllerDaemon(database: database)
        defer { controller.stop() }
        var tokens: [String: String] = [:]
        for user in ["admin", "demo", "alt", "compute-1", "compute-2"] { tokens[user] = try await controller.token(user) }
        let admin = tokens["admin"]
        func create(_ path: String, _ body: String, _ member: String, _ token: String? = nil) async throws -> JSON {
            let r = try await controller.request(.POST, path, token: token ?? admin, body: body)
            guard r.status == 201, let o = r.json?[member] else { throw ControllerTestError("POST \(path): \(r.status) \(r.body)") }
            return o
        }
        var ids: [String: String] = [:]
        let demoProject = try #require(try await controller.request(.GET, "/v3/auth/tokens", token: admin, headers: [("X-Subject-Token", tokens["demo"] ?? "")]).json?["token"]?["project"]?["id"]?.stringValue)
        let network = try await create("/v2.0/networks", #"{"network": {"name": "n", "project_id": "\#(demoProject)"}}"#, "network")
        ids["net"] = network["id"]?.stringValue
        if case .int(let vni)? = network["provider:segmentation_id"] { ids["vni"] = String(vni) }
        ids["subnet"] = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(ids["net"] ?? "")", "cidr": "10.1.0.0/24", "project_id": "\#(demoProject)"}}"#, "subnet")["id"]?.stringValue
        let port = try await create("/v2.0/ports", #"{"port": {"network_id": "\#(ids["net"] ?? "")", "binding:host_id": "compute-1", "project_id": "\#(demoProject)"}}"#, "port")
        ids["port"] = port["id"]?.stringValue
        ids["mac"] = port["mac_address"]?.stringValue
        ids["ip"] = port["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue
        ids["router"] = try await create("/v2.0/routers", #"{"router": {"name": "r", "project_id": "\#(demoProject)"}}"#, "router")["id"]?.stringValue
        let itf = try await controller.request(.PUT, "/v2.0/routers/\(ids["router"] ?? "")/add_router_interface", token: admin, body: #"{"subnet_id": "\#(ids["subnet"] ?? "")"}"#)
        ids["interface"] = itf.json?["port_id"]?.stringValue
        ids["bgpvpn"] = try await create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"route_targets": ["64512:1"], "project_id": "\#(demoProject)"}}"#, "bgpvpn")["id"]?.stringValue
        ids["l2"] = try await create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"type": "l2", "project_id": "\#(demoProject)"}}"#, "bgpvpn")["id"]?.stringValue
        let assocNet = try await create("/v2.0/networks", #"{"network": {"name": "n2", "project_id": "\#(demoProject)"}}"#, "network")
        ids["assocNet"] = assocNet["id"]?.stringValue
        ids["assoc"] = try await create("/v2.0/bgpvpn/bgpvpns/\(ids["bgpvpn"] ?? "")/network_associations", #"{"network_association": {"network_id": "\#(ids["assocNet"] ?? "")"}}"#, "network_association", tokens["demo"])["id"]?.stringValue
        ids["altNet"] = try await create("/v2.0/networks", #"{"network": {"name": "alt"}}"#, "network", tokens["alt"])["id"]?.stringValue

        func snapshot() async throws -> [String] {
            var bodies: [String] = []
            for path in ["/v2.0/networks", "/v2.0/subnets", "/v2.0/ports", "/v2.0/routers", "/v2.0/bgpvpn/bgpvpns",
                         "/v2.0/bgpvpn/bgpvpns/\(ids["bgpvpn"] ?? "")/network_associations", "/v2.0/bgpvpn/bgpvpns/\(ids["bgpvpn"] ?? "")/port_associations",
                         "/v2.0/agent/hosts/compute-1/view"] {
                bodies.append(try await controller.request(.GET, path, token: admin).body)
            }
            return bodies
        }
        let before = try await snapshot()
        let requests = Self.requests(ids, tokens: tokens)
        #expect(requests.count >= 500, "\(requests.count) requests")
        var wrong: [String] = []
        for r in requests {
            let a = try await controller.request(r.method, r.path, token: r.token, body: r.body, headers: r.headers)
            let shaped = a.json?["NeutronError"]?["type"]?.stringValue != nil && a.json?["NeutronError"]?["message"]?.stringValue != nil
            if !(400..<500).contains(a.status) || !shaped {
                wrong.append("\(r.method) \(r.path) \(r.body?.prefix(120) ?? "") → \(a.status) \(a.body.prefix(200))")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(requests.count) answers were not 4xx NeutronErrors:\n\(wrong.prefix(40).joined(separator: "\n"))")
        let after = try await snapshot()
        for (b, a) in zip(before, after) where b != a {
            Issue.record("the state changed:\nbefore \(b.prefix(1500))\nafter  \(a.prefix(1500))")
        }
    }
}
