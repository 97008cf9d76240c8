import BGPWire
import Dataplane
import Netlink

/// The IP VPN `linux` driver's state against the kernel's: rules and routes of protocol 19, and
/// the remote PEs' neighbour entries on the VXLAN device. What a restart left and no VRF took over
/// is "extra"; `sweepStale` removes it.
extension LinuxIPVPNDriver {
    public func adoptState() throws {
        let rules = try netlink.rules().filter { $0.protocolID == bagpipeRouteProtocol }
        adoptedRules = Set(rules.map(RuleRequests.describe))
        let routes = try netlink.routes().filter { $0.protocolID == bagpipeRouteProtocol }
        logger.notice("restart: \(rules.count) rules and \(routes.count) routes of the earlier run kept until the routes are back")
    }

    /// A rule to add: none when an earlier run's is there to take over.
    func add(_ rule: Rule) -> [NetlinkRequest] {
        adoptedRules.remove(RuleRequests.describe(rule)) != nil ? [] : [RuleRequests.add(rule)]
    }

    public func differences() -> [String] { (try? compare())?.map(\.what) ?? ["the dataplane could not be read"] }

    public func sweepStale() -> [String] {
        adoptedRules = []
        guard let extra = try? compare().filter({ $0.removal != nil }) else { return [] }
        for case .failure(let e) in netlink.perform(extra.compactMap(\.removal)) { logger.warning("removing a stale entry: \(e)") }
        if !extra.isEmpty { logger.notice("restart over: removed \(extra.count) entries no route or port accounts for: \(extra.map(\.what).joined(separator: "; "))") }
        return extra.map(\.what)
    }

    struct Difference {
        var what: String
        var removal: NetlinkRequest?
    }

    func compare() throws -> [Difference] {
        var found: [Difference] = []
        // Rules: each VRF's ports, VNIs and classifiers.
        var wantRules: [String: Rule] = [:]
        for vrf in instances.values {
            for name in vrf.ports.keys {
                wantRules[RuleRequests.describe(vrf.portRule(name))] = vrf.portRule(name)
                for (c, to) in vrf.classifiers { wantRules[RuleRequests.describe(vrf.classifierRule(c, port: name, to: to))] = vrf.classifierRule(c, port: name, to: to) }
            }
            for label in vrf.labels.keys { wantRules[RuleRequests.describe(vrf.vniRule(label))] = vrf.vniRule(label) }
        }
        var seen: Set<String> = []
        for rule in try netlink.rules() where rule.protocolID == bagpipeRouteProtocol {
            let d = RuleRequests.describe(rule)
            if wantRules[d] == nil || !seen.insert(d).inserted { found.append(Difference(what: "extra \(d)", removal: RuleRequests.delete(rule))) }
        }
        for d in Set(wantRules.keys).subtracting(seen).sorted() { found.append(Difference(what: "missing \(d)")) }
        // Routes: each VRF's local endpoints and remote prefixes, in its table.
        struct Destination: Hashable {
            var table: UInt32
            var prefix: IPPrefix
        }
        var wantRoutes = Set<Destination>()
        for vrf in instances.values {
            for endpoint in vrf.ports.values.joined() { if let ip = endpoint.ip { wantRoutes.insert(Destination(table: vrf.table, prefix: IPPrefix(ip, length: UInt8(ip.bitWidth)))) } }
            for prefix in vrf.remotes.keys { wantRoutes.insert(Destination(table: vrf.table, prefix: prefix)) }
        }
        var present = Set<Destination>()
        for route in try netlink.routes() where route.protocolID == bagpipeRouteProtocol {
            let d = Destination(table: route.table, prefix: route.prefix)
            present.insert(d)
            if !wantRoutes.contains(d) { found.append(Difference(what: "extra route \(route.prefix) in table \(route.table)", removal: RouteRequests.delete(route))) }
        }
        for d in wantRoutes.subtracting(present) { found.append(Difference(what: "missing route \(d.prefix) in table \(d.table)")) }
        // The remote PEs' router MACs on the VXLAN device.
        if deviceIndex != 0 {
            let have = Set(try netlink.neighbours(device: deviceIndex).filter { $0.state & 0x80 != 0 }.compactMap { n -> IPv4Address? in if case .v4(let a) = n.ip { a } else { nil } })
            for pe in have.subtracting(peUsers.keys).sorted() {
                found.append(Difference(what: "extra neighbour \(pe) on \(Self.deviceName)", removal: NeighbourRequests.delete(.v4(pe), device: deviceIndex, deviceName: Self.deviceName)))
            }
            for pe in Set(peUsers.keys).subtracting(have).sorted() { found.append(Difference(what: "missing neighbour \(pe) on \(Self.deviceName)")) }
        }
        return found
    }
}
