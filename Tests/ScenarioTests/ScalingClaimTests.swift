import BagpipeLab
import ControllerLab
import Foundation
import NeutronModel
import Testing

/// Issue 15, acceptance 6: "each host receives only the mappings it needs" (reference §7), measured.
/// 10 compute nodes, 20 networks, each node with a port on 4 of them: every bagpipe-bgp's BGP table
/// holds E-VPN routes of its own 4 networks (from every other node that has a port there) and none of
/// the 16 others, thanks to RT-Constraint at the reflector. Printed beside what an l2population-style
/// fan-out would send every node (every port of all 20 networks).
@Suite(.serialized, .timeLimit(.minutes(10))) struct ScalingClaimTests {
    static let hostCount = 10, networkCount = 20, networksPerHost = 4

    /// Host h's networks: a spread where networks have ports on 1 to 3 hosts.
    static func networks(of h: Int) -> [Int] { (0..<networksPerHost).map { (3 * h + 7 * $0) % networkCount } }

    @Test func eachHostReceivesOnlyTheRoutesOfItsNetworks() async throws {
        let hosts = (1...Self.hostCount).map { "compute-\($0)" }
        let c = try ComputeLab(hosts: hosts)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            var nets: [ComputeLab.NetworkInfo] = []
            for n in 0..<Self.networkCount { nets.append(try await c.makeNetwork("s\(n)", cidr: "10.\(110 + n).0.0/24")) }
            var ports: [(host: Int, network: Int, mac: String)] = []
            for (h, host) in hosts.enumerated() {
                for n in Self.networks(of: h) {
                    let vm = try await c.bootVM("s\(h)n\(n)", network: nets[n].id, host: host, gateway: nets[n].gateway)
                    ports.append((h, n, vm.mac))
                }
            }
            step = "routes held"
            let networkOfVNI = Dictionary(uniqueKeysWithValues: nets.enumerated().map { ($1.vni, $0) })
            var lines: [String] = []
            for (h, host) in hosts.enumerated() {
                let own = Set(Self.networks(of: h))
                // Expected: a MAC/IP route for each port of the host's networks on the other hosts.
                let expected = Set(ports.filter { $0.host != h && own.contains($0.network) }.map(\.mac))
                var held: [(network: Int, mac: String?)] = []
                _ = try await poll(timeout: 60) {
                    held = try self.remoteEVPNRoutes(c, host, networkOfVNI: networkOfVNI)
                    return Set(held.compactMap(\.mac)).symmetricDifference(expected).map { $0 }.sorted().joined(separator: " ")
                } until: { $0.isEmpty }
                let foreign = Set(held.map(\.network)).subtracting(own)
                #expect(foreign.isEmpty, "\(host) holds routes of networks \(foreign.sorted()) where it has no port")
                let fanOut = ports.filter { $0.host != h }.count
                lines.append(
                    "\(host): \(held.count) E-VPN routes (\(expected.count) MAC/IP) of its \(own.count) networks, 0 of the other \(Self.networkCount - own.count); "
                        + "an l2population fan-out sends it \(fanOut) FDB entries of all \(Self.networkCount)")
            }
            print("Each host receives only the mappings it needs:\n" + lines.joined(separator: "\n"))
        } catch {
            record(step, error, c)
        }
    }

    /// The E-VPN routes in a host's BGP table that another host advertised: each one's network (by
    /// its `<AS>:<VNI>` route target) and MAC (MAC/IP routes; nil for the flooding routes).
    func remoteEVPNRoutes(_ c: ComputeLab, _ host: String, networkOfVNI: [Int: Int]) throws -> [(network: Int, mac: String?)] {
        let r = try c.lab.request(host, "/looking-glass/bgp/routes")
        guard r.status == 200 else { throw Lab.LabError("\(host) looking glass: \(r.status) \(r.body)") }
        let own = c.lab.addresses[host] ?? ""
        var out: [(Int, String?)] = []
        for (family, routes) in try JSON.parse(r.body).objectValue ?? JSONObject() where family.hasPrefix("l2vpn/evpn") {
            for entry in routes.arrayValue ?? [] {
                for (nlri, route) in entry.objectValue ?? JSONObject() where route["next_hop"]?.stringValue != own {
                    let targets = route["route_targets"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    guard let vni = targets.lazy.compactMap({ Int($0.split(separator: ":").last ?? "") }).first(where: { networkOfVNI[$0] != nil }),
                        let network = networkOfVNI[vni]
                    else { continue }
                    // `type2:<RD>:<MAC>[:<IP>]`: the MAC is the last run of six two-digit hex groups.
                    let parts = nlri.split(separator: ":").map(String.init)
                    let isByte = { (p: String) in p.count == 2 && p.allSatisfy(\.isHexDigit) }
                    let mac = nlri.hasPrefix("type2:")
                        ? (0...max(0, parts.count - 6)).reversed().first { i in i + 6 <= parts.count && parts[i..<(i + 6)].allSatisfy(isByte) }.map { parts[$0..<($0 + 6)].joined(separator: ":").lowercased() }
                        : nil
                    out.append((network, mac))
                }
            }
        }
        return out
    }
}
