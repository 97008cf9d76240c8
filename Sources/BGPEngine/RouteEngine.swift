import BGPRoutes
import BGPSession
import BGPWire
import NIOCore

/// The route engine: the Loc-RIB of every family, publish/subscribe by route target for local
/// workers (VPN instances), RT-Constraint origination and per-peer filtering, and the outbound
/// state of every peer (best path per destination, RFC 4456 reflection when configured).
///
/// It is a state machine: it does no I/O and is not thread-safe. Its owner runs it on one event
/// loop, delivers `takeLocalEvents()` to local workers, and lets ready peers (`takeReadyPeers()`)
/// pull their UPDATEs with `takeEncoded` (or `takePending`) when their socket can take them. A slow
/// peer costs its position in a change log, never a queue of messages.
///
/// Files: this one holds the state, workers and the one place paths change (`setPath`);
/// `+Subscriptions` local workers and RT-Constraint origination; `+Outbound` what peers are sent;
/// `+State` outputs and read-only views.
public final class RouteEngine {
    public struct Configuration: Sendable {
        public var localAS: UInt32
        public var routerID: IPv4Address
        /// Next hop of the RT-Constraint routes we originate.
        public var localAddress: IPv4Address
        /// Set: act as an RFC 4456 route reflector with this cluster id. Nil: a host, which sends peers
        /// only its own routes (never a peer's route to another peer).
        public var clusterID: IPv4Address?
        /// Originate RT-Constraint routes for the route targets local workers import.
        public var routeTargetConstraint: Bool

        public init(localAS: UInt32, routerID: IPv4Address, localAddress: IPv4Address? = nil, clusterID: IPv4Address? = nil, routeTargetConstraint: Bool = true) {
            self.localAS = localAS
            self.routerID = routerID
            self.localAddress = localAddress ?? routerID
            self.clusterID = clusterID
            self.routeTargetConstraint = routeTargetConstraint
        }

        public var isRouteReflector: Bool { clusterID != nil }
    }

    /// A route as local workers see it.
    public struct Route: Hashable, Sendable, CustomStringConvertible {
        public var family: AddressFamily
        public var element: NLRIElement
        public var attributes: AttributeSet
        public var source: WorkerID

        public init(family: AddressFamily, element: NLRIElement, attributes: AttributeSet, source: WorkerID) {
            self.family = family
            self.element = element
            self.attributes = attributes
            self.source = source
        }

        public var routeTargets: [RouteTargetKey] { attributes.routeTargetKeys }
        public var description: String { "\(family) \(element.nlri) from \(source)" }
    }

    /// What a local worker is told. A replacement (same NLRI and source, new attributes) is one
    /// advertise naming the route it replaces.
    public enum LocalEvent: Hashable, Sendable {
        case advertise(Route, replaced: Route?)
        case withdraw(Route)
    }

    /// UPDATE content for one peer and one family.
    public struct OutboundBatch {
        public var family: AddressFamily
        public var announce: [(AttributeSet, [NLRIElement])]
        public var withdraw: [NLRIElement]
    }

    /// A class, so that its pending sets are mutated in place (a struct copied out of `peers` would
    /// share them, and popping one slot would copy a whole set).
    final class PeerState {
        let bit: Int
        init(bit: Int) { self.bit = bit }
        var families: Set<AddressFamily> = []
        var established = false
        var filter = RouteTargetFilter()
        /// Slots to evaluate again for this peer only (its RT-Constraint filter changed).
        var pending: [AddressFamily: Set<Int32>] = [:]
        /// Where the peer is in each family's change log.
        var logPosition: [AddressFamily: Int] = [:]
        /// Initial advertisement (or full re-evaluation) in progress: slots from here on are still to visit.
        var cursor: [AddressFamily: Int32] = [:]
        var rtcActive: Bool { families.contains(.routeTargetConstraint) }
        func hasPending(_ tables: [AddressFamily: FamilyTable]) -> Bool {
            guard established else { return false }
            if !cursor.isEmpty || pending.values.contains(where: { !$0.isEmpty }) { return true }
            return families.contains { f in tables[f].map { (logPosition[f] ?? $0.logBase) < $0.logEnd } ?? false }
        }
    }

