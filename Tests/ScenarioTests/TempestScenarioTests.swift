import BagpipeLab
import ControllerLab
import Foundation
import Testing

/// Issue 15, acceptance 5: neutron-tempest-plugin's BGPVPN scenarios (reference §6.2,
/// `test_bgpvpn_basic.py`) rebuilt in namespaces: two compute nodes, networks A, B and C from
/// 10.100.0.0/16, servers with fixed IPs, everything through the controller's API. "1 → 2" is
/// server 1 (network A) reaching server 2 (network B) through the BGPVPN. Each test runs its variants
/// one after the other on one lab, each with networks and BGPVPNs of its own; each test runs with our
/// reflector and with gobgpd.
@Suite(.serialized, .timeLimit(.minutes(10))) struct TempestScenarioTests {
    /// Networks A and B (and C) of one variant, `10.100.<base + i>.0/24`, and a server on each, server 1
    /// on compute-1, the others on compute-2.
    struct Topology {
        var nets: [ComputeLab.NetworkInfo] = []
        var servers: [VM] = []
    }

    func topology(_ c: ComputeLab, _ tag: String, base: Int, networks: Int = 2, servers: Bool = true) async throws -> Topology {
        var t = Topology()
        for i in 0..<networks { t.nets.append(try await c.makeNetwork("\(tag)-\(["A", "B", "C"][i])", cidr: "10.100.\(base + i).0/24")) }
        if servers { try await boot(c, &t, tag) }
        return t
    }

    func boot(_ c: ComputeLab, _ t: inout Topology, _ tag: String) async throws {
        for (i, net) in t.nets.enumerated() {
            let host = i == 0 ? "compute-1" : "compute-2"
            let name = "\(tag)\(i + 1)"
            let port = try await c.bootVM(name, network: net.id, host: host, gateway: net.gateway, ip: net.cidr.replacingOccurrences(of: ".0/24", with: ".10"))
            t.servers.append(VM(name: name, port: port, host: host))
        }
    }

    func reaches(_ c: ComputeLab, _ a: VM, _ b: VM, timeout: Double = 30) async -> Bool { await c.pingAll([a, b], timeout: timeout).isEmpty }
    func cut(_ c: ComputeLab, _ a: VM, _ b: VM) async -> Bool {
        let there = await c.noneAnswer(from: [a], to: [b])
        let back = await c.noneAnswer(from: [b], to: [a], settle: 0)
        return there.isEmpty && back.isEmpty
    }

    /// `basic` and `variant1`-`variant6`: the order of servers, associations and a router on B varies;
    /// server 1 reaches server 2 in every one.
    @Test(arguments: ComputeLab.Reflector.allCases) func basicAndOrderingVariants(_ reflector: ComputeLab.Reflector) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], reflector: reflector)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            for (v, variant) in ["basic", "variant1", "variant2", "variant3", "variant4", "variant5", "variant6"].enumerated() {
                step = variant
                let tag = "o\(v)"
                let routerFirst = ["variant2", "variant3", "variant5"].contains(variant)
                let serversFirst = !["variant1", "variant6"].contains(variant)
                var t = try await topology(c, tag, base: 10 * v, servers: false)
                var router: String?
                if variant == "variant5" { router = try await c.router("\(tag)-r") }
                if serversFirst { try await boot(c, &t, tag) }
                if routerFirst {
                    var r = router ?? ""
                    if r.isEmpty { r = try await c.router("\(tag)-r") }
                    router = r
                    try await c.addInterface(router: r, subnet: t.nets[1].subnetID)
                }
                let vpn = try await c.bgpvpn(tag, routeTargets: ["64512:\(100 + v)"])
                for net in t.nets { _ = try await c.associate(network: net.id, to: vpn) }
                if variant == "variant3", let r = router {
                    try await c.removeInterface(router: r, subnet: t.nets[1].subnetID)
                    try await c.delete("/v2.0/routers/\(r)")
                }
                if variant == "variant4" || variant == "variant6" {
                    let r = try await c.router("\(tag)-r")
                    try await c.addInterface(router: r, subnet: t.nets[1].subnetID)
                }
                if !serversFirst { try await boot(c, &t, tag) }
                let (one, two) = (t.servers[0], t.servers[1])
                let ok = variant == "variant4" ? await reaches(c, two, one) : await reaches(c, one, two)
                #expect(ok, "\(variant): 1 → 2")
            }
        } catch {
            record(step, error, c)
        }
    }

    /// The route-target updates: disjoint import and export cut traffic and restoring them brings it
    /// back; a common target keeps it; an unassociated network stays apart until associated and the
    /// targets fixed; traffic inside a network never stops meanwhile (with B net- or router-associated).
    @Test(arguments: ComputeLab.Reflector.allCases) func routeTargetUpdates(_ reflector: ComputeLab.Reflector) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], reflector: reflector)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            func vpnPath(_ id: String) -> String { "/v2.0/bgpvpn/bgpvpns/\(id)" }
            let rt = #""route_targets": ["64512:200"], "import_targets": [], "export_targets": []"#
            let disjoint = #""route_targets": [], "import_targets": ["64512:201"], "export_targets": ["64512:202"]"#

            step = "update_route_targets_disjoint_targets"
            var t = try await topology(c, "d", base: 0)
            let vpn = try await c.bgpvpn("d", routeTargets: ["64512:200"])
            for net in t.nets { _ = try await c.associate(network: net.id, to: vpn) }
            #expect(await reaches(c, t.servers[0], t.servers[1]))
            try await c.update(vpnPath(vpn), "{\"bgpvpn\": {\(disjoint)}}")
            #expect(await cut(c, t.servers[0], t.servers[1]), "disjoint targets")
            try await c.update(vpnPath(vpn), "{\"bgpvpn\": {\(rt)}}")
            #expect(await reaches(c, t.servers[0], t.servers[1]), "targets restored")

            step = "update_route_targets_common_target"
            try await c.update(vpnPath(vpn), #"{"bgpvpn": {"route_targets": ["64512:200"], "import_targets": ["64512:200"], "export_targets": ["64512:203"]}}"#)
            #expect(await reaches(c, t.servers[0], t.servers[1]), "a common target")

            step = "update_route_targets_and_unassociated_net"
            t = try await topology(c, "u", base: 10)
            let local = try await c.bootVM("u1b", network: t.nets[0].id, host: "compute-2", gateway: t.nets[0].gateway, ip: "10.100.10.11")
            let localVM = VM(name: "u1b", port: local, host: "compute-2")
            let vpn2 = try await c.bgpvpn("u", importTargets: ["64512:211"], exportTargets: ["64512:212"])
            _ = try await c.associate(network: t.nets[0].id, to: vpn2)
            #expect(await cut(c, t.servers[0], t.servers[1]), "only A associated, disjoint")
            #expect(await reaches(c, t.servers[0], localVM), "local traffic inside A")
            _ = try await c.associate(network: t.nets[1].id, to: vpn2)
            #expect(await cut(c, t.servers[0], t.servers[1]), "both associated, disjoint")
            #expect(await reaches(c, t.servers[0], localVM, timeout: 5), "local traffic inside A, targets wrong")
            try await c.update(vpnPath(vpn2), #"{"bgpvpn": {"route_targets": ["64512:210"], "import_targets": [], "export_targets": []}}"#)
            #expect(await reaches(c, t.servers[0], t.servers[1]), "targets fixed")
            #expect(await reaches(c, t.servers[0], localVM, timeout: 5), "local traffic inside A, targets fixed")

            step = "update_rt_and_keep_local_connectivity (B router-associated)"
            t = try await topology(c, "k", base: 20)
            let kLocal = VM(name: "k2b", port: try await c.bootVM("k2b", network: t.nets[1].id, host: "compute-1", gateway: t.nets[1].gateway, ip: "10.100.21.11"), host: "compute-1")
            let router = try await c.router("k-r")
            try await c.addInterface(router: router, subnet: t.nets[1].subnetID)
            let vpn3 = try await c.bgpvpn("k", routeTargets: ["64512:220"])
            _ = try await c.associate(network: t.nets[0].id, to: vpn3)
            _ = try await c.associate(router: router, to: vpn3)
            #expect(await reaches(c, t.servers[0], t.servers[1]))
            try await c.update(vpnPath(vpn3), #"{"bgpvpn": {"route_targets": [], "import_targets": ["64512:221"], "export_targets": ["64512:222"]}}"#)
            #expect(await cut(c, t.servers[0], t.servers[1]), "disjoint")
            #expect(await reaches(c, t.servers[1], kLocal, timeout: 5), "local traffic inside B, targets wrong")
            try await c.update(vpnPath(vpn3), #"{"bgpvpn": {"route_targets": ["64512:220"], "import_targets": [], "export_targets": []}}"#)
            #expect(await reaches(c, t.servers[0], t.servers[1]), "targets fixed")
            #expect(await reaches(c, t.servers[1], kLocal, timeout: 5), "local traffic inside B, targets fixed")
        } catch {
            record(step, error, c)
        }
    }

    /// The negative cases: no association of B, disjoint targets from the start, the BGPVPN deleted,
    /// the network or router association deleted, an update to disjoint targets or to no targets.
    @Test(arguments: ComputeLab.Reflector.allCases) func negativeCases(_ reflector: ComputeLab.Reflector) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], reflector: reflector)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            step = "negative_ping_to_unassociated_net"
            var t = try await topology(c, "a", base: 0)
            let vpnA = try await c.bgpvpn("a", routeTargets: ["64512:300"])
            _ = try await c.associate(network: t.nets[0].id, to: vpnA)
            #expect(await cut(c, t.servers[0], t.servers[1]))

            step = "negative_disjoint_import_export"
            t = try await topology(c, "j", base: 10)
            let vpnJ = try await c.bgpvpn("j", importTargets: ["64512:311"], exportTargets: ["64512:312"])
            for net in t.nets { _ = try await c.associate(network: net.id, to: vpnJ) }
            #expect(await cut(c, t.servers[0], t.servers[1]))

            for (i, variant) in ["delete_bgpvpn", "delete_net_association", "delete_router_association", "update_to_disjoint_import_export", "update_to_empty_rt_list"].enumerated() {
                step = "negative_\(variant)"
                let tag = "x\(i)"
                t = try await topology(c, tag, base: 20 + 10 * i)
                let vpn = try await c.bgpvpn(tag, routeTargets: ["64512:\(320 + i)"])
                _ = try await c.associate(network: t.nets[0].id, to: vpn)
                var last: String
                if variant == "delete_router_association" {
                    let r = try await c.router("\(tag)-r")
                    try await c.addInterface(router: r, subnet: t.nets[1].subnetID)
                    last = "/v2.0/bgpvpn/bgpvpns/\(vpn)/router_associations/" + (try await c.associate(router: r, to: vpn))
                } else {
                    last = "/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations/" + (try await c.associate(network: t.nets[1].id, to: vpn))
                }
                #expect(await reaches(c, t.servers[0], t.servers[1]), "\(variant): before")
                switch variant {
                case "delete_bgpvpn": try await c.delete("/v2.0/bgpvpn/bgpvpns/\(vpn)")
                case "update_to_disjoint_import_export":
                    try await c.update("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"route_targets": [], "import_targets": ["64512:391"], "export_targets": ["64512:392"]}}"#)
                case "update_to_empty_rt_list": try await c.update("/v2.0/bgpvpn/bgpvpns/\(vpn)", #"{"bgpvpn": {"route_targets": []}}"#)
                default: try await c.delete(last)
                }
                #expect(await cut(c, t.servers[0], t.servers[1]), "\(variant): after")
            }
        } catch {
            record(step, error, c)
        }
    }

    /// `tenant_separation_and_local_connectivity`: A and B in one BGPVPN, A-bis and B-bis with the same
    /// CIDRs and addresses in another: each server reaches its own twin, never the other (the echo
    /// requests counted in each server's namespace), and local traffic goes on.
    @Test(arguments: ComputeLab.Reflector.allCases) func tenantSeparation(_ reflector: ComputeLab.Reflector) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], reflector: reflector)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            let t = try await topology(c, "t", base: 0)
            let bis = try await topology(c, "tbis", base: 0)
            for (tag, topo, rt) in [("t", t, "64512:400"), ("tbis", bis, "64512:401")] {
                let vpn = try await c.bgpvpn(tag, routeTargets: [rt])
                for net in topo.nets { _ = try await c.associate(network: net.id, to: vpn) }
            }
            step = "reachability"
            #expect(await reaches(c, t.servers[0], t.servers[1]))
            #expect(await reaches(c, bis.servers[0], bis.servers[1]))
            step = "separation"
            for (from, right, wrong) in [(t.servers[0], t.servers[1], bis.servers[1]), (bis.servers[0], bis.servers[1], t.servers[1])] {
                let before = (try echoRequests(c, right), try echoRequests(c, wrong))
                for _ in 0..<5 { _ = c.lab.ping(from: from.name, right.ip) }
                let after = (try echoRequests(c, right), try echoRequests(c, wrong))
                #expect(after.0 - before.0 >= 5 && after.1 == before.1, "\(from) → \(right.ip): its twin got \(after.0 - before.0), the other \(after.1 - before.1)")
            }
        } catch {
            record(step, error, c)
        }
    }

    /// The echo requests a VM has received (its namespace's ICMP counters).
    func echoRequests(_ c: ComputeLab, _ vm: VM) throws -> Int {
        let snmp = try c.lab.exec(vm.name, ["cat", "/proc/net/snmp"]).split(separator: "\n").filter { $0.hasPrefix("Icmp:") }
        guard snmp.count == 2 else { throw Lab.LabError("no ICMP counters in \(vm.name)") }
        let names = snmp[0].split(separator: " "), values = snmp[1].split(separator: " ")
        guard let i = names.firstIndex(of: "InEchos"), i < values.count, let n = Int(values[i]) else { throw Lab.LabError("no InEchos in \(vm.name)") }
        return n
    }

    /// The port associations: prefix routes created then updated away or deleted; `local_pref`
    /// choosing between two servers that advertise one prefix, and swapped; 90 /32 routes. On Open
    /// vSwitch, as upstream runs them: each route is a VRF of its own on the port, and on Linux a
    /// network's E-VPN links into one VRF only (reference §8.6).
    @Test(arguments: ComputeLab.Reflector.allCases) func portAssociations(_ reflector: ComputeLab.Reflector) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], dataplane: .ovs, reflector: reflector)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            let t = try await topology(c, "p", base: 0, networks: 3)
            let vpn = try await c.bgpvpn("p", routeTargets: ["64512:500"])
            for net in t.nets.prefix(2) { _ = try await c.associate(network: net.id, to: vpn) }
            let (one, two, three) = (t.servers[0], t.servers[1], t.servers[2])
            // Server 2 forwards and owns an address of C's /24.
            _ = try c.lab.exec(two.name, ["ip", "addr", "add", "10.100.2.100/32", "dev", "lo"])
            func assoc(_ port: String, _ routes: String) async throws -> String {
                try await c.create("/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations", #"{"port_association": {"port_id": "\#(port)", "routes": \#(routes)}}"#, "port_association")["id"]?.stringValue ?? ""
            }
            let path = "/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations/"

            step = "port_association_create_and_update"
            let probe = two.at("10.100.2.100")
            #expect(await c.noneAnswer(from: [one], to: [probe], settle: 0).isEmpty, "no route yet")
            var pa = try await assoc(two.port.id, #"[{"type": "prefix", "prefix": "10.100.2.0/24"}]"#)
            #expect(await reachesAddress(c, one, "10.100.2.100"), "the prefix route")
            try await c.update(path + pa, #"{"port_association": {"routes": []}}"#)
            #expect(await c.noneAnswer(from: [one], to: [probe]).isEmpty, "routes emptied")

            step = "port_association_create_and_delete"
            try await c.delete(path + pa)
            pa = try await assoc(two.port.id, #"[{"type": "prefix", "prefix": "10.100.2.0/24"}]"#)
            #expect(await reachesAddress(c, one, "10.100.2.100"), "the prefix route again")
            try await c.delete(path + pa)
            #expect(await c.noneAnswer(from: [one], to: [probe]).isEmpty, "association deleted")

            step = "port_association_local_pref"
            // Server 3 (network C, associated too) owns the same address: the higher local_pref wins.
            _ = try await c.associate(network: t.nets[2].id, to: vpn)
            _ = try c.lab.exec(three.name, ["ip", "addr", "add", "10.100.2.100/32", "dev", "lo"])
            let p2 = try await assoc(two.port.id, #"[{"type": "prefix", "prefix": "10.100.2.100/32", "local_pref": 200}]"#)
            let p3 = try await assoc(three.port.id, #"[{"type": "prefix", "prefix": "10.100.2.100/32", "local_pref": 100}]"#)
            var w = try await winner(c, one, [two, three], expecting: two.name)
            #expect(w == two.name, "local_pref 200 on server 2: \(w) answers")
            try await c.update(path + p2, #"{"port_association": {"routes": [{"type": "prefix", "prefix": "10.100.2.100/32", "local_pref": 100}]}}"#)
            try await c.update(path + p3, #"{"port_association": {"routes": [{"type": "prefix", "prefix": "10.100.2.100/32", "local_pref": 200}]}}"#)
            w = try await winner(c, one, [two, three], expecting: three.name)
            #expect(w == three.name, "swapped, local_pref 200 on server 3: \(w) answers\n\(w == three.name ? "" : c.diagnostics())")
            try await c.delete(path + p2)
            try await c.delete(path + p3)

            step = "port_association_many_bgpvpn_routes"
            let many = (1...90).map { "10.100.3.\($0)" }
            for ip in many { _ = try c.lab.exec(two.name, ["ip", "addr", "add", "\(ip)/32", "dev", "lo"]) }
            let routes = "[" + many.map { #"{"type": "prefix", "prefix": "\#($0)/32"}"# }.joined(separator: ", ") + "]"
            let pm = try await assoc(two.port.id, routes)
            var rng = SplitMix64(seed: 15)
            let sample = (0..<10).map { _ in many[Int(rng.next() % UInt64(many.count))] }
            for ip in sample { #expect(await reachesAddress(c, one, ip), "\(ip) of 90") }
            try await c.update(path + pm, #"{"port_association": {"routes": []}}"#)
            for ip in sample.prefix(3) {
                let p = two.at(ip)
                #expect(await c.noneAnswer(from: [one], to: [p]).isEmpty, "\(ip) after the routes were cleared")
            }
        } catch {
            record(step, error, c)
        }
    }

    /// `port_association_bgpvpn_route`, route leaking: A, B and C in BGPVPNs a (import to-A, export
    /// from-A), b (import from-A and from-C) and c (import to-C, export from-C); server 2 (in B) has a
    /// port association to `to_a` (export to-A) leaking b's routes, and one to `to_c` (export to-C)
    /// leaking a's. Server 1 (A) reaches server 3 (C) through server 2 only when server 2 forwards;
    /// the associations deleted, it no longer does. On Open vSwitch, as the other port associations.
    @Test(arguments: ComputeLab.Reflector.allCases) func portAssociationBGPVPNRouteLeaking(_ reflector: ComputeLab.Reflector) async throws {
        let c = try ComputeLab(hosts: ["compute-1", "compute-2"], dataplane: .ovs, reflector: reflector)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            let t = try await topology(c, "l", base: 0, networks: 3)
            let (one, two, three) = (t.servers[0], t.servers[1], t.servers[2])
            let (toA, fromA, toC, fromC) = ("64512:601", "64512:602", "64512:603", "64512:604")
            let a = try await c.bgpvpn("a", importTargets: [toA], exportTargets: [fromA])
            let b = try await c.bgpvpn("b", importTargets: [fromC, fromA])
            let cc = try await c.bgpvpn("c", importTargets: [toC], exportTargets: [fromC])
            let vpnToA = try await c.bgpvpn("to_a", exportTargets: [toA])
            let vpnToC = try await c.bgpvpn("to_c", exportTargets: [toC])
            for (net, vpn) in zip(t.nets, [a, b, cc]) { _ = try await c.associate(network: net.id, to: vpn) }
            var associations: [String] = []
            for (vpn, leaked) in [(vpnToA, b), (vpnToC, a)] {
                let body = #"{"port_association": {"port_id": "\#(two.port.id)", "routes": [{"type": "bgpvpn", "bgpvpn_id": "\#(leaked)"}]}}"#
                let id = try await c.create("/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations", body, "port_association")["id"]?.stringValue ?? ""
                associations.append("/v2.0/bgpvpn/bgpvpns/\(vpn)/port_associations/\(id)")
            }
            step = "server 2 does not forward"
            // Server 2 is reachable from both sides (its own address leaks with the associations).
            #expect(await reaches(c, one, two), "server 1 → server 2")
            #expect(await reaches(c, three, two), "server 3 → server 2")
            #expect(await c.noneAnswer(from: [one], to: [three], settle: 0).isEmpty, "server 1 reaches server 3 while server 2 does not forward")
            step = "server 2 forwards"
            _ = try c.lab.exec(two.name, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            #expect(await reaches(c, one, three), "server 1 → server 3 through server 2")
            step = "associations deleted"
            for path in associations { try await c.delete(path) }
            let answering = await c.noneAnswer(from: [one], to: [three])
            #expect(answering.isEmpty, "server 1 still reaches server 3: \(answering)")
        } catch {
            record(step, error, c)
        }
    }

    func reachesAddress(_ c: ComputeLab, _ from: VM, _ ip: String, timeout: Double = 30) async -> Bool {
        (try? await c.lab.pingUntil(from: from.name, ip, timeout: timeout)) != nil
    }

    /// Which of `candidates` answers `from`'s echo requests to 10.100.2.100: asked until it is
    /// `expecting` or 30 s pass, then the last answer.
    func winner(_ c: ComputeLab, _ from: VM, _ candidates: [VM], expecting: String) async throws -> String {
        var last = "none"
        _ = try? await poll(timeout: 30) {
            let before = try candidates.map { try echoRequests(c, $0) }
            for _ in 0..<3 { _ = c.lab.ping(from: from.name, "10.100.2.100") }
            let after = try candidates.map { try echoRequests(c, $0) }
            let got = zip(candidates, zip(after, before)).filter { $0.1.0 - $0.1.1 >= 3 }.map(\.0.name)
            last = got.count == 1 ? got[0] : "not one (\(got))"
            return last
        } until: { $0 == expecting }
        return last
    }
}
