import BagpipeLab
import BGPWire
import BagpipeCLI
import Foundation
import Testing

/// Issue 5, acceptance 4: hundreds of malformed and edge-case requests against a running daemon.
/// Every one gets a 4xx with a JSON `{code, title, message}`, the daemon stays up (same /ping), and
/// the looking glass shows exactly the state it showed before.
@Suite(.timeLimit(.minutes(5))) struct APIRobustnessTests {
    static let macA = "52:54:00:00:00:0a", macB = "52:54:00:00:00:0b"

    static func evpn(_ changes: [String: JSONValue?] = [:]) -> JSONValue {
        edit(.object([
            ("vpn_type", "evpn"), ("vpn_instance_id", "net-1"), ("mac_address", .string(macA)), ("ip_address", "10.0.0.1"), ("local_port", "tap1"),
            ("import_rt", ["64512:1"]), ("export_rt", ["64512:1"]), ("vni", 5001),
        ]), changes)
    }

    static func ipvpn(_ changes: [String: JSONValue?] = [:]) -> JSONValue {
        edit(.object([
            ("vpn_type", "ipvpn"), ("vpn_instance_id", "vrf-1"), ("mac_address", .string(macA)), ("ip_address", "10.1.0.1/24"), ("gateway_ip", "10.1.0.254"),
            ("local_port", "tap1"), ("import_rt", ["64512:2"]), ("export_rt", ["64512:2"]),
        ]), changes)
    }

    static func edit(_ value: JSONValue, _ changes: [String: JSONValue?]) -> JSONValue {
        guard case .object(var fields) = value else { return value }
        for (key, change) in changes.sorted(by: { $0.key < $1.key }) {
            fields.removeAll { $0.0 == key }
            if let change { fields.append((key, change)) }
        }
        return .object(fields)
    }

    /// (path, body bytes, what it is).
    typealias Case = (path: String, body: [UInt8], label: String)

    static func cases() -> [Case] {
        var out: [Case] = []
        func add(_ path: String, _ body: JSONValue, _ label: String) { out.append((path, Array(body.serialized().utf8), label)) }
        func raw(_ path: String, _ text: String, _ label: String) { out.append((path, Array(text.utf8), label)) }
        let huge = String(repeating: "x", count: 100_000)
        let unicode = "réseau-☃-ネットワーク-😀"

        // Bodies that are not a request object.
        for text in ["", " ", "{", "}", "[", "nul", "not json", "{\"a\":}", "{'a': 1}", "\u{FEFF}{}", "[1,2]", "1", "\"s\"", "null", "true", "{\"vpn_type\": \"evpn\",}", "{\"a\" 1}"] {
            for path in ["/attach_localport", "/detach_localport"] { raw(path, text, "body \(text.debugDescription)") }
        }
        raw("/attach_localport", String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000), "nesting 5000 deep")
        var generator = SplitMix64(seed: 7)
        for n in 0..<60 {
            let bytes = (0..<(1 + n * 7 % 300)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            out.append(("/attach_localport", bytes, "random bytes \(n)"))
        }

        // A valid request cut short at every byte: never valid JSON.
        let whole = Array(evpn().serialized().utf8)
        for n in stride(from: 1, to: whole.count, by: 1) { out.append(("/attach_localport", Array(whole[..<n]), "attach cut at byte \(n)")) }

        // A mandatory field missing.
        for (base, name) in [(evpn(), "evpn"), (ipvpn(), "ipvpn")] {
            for key in ["vpn_type", "vpn_instance_id", "mac_address", "local_port", "import_rt", "export_rt"] + (name == "ipvpn" ? ["ip_address", "gateway_ip"] : []) {
                add("/attach_localport", edit(base, [key: nil]), "\(name) attach without \(key)")
                add("/attach_localport", edit(base, [key: .null]), "\(name) attach with \(key) null")
            }
            for key in ["vpn_type", "vpn_instance_id", "mac_address", "local_port"] + (name == "ipvpn" ? ["ip_address"] : []) {
                add("/detach_localport", edit(base, [key: nil]), "\(name) detach without \(key)")
            }
        }

        // Wrong types and invalid values, field by field, on otherwise valid attaches.
        let rtLists: [JSONValue] = [1, [1], ["x"], ["64512"], ["70000:1"], ["1:4294967296"], [":"], ["a:b"], .object([]), true, ["６４５１２:1"], [.string(huge)], [.null], "1:1:1", ["-1:5"]]
        let bad: [String: [JSONValue]] = [
            "vpn_type": [1, true, [], .object([]), "EVPN", "l3vpn", "", .string(unicode)],
            "vpn_instance_id": [1, true, [], .object([]), .double(1.5)],
            "mac_address": [1, "", "gg:gg:gg:gg:gg:gg", "52:54:00:00:00", "52:54:00:00:00:01:02", "５２:54:00:00:00:01", .string(huge), .string(unicode), [], "52:54:00:00:00:0g"],
            "local_port": [1, [], .object([]), .object([("foo", 1)]), .object([("linuxif", 1)]), .object([("linuxif", "")]), .object([("evpn", 1)]), .object([("evpn", .object([]))]),
                .object([("linuxif", "a"), ("evpn", .object([("id", "net-1")]))]), true],
            "import_rt": rtLists, "export_rt": rtLists,
            "ip_address": [1, "10.0.0.256", "10.0.0.1/33", "x", "", "１０.0.0.1", "10.0.0.1/", "/24", "10.0.0.1/24/1", .string(huge), [], "2001:db8::1/129"],
            "gateway_ip": ["x", 1, "10.0.0.300", [], true],
            "advertise_subnet": [1, "true", [], "yes", .object([])],
            "direction": ["floop", 1, "", "BOTH", [], true],
            "local_pref": [-1, .double(1.5), "100", 4_294_967_296, true, []],
            "lb_consistent_hash_order": [-1, "0", .double(1.5), true, 4_294_967_296],
            "vni": [-1, 16_777_216, "5000", true, .double(1.5), []],
            "linuxbr": [1, [], true],
            "readvertise": [1, "x", .object([]), .object([("from_rt", ["1:1"])]), .object([("from_rt", "1:1"), ("to_rt", ["1:2"])]), .object([("from_rt", ["x"]), ("to_rt", ["1:2"])]), [], true],
        ]
        for (key, values) in bad.sorted(by: { $0.key < $1.key }) {
            for (i, value) in values.enumerated() {
                add("/attach_localport", evpn([key: value]), "evpn \(key) #\(i)")
                // ipvpn routes need a gateway: its own errors are checked above.
                add("/attach_localport", ipvpn([key: value]), "ipvpn \(key) #\(i)")
            }
        }
        // Attract-traffic rules (with readvertise, so that they are read).
        let readv: JSONValue = .object([("from_rt", ["64512:3"]), ("to_rt", ["64512:4"])])
        let attracts: [JSONValue] = [
            1, "x", .object([("redirect_rts", ["64512:5"])]), .object([("classifier", .object([("destinationPort", "80")]))]),
            .object([("redirect_rts", 5), ("classifier", .object([]))]), .object([("redirect_rts", ["64512:5"]), ("classifier", .object([("destinationPort", "80:20")]))]),
            .object([("redirect_rts", ["64512:5"]), ("classifier", .object([("sourcePort", "x")]))]),
            .object([("redirect_rts", ["64512:5"]), ("classifier", .object([("protocol", "nope")]))]),
            .object([("redirect_rts", ["64512:5"]), ("classifier", .object([("what", "ever")]))]),
            .object([("redirect_rts", ["64512:5"]), ("classifier", .object([])), ("to_rt", ["64512:9"]), ("static_destination_prefixes", ["1.0.0.0/8"])]),
            .object([("redirect_rts", ["64512:5"]), ("classifier", .object([])), ("to_rt", ["64512:4"])]),
            .object([("redirect_rts", ["64512:5"]), ("classifier", .object([])), ("to_rt", ["64512:4"]), ("static_destination_prefixes", ["nope"])]),
            .object([("redirect_rts", []), ("classifier", .object([]))]),
        ]
        for (i, a) in attracts.enumerated() { add("/attach_localport", ipvpn(["vpn_instance_id": "vrf-9", "readvertise": readv, "attract_traffic": a]), "attract #\(i)") }

        // Conflicts with the state and refused combinations.
        add("/attach_localport", evpn(["mac_address": .string(macB)]), "evpn: the IP is bound to another MAC")
        add("/attach_localport", evpn(["local_port": "tap2"]), "evpn: the MAC is on another port")
        add("/attach_localport", ipvpn(["mac_address": .string(macB)]), "ipvpn: the IP is bound to another MAC")
        add("/attach_localport", ipvpn(["local_port": "tap9"]), "ipvpn: the MAC is on another port")
        add("/attach_localport", evpn(["vpn_instance_id": "net-2", "mac_address": .string(macB), "ip_address": "10.0.0.2"]), "vni 5001 used by net-1")
        add("/attach_localport", ipvpn(["vpn_instance_id": "net-1"]), "net-1 is an E-VPN")
        add("/attach_localport", evpn(["vpn_instance_id": "vrf-1", "vni": nil]), "vrf-1 is a VRF")
        add("/attach_localport", evpn(["vpn_instance_id": "net-3", "vni": nil, "ip_address": "10.0.0.0/24", "advertise_subnet": true]), "evpn advertise_subnet with a prefix")
        add("/attach_localport", evpn(["vpn_instance_id": "net-3", "vni": nil, "direction": "from-port"]), "evpn direction the dummy driver refuses")
        add("/attach_localport", ipvpn(["vpn_instance_id": "vrf-6", "ip_address": "2001:db8::5", "gateway_ip": "2001:db8::1"]), "IPv6 without enable_ipv6_vpn")
        add("/attach_localport", ipvpn(["vpn_instance_id": "vrf-2", "local_port": .object([("evpn", .object([("id", "no-such-evi")]))])]), "link to a missing EVI")
        add("/attach_localport", ipvpn(["vpn_instance_id": "vrf-2", "local_port": .object([("evpn", .object([("id", "vrf-1")]))])]), "link to a VRF")
        add("/attach_localport", evpn(["vpn_instance_id": "net-4", "vni": nil, "local_port": .object([("evpn", .object([("id", "net-1")]))])]), "evpn with local_port.evpn")

        // Detaches that find nothing or the wrong thing.
        for id in ["nope", "", " ", unicode, huge, "NET-1", "net-1 ", "vrf-1\u{0}"] {
            add("/detach_localport", edit(evpn(), ["vpn_instance_id": .string(id)]), "detach from \(id.prefix(20).debugDescription)")
            add("/detach_localport", edit(ipvpn(), ["vpn_instance_id": .string(id)]), "ipvpn detach from \(id.prefix(20).debugDescription)")
        }
        add("/detach_localport", evpn(["ip_address": "10.0.0.99"]), "evpn detach of an address not plugged")
        add("/detach_localport", evpn(["mac_address": .string(macB)]), "evpn detach: the IP is bound to another MAC")
        add("/detach_localport", ipvpn(["ip_address": "10.1.0.99/24"]), "ipvpn detach of an address not plugged")
        add("/detach_localport", ipvpn(["mac_address": .string(macB)]), "ipvpn detach: the IP is bound to another MAC")
        for (key, values) in ["mac_address": ["x", "", "gg:gg:gg:gg:gg:gg"], "ip_address": ["x", "10.0.0.300"], "vpn_type": ["x", "IPVPN"]] as [String: [JSONValue]] {
            for v in values { add("/detach_localport", evpn([key: v]), "detach \(key) \(v.serialized())") }
        }

        // Too large a body.
        raw("/attach_localport", "{\"description\": \"" + String(repeating: "y", count: 2 << 20) + "\"}", "a 2 MiB body")
        return out
    }

    /// What must not change: the instances, their nodes (routes, dataplane, ports), route counts, labels.
    func snapshot(_ host: HostDaemon) async throws -> [String] {
        var parts = [try await host.lookingGlass("vpns/instances").serialized(), try await host.lookingGlass("bgp/route_counts").serialized(),
                     try await host.lookingGlass("vpns/dataplane/ids").serialized(), try await host.lookingGlass("vpns/instances_per_vni").serialized()]
        for id in ["net-1", "vrf-1"] {
            for child in ["ports", "route_targets", "dataplane", "adv_routes", "best_routes", "instance_rd", "instance_dataplane_id"] {
                parts.append(try await host.lookingGlass("vpns/instances/\(id)/\(child)").serialized())
            }
        }
        return parts
    }

    @Test func hundredsOfBadRequestsGet4xxJSONAndChangeNothing() async throws {
        let host = try await HostDaemon()
        defer { host.stop() }
        #expect(try await host.post("/attach_localport", Self.evpn().serialized()).status == 200)
        #expect(try await host.post("/attach_localport", Self.ipvpn().serialized()).status == 200)
        let before = try await snapshot(host)
        let ping = try await host.get("/ping").body
        let cases = Self.cases()
        #expect(cases.count >= 500, "\(cases.count) cases")
        var failures: [String] = []
        for c in cases {
            let response: BagpipeCLI.Response
            do {
                response = try await BagpipeCLI.request(host.base + c.path, method: .POST, body: c.body)
            } catch {
                failures.append("\(c.label): no answer (\(error))")
                continue
            }
            guard (400..<500).contains(response.status) else {
                failures.append("\(c.label): \(response.status) \(response.body.prefix(200))")
                continue
            }
            let body = try? BagpipeCLI.json(response.body)
            if body?["code"]?.stringValue?.hasPrefix("\(response.status) ") != true || body?["title"]?.stringValue == nil || body?["message"]?.stringValue == nil {
                failures.append("\(c.label): not a JSON error: \(response.body.prefix(200))")
            }
        }
        // Methods other than the API's, and looking-glass paths that do not exist.
        for (method, path) in [("PUT", "/attach_localport"), ("DELETE", "/detach_localport"), ("PATCH", "/ping"), ("POST", "/looking-glass"), ("DELETE", "/")] {
            let r = try await BagpipeCLI.request(host.base + path, method: .init(rawValue: method))
            if r.status != 405 || (try? BagpipeCLI.json(r.body))?["code"]?.stringValue != "405 Method Not Allowed" { failures.append("\(method) \(path): \(r.status) \(r.body)") }
        }
        for path in ["nope", "vpns/instances/nope", "vpns/instances/net-1/nope", "bgp/peers/192.0.2.99", "summary/nope/deeper", "vpns/instances/%E2%98%83"] {
            let r = try await host.get("/looking-glass/" + path)
            if r.status != 404 || (try? BagpipeCLI.json(r.body))?["code"]?.stringValue != "404 Not Found" { failures.append("GET \(path): \(r.status) \(r.body)") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) requests were not clean 4xx JSON answers:\n\(failures.prefix(30).joined(separator: "\n"))")
        #expect(host.isRunning, "the daemon is up")
        #expect(try await host.get("/ping").body == ping, "the same process (same /ping)")
        let after = try await snapshot(host)
        #expect(after == before, "the looking glass shows the same state")
    }
}
