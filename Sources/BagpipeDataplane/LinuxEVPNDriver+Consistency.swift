import BGPWire
import Dataplane
import Netlink

/// The E-VPN `linux` driver's state against the kernel's: our devices, the VXLAN devices' remote
/// and flood entries, the bridges' static entries towards VXLAN and their neighbour entries. What a
/// restart left and no instance took over is "extra"; `sweepStale` removes it.
extension LinuxEVPNDriver {
    public func adoptState() throws {
        let left = try netlink.links().filter { $0.alias?.hasPrefix(Self.aliasPrefix) == true && ($0.kind == "vxlan" || $0.kind == "bridge") }
        logger.notice("restart: \(left.count) devices of the earlier run kept until the routes are back: \(left.map(\.name).joined(separator: " "))")
    }

    public func differences() -> [String] { (try? compare())?.map(\.what) ?? ["the dataplane could not be read"] }

    public func sweepStale() -> [String] {
        guard let found = try? compare() else { return [] }
        let extra = found.filter { $0.removal != nil }
        // Entries before their devices.
        let ordered = extra.filter { !$0.isDevice } + extra.filter { $0.isDevice && $0.what.contains("VXLAN") } + extra.filter { $0.isDevice && !$0.what.contains("VXLAN") }
        for case .failure(let e) in netlink.perform(ordered.compactMap(\.removal)) { logger.warning("removing a stale entry: \(e)") }
        if !ordered.isEmpty { logger.notice("restart over: removed \(ordered.count) entries no route or port accounts for: \(ordered.map(\.what).joined(separator: "; "))") }
        return ordered.map(\.what)
    }

    struct Difference {
        var what: String
        /// How to remove it, for an extra one.
        var removal: NetlinkRequest?
        var isDevice = false
    }

    func compare() throws -> [Difference] {
        let links = try netlink.links()
        let fdb = try netlink.fdbEntries()
        let neighbours = try netlink.neighbours()
        var found: [Difference] = []
        let mine = Set(instances.values.flatMap { [$0.bridge, $0.vxlan] })
        for link in links where link.alias?.hasPrefix(Self.aliasPrefix) == true && (link.kind == "vxlan" || link.kind == "bridge") && !mine.contains(link.name) {
            found.append(Difference(what: "extra \(link.kind == "vxlan" ? "VXLAN device" : "bridge") \(link.name)", removal: LinkRequests.delete(link.index, name: link.name), isDevice: true))
        }
        let zero = MACAddress(0)
        for i in instances.values.sorted(by: { $0.id < $1.id }) {
            guard links.contains(where: { $0.index == i.vxlanIndex }) else {
                found.append(Difference(what: "missing VXLAN device \(i.vxlan) of EVI \(i.id)"))
                continue
            }
            // The VXLAN device's own entries: a remote MAC or the flood list's zero MAC, to a VTEP.
            struct Tunnel: Hashable {
                var mac: MACAddress
                var vtep: IPv4Address
            }
            let want = Set(i.remoteMACs.map { Tunnel(mac: $0.key, vtep: $0.value.pe) } + i.floodList.map { Tunnel(mac: zero, vtep: $0) })
            let have = Set(fdb.filter { $0.device == i.vxlanIndex && $0.isSelf }.compactMap { e in e.destination.map { Tunnel(mac: e.mac, vtep: $0) } })
            for t in have.subtracting(want).sorted(by: { "\($0.mac)\($0.vtep)" < "\($1.mac)\($1.vtep)" }) {
                found.append(
                    Difference(
                        what: "extra \(t.mac == zero ? "flood entry" : "FDB entry \(t.mac)") to \(t.vtep) on \(i.vxlan)",
                        removal: NeighbourRequests.deleteFDB(t.mac, device: i.vxlanIndex, deviceName: i.vxlan, destination: t.vtep, master: false)))
            }
            for t in want.subtracting(have) { found.append(Difference(what: "missing \(t.mac == zero ? "flood entry" : "FDB entry \(t.mac)") to \(t.vtep) on \(i.vxlan)")) }
            // The bridge's static entries pointing at the VXLAN device.
            let bridged = Set(fdb.filter { $0.device == i.vxlanIndex && $0.isMaster && $0.isStatic && !$0.isPermanent }.map(\.mac))
            for mac in bridged.subtracting(i.remoteMACs.keys).sorted() {
                found.append(Difference(what: "extra bridge entry \(mac) on \(i.bridge)", removal: NeighbourRequests.deleteFDB(mac, device: i.vxlanIndex, deviceName: i.vxlan, master: true)))
            }
            for mac in Set(i.remoteMACs.keys).subtracting(bridged).sorted() { found.append(Difference(what: "missing bridge entry \(mac) on \(i.bridge)")) }
            // The bridge's neighbour entries: remote addresses (answered by neighbour suppression) and a linked VRF's gateway.
            var addresses = Set(i.remoteMACs.values.flatMap { $0.routes.compactMap { r -> IPAddress? in if case .mac(_, let ip) = r.destination { ip } else { nil } } })
            if let g = i.gatewayNeighbour { addresses.insert(g) }
            let present = Set(neighbours.filter { $0.device == i.bridgeIndex && $0.state & 0x80 != 0 }.map(\.ip))  // NUD_PERMANENT
            for ip in present.subtracting(addresses).sorted(by: { "\($0)" < "\($1)" }) {
                found.append(Difference(what: "extra neighbour \(ip) on \(i.bridge)", removal: NeighbourRequests.delete(ip, device: i.bridgeIndex, deviceName: i.bridge)))
            }
            for ip in addresses.subtracting(present) { found.append(Difference(what: "missing neighbour \(ip) on \(i.bridge)")) }
        }
        return found
    }
}
