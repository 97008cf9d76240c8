import BGPRoutes
import BGPSession
import BGPWire

/// What a worker subscribes to: a family and a route target, or every route of the family.
public struct Match: Hashable, Sendable, CustomStringConvertible {
    public var family: AddressFamily
    /// nil: every route of the family (the "wildcard" of the original).
    public var routeTarget: RouteTargetKey?

    public init(family: AddressFamily, routeTarget: RouteTargetKey?) {
        self.family = family
        self.routeTarget = routeTarget
    }

    public init?(family: AddressFamily, routeTarget: ExtendedCommunity) {
        guard let key = RouteTargetKey(routeTarget) else { return nil }
        self.init(family: family, routeTarget: key)
    }

    public var description: String { "\(family)/\(routeTarget?.description ?? "*")" }
}

/// A peer's outbound filter, built from the RT membership routes it sends us (RFC 4684 §4).
struct RouteTargetFilter {
    /// Membership routes per exact route target (several origin ASes can name the same RT).
    private(set) var exact: [RouteTargetKey: Int] = [:]
    /// Default routes (length 0): everything is wanted.
    private(set) var defaults = 0
    /// Memberships shorter than 96 bits: (bits, mask over the RT, value).
    private(set) var partial: [(mask: UInt64, value: UInt64)] = []

    var isEmpty: Bool { exact.isEmpty && defaults == 0 && partial.isEmpty }

    /// What a membership route changes: an exact RT, everything, or a prefix of RTs.
    enum Effect: Equatable {
        case exact(RouteTargetKey)
        case everything
        case partial(mask: UInt64, value: UInt64)
        case nothing
    }

    static func effect(of membership: RouteTargetMembership) -> Effect {
        if membership.prefixLength == 0 { return .everything }
        if membership.prefixLength == 96 {
            if let key = RouteTargetKey(membership.routeTarget) { return .exact(key) }
            return .nothing
        }
        // 32 bits of origin AS, then a prefix of the 64-bit community.
        let bits = Int(membership.prefixLength) - 32
        guard bits > 0 else { return .everything }  // only the origin AS: every RT of that AS's routes
        let mask = bits >= 64 ? UInt64.max : ~(UInt64.max >> UInt64(bits))
        return .partial(mask: mask & ~(UInt64(ExtendedCommunity.TypeCode.nonTransitiveBit) << 56), value: membership.routeTarget.rawValue & mask)
    }

    mutating func add(_ effect: Effect) {
        switch effect {
        case .exact(let key): exact[key, default: 0] += 1
        case .everything: defaults += 1
        case .partial(let mask, let value): partial.append((mask, value))
        case .nothing: break
        }
    }

    mutating func remove(_ effect: Effect) {
        switch effect {
        case .exact(let key):
            if let n = exact[key] { exact[key] = n > 1 ? n - 1 : nil }
        case .everything: defaults = max(0, defaults - 1)
        case .partial(let mask, let value):
            if let i = partial.firstIndex(where: { $0.mask == mask && $0.value == value }) { partial.remove(at: i) }
        case .nothing: break
        }
    }

    func allows(_ routeTargets: [RouteTargetKey]) -> Bool {
        if defaults > 0 { return true }
        for rt in routeTargets {
            if exact[rt] != nil { return true }
            for p in partial where rt.community.rawValue & p.mask == p.value { return true }
        }
        return false
    }
}