    public let configuration: Configuration
    var sources = WorkerTable<PathSource>()
    var names: [WorkerID: String] = [:]
    var nextWorker: WorkerID = 1
    var peers: [WorkerID: PeerState] = [:]
    var freeBits: [Int] = []
    var nextBit = 0
    var subscriptions: [WorkerID: Set<Match>] = [:]
    var subscribers: [Match: Set<WorkerID>] = [:]
    var tables: [AddressFamily: FamilyTable] = [:]
    /// The speaker's one interner: its peers' Adj-RIBs share it (see `AttributeInterner`).
    public let attributeSets = AttributeInterner()
    /// Local importers per route target (across families: one RTC route per RT, withdrawn when the last goes).
    var importers: [RouteTargetKey: Int] = [:]
    /// The worker that owns our RT-Constraint routes.
    public let routeTargetConstraintWorker: WorkerID = 0
    var localEvents: [(WorkerID, LocalEvent)] = []
    var originatesDefaultMembership = false
    /// Encoded UPDATEs of recent ranges, shared by peers that decide the same (see `takeEncoded`).
    var encodedRanges: [RangeKey: EncodedRange] = [:]
    /// Graceful-restart helper for peers without an Adj-RIB-In (RouteEngine+GracefulRestart.swift):
    /// their paths kept while they restart, until they send them again.
    var stalePaths: [WorkerID: [AddressFamily: Set<StalePath>]] = [:]
    /// Peers marked stale just before the `peerDown` that keeps their paths.
    var staleOnDown: Set<WorkerID> = []
    /// A reflector that restarts asks for every VPN route with the default membership until it has
    /// learnt its clients' memberships again: its clients then send it all their routes at once, and
    /// none withdraws a route for lack of a membership the reflector has not learnt yet.
    public var restartingMembership = false {
        didSet { updateDefaultMembership() }
    }

    public init(configuration: Configuration) {
        self.configuration = configuration
        let me = PathSource(kind: .local, routerID: configuration.routerID, address: IPv6Address(high: 0, low: 0))
        sources[routeTargetConstraintWorker] = me
        names[routeTargetConstraintWorker] = "rtc"
    }

    // MARK: Workers

    public func addLocalWorker(name: String) -> WorkerID {
        let id = nextWorker
        nextWorker += 1
        sources[id] = PathSource(kind: .local, routerID: configuration.routerID, address: IPv6Address(high: 0, low: 0))
        names[id] = name
        return id
    }

    public func addPeer(name: String, source: PathSource) -> WorkerID {
        let id = nextWorker
        nextWorker += 1
        sources[id] = source
        names[id] = name
        let bit = freeBits.popLast() ?? { defer { nextBit += 1 }; return nextBit }()
        peers[id] = PeerState(bit: bit)
        return id
    }

    /// The peer's BGP identifier, learned from its OPEN (the decision process uses it).
    public func setRouterID(of peer: WorkerID, _ id: IPv4Address) { sources[peer]?.routerID = id }

    public func name(of worker: WorkerID) -> String { names[worker] ?? "worker \(worker)" }

    /// The session is up with these families: everything it may receive is (re)advertised.
    public func peerEstablished(_ peer: WorkerID, families: Set<AddressFamily>) {
        guard let p = peers[peer] else { return }
        clearOutbound(p)
        p.families = families
        p.established = true
        for family in families {
            p.cursor[family] = 0
            p.logPosition[family] = tables[family]?.logEnd ?? 0
        }
        updateDefaultMembership()
    }

