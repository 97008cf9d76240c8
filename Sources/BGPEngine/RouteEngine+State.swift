import BGPRoutes
import BGPSession
import BGPWire
import NIOCore

extension RouteEngine {
    // MARK: Output and state

    public func takeLocalEvents() -> [(WorkerID, LocalEvent)] {
        defer { localEvents = [] }
        return localEvents
    }

    /// Peers with something to send (and the change logs trimmed of what every peer has read).
    public func takeReadyPeers() -> Set<WorkerID> {
        var ready = Set<WorkerID>()
        for (id, p) in peers where p.hasPending(tables) { ready.insert(id) }
        for (family, table) in tables {
            let positions = peers.values.filter { $0.established && $0.families.contains(family) }.map { $0.logPosition[family] ?? table.logBase }
            table.trimLog(before: positions.min() ?? table.logEnd)
        }
        // Log ranges every peer has read, and walks nobody is doing, are not needed any more.
        if !encodedRanges.isEmpty {
            encodedRanges = encodedRanges.filter { key, _ in
                guard let table = tables[key.family] else { return false }
                if key.kind == 1 { return key.end > table.logBase }
                return peers.values.contains { $0.cursor[key.family] != nil }
            }
        }
        return ready
    }

    /// Routes stored per family (all paths), and destinations.
    public func pathCount(_ family: AddressFamily) -> Int { tables[family]?.pathCount ?? 0 }
    public func destinationCount(_ family: AddressFamily) -> Int { tables[family]?.destinationCount ?? 0 }
    public var attributeSetCount: Int { attributeSets.count }
    public var families: [AddressFamily] { tables.keys.sorted() }

    /// Every path of a family, for the looking glass and tests.
    public func routes(_ family: AddressFamily) -> [Route] {
        guard let table = tables[family] else { return [] }
        return table.liveSlots.flatMap { slot in table[slot]?.paths.map { route(family, $0) } ?? [] }
    }

    /// Every path a worker originates, in every family (a VPN instance's `adv_routes`).
    public func routes(originatedBy worker: WorkerID) -> [Route] {
        tables.keys.sorted().flatMap { family in routes(family).filter { $0.source == worker } }
    }

    /// Whether a worker is a BGP peer (not a local worker).
    public func isPeer(_ worker: WorkerID) -> Bool { peers[worker] != nil }

    /// The best path per destination (what a reflector advertises).
    public func bestRoutes(_ family: AddressFamily) -> [Route] {
        guard let table = tables[family] else { return [] }
        return table.liveSlots.compactMap { slot in table[slot]?.bestPath.map { route(family, $0) } }
    }

    /// Every path of the EVPN MAC/IP routes for one MAC in one RD (all its IPs, every host that
    /// advertises it): an index lookup, not a scan.
    public func macRoutes(routeDistinguisher: RouteDistinguisher, mac: MACAddress) -> [Route] {
        guard let table = tables[.evpn] else { return [] }
        let slots = table.byMAC[FamilyTable.MACKey(routeDistinguisher: routeDistinguisher, mac: mac)] ?? []
        return slots.flatMap { slot in table[slot]?.paths.map { route(.evpn, $0) } ?? [] }
    }

    /// The route targets a peer asked for with RT-Constraint routes (nil when it did not negotiate RTC).
    public func requestedRouteTargets(_ peer: WorkerID) -> Set<RouteTargetKey>? {
        guard let p = peers[peer], p.rtcActive else { return nil }
        return Set(p.filter.exact.keys)
    }

    /// Route targets local workers import (those we originate RTC routes for).
    public var importedRouteTargets: Set<RouteTargetKey> { Set(importers.keys) }

    public func subscriptions(of worker: WorkerID) -> Set<Match> { subscriptions[worker] ?? [] }

    /// Paths from local workers and from peers, RT-Constraint routes excluded (the original's counters).
    public func routeCounts() -> (local: Int, received: Int) {
        var local = 0, received = 0
        for (family, table) in tables where family != .routeTargetConstraint {
            for slot in table.liveSlots {
                for path in table[slot]?.paths ?? PathList() {
                    if sources[path.source]?.isLocal ?? false { local += 1 } else { received += 1 }
                }
            }
        }
        return (local, received)
    }
}
