import BGPWire

/// Path attributes and next hop shared by many routes, stored once (as BIRD and FRR do).
public final class AttributeSet: Hashable, Sendable {
    public let attributes: [PathAttribute]
    public let nextHop: NextHop
    /// The route targets among the extended communities, computed once per set: the engine reads
    /// them for every route it indexes or filters.
    public let routeTargetKeys: [RouteTargetKey]

    public init(attributes: [PathAttribute], nextHop: NextHop) {
        self.attributes = attributes
        self.nextHop = nextHop
        routeTargetKeys = RouteTargetKey.keys(in: attributes)
    }

    public static func == (lhs: AttributeSet, rhs: AttributeSet) -> Bool {
        lhs === rhs || (lhs.nextHop == rhs.nextHop && lhs.attributes == rhs.attributes)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(nextHop)
        hasher.combine(attributes)
    }
}

/// Interns attribute sets: equal sets come back as the same object, counted by use so that a set no
/// route uses any more is dropped. Uses are counted by identity: releasing a route's set hashes
/// nothing (only the last release hashes the content, to forget it), and a set already interned
/// (the routes of one UPDATE share one) is taken again without hashing its content.
///
/// One per speaker, shared by its Adj-RIBs-In, its Adj-RIBs-Out and its route engine: a route a
/// peer stored is taken by the engine without hashing it again, and equal attributes from several
/// peers are one object. Each owner counts its own uses. Not locked: used on the speaker's event
/// loop only (as the engine is).
public final class AttributeInterner: @unchecked Sendable {
    private var byContent: [AttributeSet: AttributeSet] = [:]
    private var uses: [ObjectIdentifier: Int] = [:]

    public init() {}

    /// Distinct sets in use.
    public var count: Int { byContent.count }

    /// The shared set equal to these attributes, with one more use.
    public func intern(attributes: [PathAttribute], nextHop: NextHop) -> AttributeSet {
        intern(AttributeSet(attributes: attributes, nextHop: nextHop))
    }

    /// The shared set equal to `set` (`set` itself when it is new or already the shared one), with
    /// one more use.
    public func intern(_ set: AttributeSet) -> AttributeSet {
        if let n = uses[ObjectIdentifier(set)] {
            uses[ObjectIdentifier(set)] = n + 1
            return set
        }
        let shared = byContent[set] ?? set
        if shared === set { byContent[set] = set }
        uses[ObjectIdentifier(shared), default: 0] += 1
        return shared
    }

    /// One more use of a set this interner returned (`count` more).
    public func retain(_ set: AttributeSet, count: Int = 1) {
        guard count > 0 else { return }
        uses[ObjectIdentifier(set)]? += count
    }

    /// One use fewer; the set goes when nothing uses it.
    public func release(_ set: AttributeSet) {
        let id = ObjectIdentifier(set)
        guard let n = uses[id] else { return }
        if n > 1 {
            uses[id] = n - 1
        } else {
            uses[id] = nil
            if byContent[set] === set { byContent[set] = nil }
        }
    }
}
