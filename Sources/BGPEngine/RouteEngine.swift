import BGPSession
import BGPWire
import NIOCore

/// The route engine: the Loc-RIB of every family, publish/subscribe by route target for local
/// workers (VPN instances), RT-Constraint origination and per-peer filtering, and the outbound
/// state of every peer (best path per destination, RFC 4456 reflection when configured).
///
/// It is a state machine: it does no I/O and is not thread-safe. Its owner runs it on one event
/// loop, delivers `takeLocalEvents()` to local workers and lets ready peers (`takeReadyPeers()`)
/// pull their UPDATEs with `takePending(peer:limit:)` when their socket can take them. A slow peer
/// therefore costs a set of small integers, never a queue of messages.
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
    private var sources = WorkerTable<PathSource>()
    private var names: [WorkerID: String] = [:]
    private var nextWorker: WorkerID = 1
    private var peers: [WorkerID: PeerState] = [:]
    private var freeBits: [Int] = []
    private var nextBit = 0
    private var subscriptions: [WorkerID: Set<Match>] = [:]
    private var subscribers: [Match: Set<WorkerID>] = [:]
    private var tables: [AddressFamily: FamilyTable] = [:]
    private var attributeSets = AttributeSetTable()
    /// Local importers per route target (across families: one RTC route per RT, withdrawn when the last goes).
    private var importers: [RouteTargetKey: Int] = [:]
    /// The worker that owns our RT-Constraint routes.
    public let routeTargetConstraintWorker: WorkerID = 0
    private var localEvents: [(WorkerID, LocalEvent)] = []
    private var originatesDefaultMembership = false
    /// Encoded UPDATEs of recent ranges, shared by peers that decide the same (see `takeEncoded`).
    private var encodedRanges: [RangeKey: EncodedRange] = [:]

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
        if dropRoutes { removePaths(of: peer) }
        guard let p = peers[peer] else { return }
        clearOutbound(p)
        p.established = false
        p.families = []
        p.filter = RouteTargetFilter()
        updateDefaultMembership()
    }

    /// RFC 4684 §3: a reflector with a peer that has VPN families but no RT-Constraint must get every
    /// VPN route for it, so it asks its RT-Constraint peers for everything with the default membership
    /// route (length 0), while such a peer is up.
    private func updateDefaultMembership() {
        guard configuration.isRouteReflector else { return }
        let needed = peers.values.contains { $0.established && !$0.rtcActive && !$0.families.isDisjoint(with: Self.constrainedFamilies) }
        guard needed != originatesDefaultMembership else { return }
        originatesDefaultMembership = needed
        let element = NLRIElement(.routeTargetMembership(.default))
        let set = AttributeSet(attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))], nextHop: .ipv4(configuration.localAddress))
        setPath(.routeTargetConstraint, RouteKey(element), source: routeTargetConstraintWorker, pathID: 0, to: needed ? (element, set) : nil)
    }

    private func clearOutbound(_ p: PeerState) {
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

    private func removePaths(of worker: WorkerID) {
        for (family, table) in tables {
            for slot in 0..<Int32(table.slotCount) {
                guard let d = table[slot] else { continue }
                for path in d.paths where path.source == worker { setPath(family, d.key, source: worker, pathID: path.pathID, to: nil) }
            }
        }
    }

    // MARK: Subscriptions (local workers)

    /// Subscribes a local worker; it gets every stored route of the match it does not already get.
    public func subscribe(_ worker: WorkerID, to match: Match) {
        guard subscriptions[worker, default: []].insert(match).inserted else { return }
        subscribers[match, default: []].insert(worker)
        if let rt = match.routeTarget, Self.constrainedFamilies.contains(match.family) { importerAdded(rt) }
        guard let table = tables[match.family] else { return }
        for slot in slots(of: table, matching: match) {
            guard let d = table[slot] else { continue }
            for path in d.paths where path.source != worker && !receivesElsewhere(worker, path, family: match.family, except: match) && matches(match, path) {
                localEvents.append((worker, .advertise(route(match.family, path), replaced: nil)))
            }
        }
    }

    /// Unsubscribes; routes no other subscription of the worker covers are withdrawn from it.
    public func unsubscribe(_ worker: WorkerID, from match: Match) {
        guard subscriptions[worker]?.remove(match) != nil else { return }
        if subscriptions[worker]?.isEmpty == true { subscriptions[worker] = nil }
        subscribers[match]?.remove(worker)
        if subscribers[match]?.isEmpty == true { subscribers[match] = nil }
        if let rt = match.routeTarget, Self.constrainedFamilies.contains(match.family) { importerRemoved(rt) }
        guard let table = tables[match.family] else { return }
        for slot in slots(of: table, matching: match) {
            guard let d = table[slot] else { continue }
            for path in d.paths where path.source != worker && matches(match, path) && !receivesElsewhere(worker, path, family: match.family, except: nil) {
                localEvents.append((worker, .withdraw(route(match.family, path))))
            }
        }
    }

    /// Families whose imports are announced with RT-Constraint routes (not flowspec: RFC 4684 is
    /// about VPN routes, and the original did the same).
    static let constrainedFamilies: Set<AddressFamily> = [.ipv4VPN, .ipv6VPN, .evpn]

    private func slots(of table: FamilyTable, matching match: Match) -> [Int32] {
        if let rt = match.routeTarget { return Array(table.byRouteTarget[rt] ?? []) }
        return table.liveSlots
    }

    private func matches(_ match: Match, _ path: Path) -> Bool {
        guard let rt = match.routeTarget else { return true }
        return path.attributes.routeTargetKeys.contains(rt)
    }

    /// Whether another subscription of the worker (than `except`) already covers the path.
    private func receivesElsewhere(_ worker: WorkerID, _ path: Path, family: AddressFamily, except: Match?) -> Bool {
        guard let subs = subscriptions[worker] else { return false }
        for m in subs where m != except && m.family == family && matches(m, path) { return true }
        return false
    }

    private func interested(in path: Path, family: AddressFamily) -> Set<WorkerID> {
        if subscribers.isEmpty { return [] }  // a reflector: no local workers
        var out = subscribers[Match(family: family, routeTarget: nil)] ?? []
        for rt in path.attributes.routeTargetKeys { out.formUnion(subscribers[Match(family: family, routeTarget: rt)] ?? []) }
        out.remove(path.source)
        return out
    }

    // MARK: RT-Constraint origination

    private func importerAdded(_ rt: RouteTargetKey) {
        importers[rt, default: 0] += 1
        guard importers[rt] == 1, configuration.routeTargetConstraint else { return }
        let set = AttributeSet(attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))], nextHop: .ipv4(configuration.localAddress))
        // The imported route target, as subscribed: never an export one (RustyBGP #537).
        let nlri = NLRI.routeTargetMembership(RouteTargetMembership(originAS: configuration.localAS, routeTarget: rt.community))
        setPath(.routeTargetConstraint, RouteKey(NLRIElement(nlri)), source: routeTargetConstraintWorker, pathID: 0, to: (NLRIElement(nlri), set))
    }

    private func importerRemoved(_ rt: RouteTargetKey) {
        guard let n = importers[rt] else { return }
        importers[rt] = n > 1 ? n - 1 : nil
        guard n == 1, configuration.routeTargetConstraint else { return }
        let nlri = NLRI.routeTargetMembership(RouteTargetMembership(originAS: configuration.localAS, routeTarget: rt.community))
        setPath(.routeTargetConstraint, RouteKey(NLRIElement(nlri)), source: routeTargetConstraintWorker, pathID: 0, to: nil)
    }

    // MARK: Routes in

    /// Routes a local worker originates (replacing its earlier route with the same NLRI).
    public func advertise(from worker: WorkerID, family: AddressFamily, _ element: NLRIElement, nextHop: NextHop, attributes: [PathAttribute]) {
        var e = element
        e.pathID = nil
        setPath(family, RouteKey(e), source: worker, pathID: 0, to: (e, AttributeSet(attributes: attributes, nextHop: nextHop)))
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
                setPath(family, RouteKey(element), source: peer, pathID: pathID, to: nil)
            case .announce(_, let announced, let set):
                element = announced
                let pathID = element.pathID ?? 0
                element.pathID = nil
                let key = RouteKey(element)
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

    /// The attributes to store for a peer's path, or nil when it loops.
    private func reflected(_ set: AttributeSet, from source: PathSource) -> AttributeSet? {
        guard let clusterID = configuration.clusterID else { return set }
        let attributes = set.attributes
        if attributes.originatorID == configuration.routerID { return nil }
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
    private func setPath(_ family: AddressFamily, _ key: RouteKey, source: WorkerID, pathID: UInt32, to new: (element: NLRIElement, attributes: AttributeSet)?) {
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
            let best = DecisionProcess.best(of: d.paths, sources: { self.sources[$0] ?? PathSource(kind: .local, routerID: IPv4Address(0), address: IPv6Address(high: 0, low: 0)) }, eligible: { reflector || self.sources[$0.source]?.isLocal == true })
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

    private func newTable(_ family: AddressFamily) -> FamilyTable {
        let t = FamilyTable(family: family)
        tables[family] = t
        for p in peers.values where p.established && p.families.contains(family) { p.logPosition[family] = 0 }
        return t
    }

    private func samePath(_ a: Path?, _ b: Path?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case (let a?, let b?): a.source == b.source && a.pathID == b.pathID && a.element == b.element && a.attributes === b.attributes
        default: false
        }
    }

    private func route(_ family: AddressFamily, _ path: Path) -> Route {
        Route(family: family, element: path.element, attributes: path.attributes, source: path.source)
    }

    private func membershipChanged(peer: WorkerID, old: Path?, new: Path?) {
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

    private func markPending(_ peer: WorkerID, family: AddressFamily, slot: Int32) {
        guard let p = peers[peer] else { return }
        if let c = p.cursor[family], slot >= c { return }  // the walk will get there
        p.pending[family, default: []].insert(slot)
    }

    // MARK: Routes out

    /// RFC 4456 §6: a client's route goes to everyone, a non-client's only to clients; a host sends only
    /// its own routes.
    private func reflectionAllows(_ path: Path, to peerID: WorkerID) -> Bool { reflectionAllows(from: path.source, to: peerID) }

    private func reflectionAllows(from source: WorkerID, to peerID: WorkerID) -> Bool {
        guard source != peerID, let s = sources[source] else { return false }
        switch s.kind {
        case .local: return true
        case .peer(_, let fromClient):
            guard configuration.isRouteReflector else { return false }
            if fromClient { return true }
            if case .peer(_, let toClient)? = sources[peerID]?.kind { return toClient }
            return false
        }
    }

    private func exportable(_ path: Path, family: AddressFamily, to peerID: WorkerID, _ p: PeerState) -> Bool {
        exportable(source: path.source, attributes: path.attributes, family: family, to: peerID, p)
    }

    private func exportable(source: WorkerID, attributes: AttributeSet, family: AddressFamily, to peerID: WorkerID, _ p: PeerState) -> Bool {
        guard reflectionAllows(from: source, to: peerID) else { return false }
        if family == .routeTargetConstraint || !p.rtcActive { return true }
        return p.filter.allows(attributes.routeTargetKeys)
    }

    /// Index in `d.paths` of the path a peer should hold, if any. Reads the destination in place: the
    /// send path runs once per route and peer, and copies of destinations cost retains.
    private func exportIndex(_ d: inout Destination, family: AddressFamily, to peerID: WorkerID, _ p: PeerState) -> Int? {
        if family == .routeTargetConstraint {
            // RFC 4684 §3.2: the best membership route among those the peer did not send, so that a
            // client learns that others import the same route target.
            let i = DecisionProcess.best(of: d.paths, sources: { self.sources[$0] ?? PathSource(kind: .local, routerID: IPv4Address(0), address: IPv6Address(high: 0, low: 0)) }, eligible: { self.reflectionAllows($0, to: peerID) })
            return i >= 0 ? i : nil
        }
        let i = Int(d.best)
        guard i >= 0, exportable(source: d.paths.source(at: i), attributes: d.paths.attributes(at: i), family: family, to: peerID, p) else { return nil }
        return i
    }

    public func hasPending(_ peer: WorkerID) -> Bool { peers[peer]?.hasPending(tables) ?? false }

    /// Up to `limit` destinations' worth of UPDATE content for the peer, one family at a time; RT
    /// memberships first, so the peer knows what we import before it sends.
    public func takePending(peer id: WorkerID, limit: Int) -> OutboundBatch? {
        guard let p = peers[id], p.established else { return nil }
        for family in sendingOrder(p) {
            guard let table = tables[family] else {
                // Nothing to walk; a table created later starts its log at the peer's position 0.
                p.cursor[family] = nil
                p.pending[family] = nil
                continue
            }
            // Ranges that turn out empty (everything filtered) are skipped, not returned.
            while let range = nextRange(p, family: family, table: table, limit: limit) {
                let decisions = decide(p, peer: id, family: family, table: table, slots: range.slots)
                if decisions.isEmpty { continue }
                return content(of: decisions, family: family, table: table)
            }
        }
        return nil
    }

    /// The same as encoded UPDATEs for this wire context. Peers with the same context that evaluate
    /// the same range of the change log (or of the initial walk) to the same decisions share one
    /// encoding, as FRR's update groups do; a peer whose own routes are in the range, or whose
    /// advertised state differs, decides differently and gets its own.
    public func takeEncoded(peer id: WorkerID, limit: Int, context: WireContext) -> (family: AddressFamily, messages: [ByteBuffer])? {
        guard let p = peers[id], p.established else { return nil }
        for family in sendingOrder(p) {
            guard let table = tables[family] else {
                // Nothing to walk; a table created later starts its log at the peer's position 0.
                p.cursor[family] = nil
                p.pending[family] = nil
                continue
            }
            while let range = nextRange(p, family: family, table: table, limit: limit) {
                let decisions = decide(p, peer: id, family: family, table: table, slots: range.slots)
                if decisions.isEmpty { continue }
                let key = range.kind.map { RangeKey(family: family, kind: $0, start: range.start, end: range.end, context: context) }
                if let key, let cached = encodedRanges[key], cached.decisions == decisions {
                    for d in decisions where d.index < 0 { table.releaseIfUnused(d.slot) }
                    return (family, cached.messages)
                }
                let batch = content(of: decisions, family: family, table: table)
                let builder = UpdateBuilder(context: context)
                var messages: [ByteBuffer] = []
                for (set, elements) in batch.announce {
                    builder.announce(elements, family: family, nextHop: set.nextHop, attributes: set.attributes) { messages.append($0) }
                }
                if !batch.withdraw.isEmpty { messages += builder.withdraw(batch.withdraw, family: family) }
                if let key {
                    if encodedRanges.count >= 512 { encodedRanges.removeAll(keepingCapacity: true) }
                    encodedRanges[key] = EncodedRange(decisions: decisions, messages: messages)
                }
                return (family, messages)
            }
        }
        return nil
    }

    /// Membership routes first, so the peer knows what we import before it sends.
    private func sendingOrder(_ p: PeerState) -> [AddressFamily] {
        p.families.sorted { a, b in (a == .routeTargetConstraint ? 0 : 1, a) < (b == .routeTargetConstraint ? 0 : 1, b) }
    }

    /// A range of slots to evaluate for a peer: its own pending slots, the next block of its initial
    /// walk, or the next block of the change log. Walk and log blocks end on multiples of `limit`,
    /// so that peers reading at different times read the same ranges (and can share encodings).
    private func nextRange(_ p: PeerState, family: AddressFamily, table: FamilyTable, limit: Int) -> (slots: [Int32], kind: UInt8?, start: Int, end: Int)? {
        if var set = p.pending.removeValue(forKey: family), !set.isEmpty {
            var slots: [Int32] = []
            while slots.count < limit, let s = set.popFirst() { slots.append(s) }
            if !set.isEmpty { p.pending[family] = set }
            return (slots, nil, 0, 0)
        }
        if let c = p.cursor[family] {
            let end = min((Int(c) / limit + 1) * limit, table.slotCount)
            p.cursor[family] = end >= table.slotCount ? nil : Int32(end)
            return (Array(c..<Int32(max(Int(c), end))), 0, Int(c), end)
        }
        if let position = p.logPosition[family], position < table.logEnd {
            let end = min((position / limit + 1) * limit, table.logEnd)
            var slots: [Int32] = []
            for seq in max(position, table.logBase)..<end {
                if let slot = table.loggedSlot(seq) { slots.append(slot) }
            }
            p.logPosition[family] = end
            return (slots, 1, position, end)
        }
        return nil
    }

    /// What one peer gets for each slot: a path (index) or a withdraw (-1), with the destination's
    /// change number, so that equal decisions mean equal UPDATE content. Marks what the peer holds.
    private func decide(_ p: PeerState, peer id: WorkerID, family: AddressFamily, table: FamilyTable, slots: [Int32]) -> [Decision] {
        var decisions: [Decision] = []
        for slot in slots {
            let decision: Decision? = table.update(slot) { d in
                if let i = exportIndex(&d, family: family, to: id, p) {
                    d.advertised.insert(p.bit)
                    return Decision(slot: slot, index: Int16(i), seq: d.changeSeq)
                } else if d.advertised.contains(p.bit) {
                    d.advertised.remove(p.bit)
                    return Decision(slot: slot, index: -1, seq: d.changeSeq)
                }
                return nil
            } ?? nil
            if let decision { decisions.append(decision) }
        }
        return decisions
    }

    /// UPDATE content for decisions: announces grouped by attribute set (in first-seen order; a
    /// linear search from the last hit, since consecutive routes mostly share one), and withdraws.
    /// Destinations that were only kept for the withdraw are freed.
    private func content(of decisions: [Decision], family: AddressFamily, table: FamilyTable) -> OutboundBatch {
        var groups: [(set: AttributeSet, elements: [NLRIElement])] = []
        var last = -1
        var withdraw: [NLRIElement] = []
        for decision in decisions {
            table.update(decision.slot) { d in
                guard decision.index >= 0 else {
                    withdraw.append(d.key.withdrawal)
                    return
                }
                let i = Int(decision.index)
                let set = d.paths.attributes(at: i)
                if last < 0 || groups[last].set !== set {
                    last = groups.firstIndex { $0.set === set } ?? -1
                    if last < 0 {
                        groups.append((set, []))
                        last = groups.count - 1
                    }
                }
                groups[last].elements.append(d.paths.element(at: i))
            }
            if decision.index < 0 { table.releaseIfUnused(decision.slot) }
        }
        return OutboundBatch(family: family, announce: groups.map { ($0.set, $0.elements) }, withdraw: withdraw)
    }

    struct Decision: Equatable {
        var slot: Int32
        var index: Int16
        var seq: UInt32
    }

    struct RangeKey: Hashable {
        var family: AddressFamily
        var kind: UInt8
        var start: Int
        var end: Int
        var context: WireContext
    }

    struct EncodedRange {
        var decisions: [Decision]
        var messages: [ByteBuffer]
    }

    /// A route refresh: every destination of these families is evaluated again for the peer.
    public func resend(peer: WorkerID, families: [AddressFamily]) {
        guard peers[peer]?.established == true else { return }
        for family in families where peers[peer]?.families.contains(family) == true { peers[peer]?.cursor[family] = 0 }
    }

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
}
