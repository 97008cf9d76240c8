import BGPEngine
import BGPSession
import BGPWire

/// The best-path layer of a VPN instance (the original's tracker worker, reference §7.3): the routes
/// an instance receives are grouped by tracked entry (a prefix, a MAC, a flood list member), and
/// the instance is told when an entry's best routes change. New best routes are reported before
/// the old ones are removed (make-before-break), and `last` says the entry has no route left.
/// Equivalent routes from several sources (same NLRI, next hop, PMSI, MED, extended communities and
/// LOCAL_PREF) count once. A pure value: the instance applies the calls to its dataplane.
public struct BestRouteTracker<Entry: Hashable> {
    public enum Call: Equatable {
        case newBest(Entry, RouteEngine.Route)
        case bestRemoved(Entry, RouteEngine.Route, last: Bool)
    }

    /// How two routes of one entry compare: > 0 when the first is better, 0 when both are best (ECMP).
    public typealias Comparison = (RouteEngine.Route, RouteEngine.Route) -> Int

    private let compare: Comparison
    private var routes: [Entry: [RouteEngine.Route]] = [:]
    private var best: [Entry: [RouteEngine.Route]] = [:]

    public init(compare: @escaping Comparison) { self.compare = compare }

    /// Higher LOCAL_PREF wins (missing: 100); equal ones are all best. For drivers with ECMP.
    public static var ecmp: Comparison {
        { a, b in
            let (x, y) = (a.attributes.attributes.localPreference ?? 100, b.attributes.attributes.localPreference ?? 100)
            return x == y ? 0 : (x > y ? 1 : -1)
        }
    }

    /// Higher LOCAL_PREF wins, then a hash of the route salted with this node and instance, so that
    /// ties break the same way on every run but differently on each node. For drivers without ECMP.
    public static func single(salt: String) -> Comparison {
        { a, b in
            let (x, y) = (a.attributes.attributes.localPreference ?? 100, b.attributes.attributes.localPreference ?? 100)
            if x != y { return x > y ? 1 : -1 }
            let (ha, hb) = (stableHash(salt, a), stableHash(salt, b))
            if ha != hb { return ha > hb ? 1 : -1 }
            return a.source < b.source ? 1 : (a.source > b.source ? -1 : 0)
        }
    }

    /// The entry's best routes now.
    public func bestRoutes(_ entry: Entry) -> [RouteEngine.Route] { best[entry] ?? [] }
    public func allRoutes(_ entry: Entry) -> [RouteEngine.Route] { routes[entry] ?? [] }
    public var entries: [Entry] { Array(routes.keys) }

    /// A route arrives, replacing `replaced` (same source and NLRI) when given.
    public mutating func advertise(_ route: RouteEngine.Route, replaced: RouteEngine.Route?, entry: Entry) -> [Call] {
        var list = routes[entry] ?? []
        if let replaced, let i = list.firstIndex(of: replaced) { list.remove(at: i) }
        if !list.contains(route) { list.append(route) }
        routes[entry] = list
        return reselect(entry)
    }

    /// A route goes; unknown routes are ignored.
    public mutating func withdraw(_ route: RouteEngine.Route, entry: Entry) -> [Call] {
        guard var list = routes[entry], let i = list.firstIndex(of: route) else { return [] }
        list.remove(at: i)
        routes[entry] = list.isEmpty ? nil : list
        return reselect(entry)
    }

    /// Every route of every entry (that `filter` selects) goes: the instance stops and its
    /// dataplane wants to be told route by route.
    public mutating func removeAll(where filter: (Entry) -> Bool = { _ in true }) -> [Call] {
        var calls: [Call] = []
        for entry in Array(routes.keys) where filter(entry) {
            routes[entry] = nil
            calls += reselect(entry)
        }
        return calls
    }

    private mutating func reselect(_ entry: Entry) -> [Call] {
        let old = best[entry] ?? []
        let list = routes[entry] ?? []
        // The best routes, one per equivalence class.
        var new: [RouteEngine.Route] = []
        for r in list {
            if let top = new.first {
                let c = compare(r, top)
                if c > 0 { new = [r] } else if c == 0, !new.contains(where: { Self.equivalent($0, r) }) { new.append(r) }
            } else {
                new = [r]
            }
        }
        // A class already installed keeps its representative: no call for it.
        new = new.map { r in old.first(where: { Self.equivalent($0, r) && list.contains($0) }) ?? r }
        best[entry] = new.isEmpty ? nil : new
        var calls: [Call] = []
        for r in new where !old.contains(where: { Self.equivalent($0, r) }) { calls.append(.newBest(entry, r)) }
        let last = list.isEmpty
        for r in old where !new.contains(where: { Self.equivalent($0, r) }) { calls.append(.bestRemoved(entry, r, last: last)) }
        return calls
    }

    /// The original's "filtered" view: what the dataplane sees, whatever the source.
    static func equivalent(_ a: RouteEngine.Route, _ b: RouteEngine.Route) -> Bool {
        if a == b { return true }
        let (x, y) = (a.attributes.attributes, b.attributes.attributes)
        return a.element == b.element && a.attributes.nextHop == b.attributes.nextHop && x.pmsiTunnel == y.pmsiTunnel
            && x.multiExitDiscriminator == y.multiExitDiscriminator && (x.localPreference ?? 100) == (y.localPreference ?? 100)
            && Set(x.extendedCommunities) == Set(y.extendedCommunities)
    }

    /// FNV-1a over the salt and the route's text: stable across runs (Swift's Hasher is seeded per process).
    static func stableHash(_ salt: String, _ route: RouteEngine.Route) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (salt + "|" + "\(route.element.nlri)|\(route.attributes.nextHop)").utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }
}
