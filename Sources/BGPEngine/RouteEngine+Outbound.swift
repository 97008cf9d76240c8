import BGPRoutes
import BGPSession
import BGPWire
import NIOCore

extension RouteEngine {
    // MARK: Routes out

    /// RFC 4456 §6: a client's route goes to everyone, a non-client's only to clients; a host sends only
    /// its own routes.
    func reflectionAllows(_ path: Path, to peerID: WorkerID) -> Bool { reflectionAllows(from: path.source, to: peerID) }

    func reflectionAllows(from source: WorkerID, to peerID: WorkerID) -> Bool {
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

    func exportable(source: WorkerID, attributes: AttributeSet, family: AddressFamily, to peerID: WorkerID, _ p: PeerState) -> Bool {
        guard reflectionAllows(from: source, to: peerID) else { return false }
        if family == .routeTargetConstraint || !p.rtcActive { return true }
        return p.filter.allows(attributes.routeTargetKeys)
    }

    /// Index in `d.paths` of the path a peer should hold, if any. Reads the destination in place: the
    /// send path runs once per route and peer, and copies of destinations cost retains.
    func exportIndex(_ d: inout Destination, family: AddressFamily, to peerID: WorkerID, _ p: PeerState) -> Int? {
        if family == .routeTargetConstraint {
            // RFC 4684 §3.2: the best membership route among those the peer did not send, so that a
            // client learns that others import the same route target.
            let i = DecisionProcess.best(of: d.paths, sources: pathSource, eligible: { self.reflectionAllows($0, to: peerID) })
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
        guard let next = nextDecisions(peer: id, limit: limit) else { return nil }
        return content(of: next.decisions, family: next.family, table: next.table)
    }

    /// The same as encoded UPDATEs for this wire context. Peers with the same context that evaluate
    /// the same range of the change log (or of the initial walk) to the same decisions share one
    /// encoding, as FRR's update groups do; a peer whose own routes are in the range, or whose
    /// advertised state differs, decides differently and gets its own.
    public func takeEncoded(peer id: WorkerID, limit: Int, context: WireContext) -> (family: AddressFamily, messages: [ByteBuffer])? {
        guard let next = nextDecisions(peer: id, limit: limit) else { return nil }
        let (family, table, range, decisions) = (next.family, next.table, next.range, next.decisions)
        let key = range.kind.map { RangeKey(family: family, kind: $0, start: range.start, end: range.end, context: context) }
        if let key, let cached = encodedRanges[key], cached.decisions == decisions {
            for d in decisions where d.index < 0 { table.releaseIfUnused(d.slot) }
            return (family, cached.messages)
        }
        let batch = content(of: decisions, family: family, table: table)
        let messages = UpdateBuilder(context: context).messages(announcing: batch.announce, withdrawing: batch.withdraw, family: family)
        if let key {
            if encodedRanges.count >= 512 { encodedRanges.removeAll(keepingCapacity: true) }
            encodedRanges[key] = EncodedRange(decisions: decisions, messages: messages)
        }
        return (family, messages)
    }

    /// The next range with something for the peer, and what it decided for each slot. Ranges that
    /// turn out empty (everything filtered) are skipped.
    func nextDecisions(peer id: WorkerID, limit: Int) -> (family: AddressFamily, table: FamilyTable, range: (slots: [Int32], kind: UInt8?, start: Int, end: Int), decisions: [Decision])? {
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
                if !decisions.isEmpty { return (family, table, range, decisions) }
            }
        }
        return nil
    }

    /// Membership routes first, so the peer knows what we import before it sends.
    func sendingOrder(_ p: PeerState) -> [AddressFamily] {
        p.families.sorted { a, b in (a == .routeTargetConstraint ? 0 : 1, a) < (b == .routeTargetConstraint ? 0 : 1, b) }
    }

    /// A range of slots to evaluate for a peer: its own pending slots, the next block of its initial
    /// walk, or the next block of the change log. Walk and log blocks end on multiples of `limit`,
    /// so that peers reading at different times read the same ranges (and can share encodings).
    func nextRange(_ p: PeerState, family: AddressFamily, table: FamilyTable, limit: Int) -> (slots: [Int32], kind: UInt8?, start: Int, end: Int)? {
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
    func decide(_ p: PeerState, peer id: WorkerID, family: AddressFamily, table: FamilyTable, slots: [Int32]) -> [Decision] {
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
    func content(of decisions: [Decision], family: AddressFamily, table: FamilyTable) -> OutboundBatch {
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
}
