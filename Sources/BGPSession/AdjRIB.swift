import BGPRoutes
import BGPWire

/// Routes received from one peer, per family, after RFC 7606 handling.
public struct AdjRIBIn: Sendable {
    public struct Entry: Sendable {
        public var element: NLRIElement
        public var attributes: AttributeSet
        /// Kept across the peer's graceful restart until its End-of-RIB (RFC 4724 §4.2).
        public var stale: Bool
    }

    public private(set) var tables: [AddressFamily: [RouteKey: Entry]] = [:]
    /// The speaker's interner (see `AttributeInterner`).
    public let interner: AttributeInterner

    public init(interner: AttributeInterner = AttributeInterner()) { self.interner = interner }

    public func count(_ family: AddressFamily) -> Int { tables[family]?.count ?? 0 }
    public var totalCount: Int { tables.values.reduce(0) { $0 + $1.count } }

    /// What an UPDATE says, as changes, for an owner that keeps no Adj-RIB-In (it stores the routes
    /// itself, as the route engine does): every announce and withdraw, one attribute set per block.
    public static func changes(in update: UpdateMessage) -> [AddressFamily: [RouteChange]] {
        var changes = withdrawals(update.withdrawn)
        let shared = update.attributes.filter { $0.typeCode != AttributeType.mpReachNLRI && $0.typeCode != AttributeType.mpUnreachNLRI }
        for block in update.announced where !block.isOpaque {
            let nextHop: NextHop = block.family == .ipv4Unicast && block == update.nlri
                ? update.attributes.nextHop.map { .ipv4($0) } ?? .none : update.attributes.mpReach?.nextHop ?? .none
            let set = AttributeSet(attributes: shared, nextHop: nextHop)
            var list = changes.removeValue(forKey: block.family) ?? []
            for element in block { list.append(.announce(RouteKey(element), element, set)) }
            changes[block.family] = list
        }
        return changes
    }

    /// Withdraws (or RFC 7606 treat-as-withdraw) as changes, without an Adj-RIB-In.
    public static func withdrawals(_ blocks: [NLRIBlock]) -> [AddressFamily: [RouteChange]] {
        var changes: [AddressFamily: [RouteChange]] = [:]
        for block in blocks where !block.isOpaque {
            changes[block.family, default: []].append(contentsOf: block.map { .withdraw(RouteKey($0)) })
        }
        return changes
    }

    /// Applies an UPDATE; returns what changed (replacements are one announce, never withdraw+announce).
    public mutating func apply(_ update: UpdateMessage) -> [AddressFamily: [RouteChange]] {
        var changes: [AddressFamily: [RouteChange]] = [:]
        for (family, change) in withdraw(update.withdrawn) { changes[family, default: []] += change }
        let announced = update.announced.filter { !$0.isOpaque }
        guard !announced.isEmpty else { return changes }
        let shared = update.attributes.filter { $0.typeCode != AttributeType.mpReachNLRI && $0.typeCode != AttributeType.mpUnreachNLRI }
        for block in announced {
            let nextHop: NextHop = block.family == .ipv4Unicast && block == update.nlri
                ? update.attributes.nextHop.map { .ipv4($0) } ?? .none : update.attributes.mpReach?.nextHop ?? .none
            // Moved out (not copied) while it changes: a copy here would copy the whole table per UPDATE.
            var table = tables.removeValue(forKey: block.family) ?? [:]
            // One intern per block, one use per route (counted once for the block).
            let set = interner.intern(attributes: shared, nextHop: nextHop)
            // Replaced routes' sets are released after the new uses are counted: a route announced
            // again with the same attributes holds the same set, which must not go in between.
            var routes = 0
            var replaced: [AttributeSet] = []
            var list = changes.removeValue(forKey: block.family) ?? []
            for element in block {
                routes += 1
                let key = RouteKey(element)
                if let old = table.updateValue(Entry(element: element, attributes: set, stale: false), forKey: key) { replaced.append(old.attributes) }
                list.append(.announce(key, element, set))
            }
            changes[block.family] = list
            interner.retain(set, count: routes - 1)
            for old in replaced { interner.release(old) }
            tables[block.family] = table
        }
        return changes
    }