    /// The session went down: nothing is advertised to it any more. Its routes are withdrawn here
    /// when `dropRoutes` (the peer keeps no Adj-RIB-In), else by `receive` as its Adj-RIB-In reports them.
    public func peerDown(_ peer: WorkerID, dropRoutes: Bool = false) {
        let keptStale = staleOnDown.remove(peer) != nil ? Set(stalePaths[peer]?.keys.map { $0 } ?? []) : []
        if dropRoutes { removePaths(of: peer, keeping: keptStale) }
        guard let p = peers[peer] else { return }
        clearOutbound(p)
        p.established = false
        p.families = []
        p.filter = RouteTargetFilter()
        // Memberships kept (graceful restart: stale, in the Loc-RIB or in the peer's Adj-RIB-In) still
        // say what the peer wants: its next session starts with them, and their sweep (or
        // replacement) updates the filter as usual.
        if let table = tables[.routeTargetConstraint] {
            for slot in 0..<Int32(table.slotCount) {
                guard let d = table[slot] else { continue }
                for path in d.paths where path.source == peer {
                    if case .routeTargetMembership(let m) = path.element.nlri { p.filter.add(RouteTargetFilter.effect(of: m)) }
                }
            }
        }
        updateDefaultMembership()
    }

    /// RFC 4684 §3: a reflector with a peer that has VPN families but no RT-Constraint must get every
    /// VPN route for it, so it asks its RT-Constraint peers for everything with the default membership
    /// route (length 0), while such a peer is up.
    func updateDefaultMembership() {
        guard configuration.isRouteReflector else { return }
        let needed = restartingMembership || peers.values.contains { $0.established && !$0.rtcActive && !$0.families.isDisjoint(with: Self.constrainedFamilies) }
        guard needed != originatesDefaultMembership else { return }
        originatesDefaultMembership = needed
        let element = NLRIElement(.routeTargetMembership(.default))
        let set = AttributeSet(attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))], nextHop: .ipv4(configuration.localAddress))
        setPath(.routeTargetConstraint, RouteKey(element), source: routeTargetConstraintWorker, pathID: 0, to: needed ? (element, set) : nil)
    }

    func clearOutbound(_ p: PeerState) {
        p.pending = [:]
        p.cursor = [:]
        p.logPosition = [:]
        for table in tables.values {
            for slot in 0..<Int32(table.slotCount) where table[slot]?.advertised.contains(p.bit) == true {
                table.setAdvertised(slot, bit: p.bit, false)
                table.releaseIfUnused(slot)
            }
        }
    }

    /// A worker stops: its routes are withdrawn and its subscriptions dropped.
    public func cleanup(_ worker: WorkerID) {
        for match in subscriptions[worker] ?? [] { unsubscribe(worker, from: match) }
        removePaths(of: worker)
        if let p = peers[worker] {
            clearOutbound(p)
            freeBits.append(p.bit)
            peers[worker] = nil
        }
        sources[worker] = nil
        names[worker] = nil
    }

    func removePaths(of worker: WorkerID, keeping kept: Set<AddressFamily> = []) {
        if kept.isEmpty { stalePaths[worker] = nil }
        for (family, table) in tables where !kept.contains(family) {
            for slot in 0..<Int32(table.slotCount) {
                guard let d = table[slot] else { continue }
                for path in d.paths where path.source == worker { setPath(family, d.key, source: worker, pathID: path.pathID, to: nil) }
            }
        }
    }

    // MARK: Routes in

    /// Routes a local worker originates (replacing its earlier route with the same NLRI). The order
    /// of extended communities carries no meaning (RFC 4360), so they are put in one order and
    /// duplicates dropped: a route advertised again with its communities reordered is the same
    /// route, and is not sent again (the original's behaviour 52).
    public func advertise(from worker: WorkerID, family: AddressFamily, _ element: NLRIElement, nextHop: NextHop, attributes: [PathAttribute]) {
        var e = element
        e.pathID = nil
        let canonical = attributes.map { a -> PathAttribute in
            guard case .extendedCommunities(let list) = a.value else { return a }
            return PathAttribute(.extendedCommunities(Array(Set(list)).sorted()))
        }
        setPath(family, RouteKey(e), source: worker, pathID: 0, to: (e, AttributeSet(attributes: canonical, nextHop: nextHop)))
    }

    public func withdraw(from worker: WorkerID, family: AddressFamily, _ element: NLRIElement) {
        var e = element
        e.pathID = nil
        setPath(family, RouteKey(e), source: worker, pathID: 0, to: nil)
    }

    /// What a peer's Adj-RIB-In reports. As a reflector, paths that looped back (our ORIGINATOR_ID or
    /// cluster id in CLUSTER_LIST, RFC 4456 §8) are dropped, and the others stored as they will be
    /// reflected: ORIGINATOR_ID set, our cluster id prepended to CLUSTER_LIST, nothing else touched.
    public func receive(from peer: WorkerID, family: AddressFamily, _ changes: [RouteChange]) {
        guard let source = sources[peer] else { return }
        var memo: (input: AttributeSet, output: AttributeSet?)?
        for change in changes {
            var element: NLRIElement
            switch change {
            case .withdraw(let key):
                element = key.element
                let pathID = element.pathID ?? 0
                element.pathID = nil
                if stalePaths[peer]?[family] != nil { refreshed(peer, family, RouteKey(element), pathID) }
                setPath(family, RouteKey(element), source: peer, pathID: pathID, to: nil)
            case .announce(_, let announced, let set):
                element = announced
                let pathID = element.pathID ?? 0
                element.pathID = nil
                let key = RouteKey(element)
                if stalePaths[peer]?[family] != nil { refreshed(peer, family, key, pathID) }
                let output: AttributeSet?
                if let m = memo, m.input === set {
                    output = m.output
                } else {
                    output = reflected(set, from: source)
                    memo = (set, output)
                }
                setPath(family, key, source: peer, pathID: pathID, to: output.map { (element, $0) })
            }
        }
    }

    /// The attributes to store for a peer's path, or nil when it loops: our own route reflected
    /// back to us (RFC 4456 §8: its ORIGINATOR_ID is our identifier; FRR's reflector sends a client's
    /// routes back to it), or, on a reflector, one that already passed our cluster.
    func reflected(_ set: AttributeSet, from source: PathSource) -> AttributeSet? {
        let attributes = set.attributes
        if attributes.originatorID == configuration.routerID { return nil }
        guard let clusterID = configuration.clusterID else { return set }
        let clusters = attributes.clusterList
        if clusters.contains(clusterID.value) { return nil }
        var out = attributes.filter { $0.typeCode != AttributeType.originatorID && $0.typeCode != AttributeType.clusterList }
        out.append(PathAttribute(.originatorID(attributes.originatorID ?? source.routerID)))
        out.append(PathAttribute(.clusterList([clusterID.value] + clusters)))
        return AttributeSet(attributes: out, nextHop: set.nextHop)
    }

    // MARK: The one place paths change

    /// Sets (or removes, with nil) the path of `source` with `pathID` to `key`, and tells whoever
    /// must know: local subscribers, the route-target filter of a peer that sent an RTC route, and
    /// every peer whose advertisement may change.
    func setPath(_ family: AddressFamily, _ key: RouteKey, source: WorkerID, pathID: UInt32, to new: (element: NLRIElement, attributes: AttributeSet)?) {
        let table = tables[family] ?? newTable(family)
        let slot: Int32
        if new == nil {
            guard let s = table.slot(for: key) else { return }  // unknown withdraw: nothing to do
            slot = s
        } else {
            slot = table.slot(creating: key)
        }
        var newPath: Path?
        if let new {
            let shared = attributeSets.intern(new.attributes)
            newPath = Path(source: source, pathID: pathID, element: new.element, attributes: shared)
        }
        let reflector = configuration.isRouteReflector
        let (old, bestBefore, bestAfter) = table.modify(slot) { d -> (Path?, Path?, Path?) in
            let before = d.bestPath
            let i = d.paths.firstIndex { $0.source == source && $0.pathID == pathID }
            let old = i.map { d.paths[$0] }
            if let old, let newPath, old.element == newPath.element, old.attributes === newPath.attributes { return (old, before, before) }
            switch (i, newPath) {
            case (let i?, let p?): d.paths[i] = p
            case (let i?, nil): d.paths.remove(at: i)
            case (nil, let p?): d.paths.append(p)
            case (nil, nil): break
            }
            // A host advertises only its own routes; a reflector, the best of all.
            let best = DecisionProcess.best(of: d.paths, sources: pathSource, eligible: { reflector || self.sources[$0.source]?.isLocal == true })
            // 32,767 paths to one destination is far beyond any deployment; past it, none is advertised.
            d.best = best <= Int(Int16.max) ? Int16(best) : -1
            return (old, before, d.bestPath)
        }
        if let old, let newPath, old.element == newPath.element, old.attributes === newPath.attributes {
            attributeSets.release(newPath.attributes)  // identical re-advertisement: nothing changes
            return
        }
        if old == nil && newPath == nil { return }

        // Local workers.
        let before = old.map { interested(in: $0, family: family) } ?? []
        let after = newPath.map { interested(in: $0, family: family) } ?? []
        if let newPath {
            let r = route(family, newPath)
            let replaced = old.map { route(family, $0) }
            for w in after.sorted() { localEvents.append((w, .advertise(r, replaced: replaced))) }
        }
        if let old {
            let r = route(family, old)
            for w in before.subtracting(after).sorted() { localEvents.append((w, .withdraw(r))) }
        }

        // A peer's RT membership routes are its outbound filter.
        if family == .routeTargetConstraint, sources[source]?.isLocal == false {
            membershipChanged(peer: source, old: old, new: newPath)
        }

        // Peers read the change log. RTC routes are chosen per peer (RFC 4684 §3.2), so any change to
        // one may matter to anyone.
        if family == .routeTargetConstraint || !samePath(bestBefore, bestAfter) { table.logChange(slot) }
        if let old { attributeSets.release(old.attributes) }
        table.releaseIfUnused(slot)
    }

    /// Where a path came from, for the decision process (a worker that went is treated as local).
    func pathSource(_ worker: WorkerID) -> PathSource {
        sources[worker] ?? PathSource(kind: .local, routerID: IPv4Address(0), address: IPv6Address(high: 0, low: 0))
    }

    func newTable(_ family: AddressFamily) -> FamilyTable {
        let t = FamilyTable(family: family)
        tables[family] = t
        // A new table is empty: its change log from 0 tells each peer everything, so a walk still
        // pending from the peer's establishment would send every route a second time.
        for p in peers.values where p.established && p.families.contains(family) {
            p.logPosition[family] = 0
            p.cursor[family] = nil
        }
        return t
    }

    func samePath(_ a: Path?, _ b: Path?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case (let a?, let b?): a.source == b.source && a.pathID == b.pathID && a.element == b.element && a.attributes === b.attributes
        default: false
        }
    }

    func route(_ family: AddressFamily, _ path: Path) -> Route {
        Route(family: family, element: path.element, attributes: path.attributes, source: path.source)
    }

    func membershipChanged(peer: WorkerID, old: Path?, new: Path?) {
        guard let p = peers[peer] else { return }
        func effect(_ path: Path?) -> RouteTargetFilter.Effect {
            guard let path, case .routeTargetMembership(let m) = path.element.nlri else { return .nothing }
            return RouteTargetFilter.effect(of: m)
        }
        let (was, now) = (effect(old), effect(new))
        guard was != now else { return }
        let allowedBefore = p.filter
        p.filter.remove(was)
        p.filter.add(now)
        guard p.established else { return }
        // Newly allowed routes are sent and newly filtered ones withdrawn now.
        for family in p.families where family != .routeTargetConstraint {
            guard let table = tables[family] else { continue }
            var affected: Set<Int32> = []
            var everything = false
            for e in [was, now] {
                switch e {
                case .exact(let rt):
                    if (allowedBefore.exact[rt] != nil) != (p.filter.exact[rt] != nil) { affected.formUnion(table.byRouteTarget[rt] ?? []) }
                case .everything, .partial: everything = true
                case .nothing: break
                }
            }
            if everything {
                p.cursor[family] = 0
            } else {
                for slot in affected { markPending(peer, family: family, slot: slot) }
            }
        }
    }

    func markPending(_ peer: WorkerID, family: AddressFamily, slot: Int32) {
        guard let p = peers[peer] else { return }
        if let c = p.cursor[family], slot >= c { return }  // the walk will get there
        p.pending[family, default: []].insert(slot)
    }

}