    /// RFC 7606 treat-as-withdraw.
    public mutating func withdraw(_ blocks: [NLRIBlock]) -> [AddressFamily: [RouteChange]] {
        var changes: [AddressFamily: [RouteChange]] = [:]
        for block in blocks where !block.isOpaque {
            for element in block {
                let key = RouteKey(element)
                if let old = tables[block.family]?.removeValue(forKey: key) {
                    interner.release(old.attributes)
                    changes[block.family, default: []].append(.withdraw(key))
                }
            }
        }
        return changes
    }

    /// The peer restarts gracefully: keep its routes, marked stale.
    public mutating func markStale(_ families: Set<AddressFamily>) {
        for family in families {
            guard var table = tables.removeValue(forKey: family) else { continue }
            for index in table.indices { table.values[index].stale = true }
            tables[family] = table
        }
    }

    /// End-of-RIB (or the restart timer): drop what is still stale.
    public mutating func sweepStale(_ family: AddressFamily) -> [RouteChange] {
        guard var table = tables.removeValue(forKey: family) else { return [] }
        let stale = table.filter { $0.value.stale }.map(\.key)
        for key in stale {
            if let old = table.removeValue(forKey: key) { interner.release(old.attributes) }
        }
        tables[family] = table
        return stale.map { .withdraw($0) }
    }

    /// Everything goes (session down without graceful restart).
    public mutating func clear() -> [AddressFamily: [RouteChange]] {
        var changes: [AddressFamily: [RouteChange]] = [:]
        for (family, table) in tables {
            changes[family] = table.keys.map { .withdraw($0) }
            for entry in table.values { interner.release(entry.attributes) }
        }
        tables = [:]
        return changes
    }
}

/// What we advertise to one peer: the wanted state per family, and which routes still have to be
/// sent. Sending reads the wanted state at that moment, so a slow peer costs memory per route, never
/// per message (a route changed ten times while the peer was slow is sent once).
public struct AdjRIBOut: Sendable {
    public private(set) var tables: [AddressFamily: [RouteKey: (element: NLRIElement, attributes: AttributeSet)]] = [:]
    public private(set) var pending: [AddressFamily: Set<RouteKey>] = [:]
    private let interner: AttributeInterner

    public init(interner: AttributeInterner = AttributeInterner()) { self.interner = interner }

    public func count(_ family: AddressFamily) -> Int { tables[family]?.count ?? 0 }
    public var hasPending: Bool { pending.values.contains { !$0.isEmpty } }

    public mutating func announce(_ elements: [NLRIElement], family: AddressFamily, nextHop: NextHop, attributes: [PathAttribute]) {
        guard !elements.isEmpty else { return }
        // One intern per call (hashing the attributes once), one use per route, as in AdjRIBIn.apply.
        let set = interner.intern(attributes: attributes, nextHop: nextHop)
        for (index, element) in elements.enumerated() {
            if index > 0 { interner.retain(set) }
            let key = RouteKey(element)
            if let old = tables[family, default: [:]].updateValue((element, set), forKey: key) { interner.release(old.attributes) }
            pending[family, default: []].insert(key)
        }
    }

    public mutating func withdraw(_ elements: [NLRIElement], family: AddressFamily) {
        for element in elements {
            let key = RouteKey(element)
            if let old = tables[family]?.removeValue(forKey: key) {
                interner.release(old.attributes)
                pending[family, default: []].insert(key)
            }
        }
    }

    /// Everything is to be sent again (new session, or the peer asked for a route refresh).
    public mutating func markAllPending(_ families: [AddressFamily]? = nil) {
        for family in families ?? Array(tables.keys) {
            pending[family] = Set(tables[family]?.keys.map { $0 } ?? [])
        }
    }

    /// Takes up to `limit` pending changes of one family, grouped by attribute set: what to announce
    /// (per set) and what to withdraw.
    public mutating func takePending(limit: Int = 10_000) -> (family: AddressFamily, announce: [(AttributeSet, [NLRIElement])], withdraw: [NLRIElement])? {
        guard let family = pending.first(where: { !$0.value.isEmpty })?.key, var keys = pending.removeValue(forKey: family) else { return nil }
        var groups: [ObjectIdentifier: (AttributeSet, [NLRIElement])] = [:]
        var withdraw: [NLRIElement] = []
        var taken = 0
        while taken < limit, let key = keys.popFirst() {
            taken += 1
            if let (element, set) = tables[family]?[key] {
                groups[ObjectIdentifier(set), default: (set, [])].1.append(element)
            } else {
                withdraw.append(key.withdrawal)
            }
        }
        pending[family] = keys
        return (family, Array(groups.values), withdraw)
    }
}
