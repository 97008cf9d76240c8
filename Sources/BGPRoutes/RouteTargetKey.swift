import BGPWire

/// A route target as a subscription key: the transitivity bit is ignored (RFC 4360 §4 route targets
/// are compared by value), and any of the three RT forms (2-octet AS, IPv4, 4-octet AS) counts.
public struct RouteTargetKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The community with the non-transitive bit cleared.
    public let community: ExtendedCommunity

    public init?(_ community: ExtendedCommunity) {
        let type = community.type & ~ExtendedCommunity.TypeCode.nonTransitiveBit
        guard community.subtype == ExtendedCommunity.Subtype.routeTarget, type <= ExtendedCommunity.TypeCode.fourOctetAS else { return nil }
        self.community = ExtendedCommunity(rawValue: community.rawValue & ~(UInt64(ExtendedCommunity.TypeCode.nonTransitiveBit) << 56))
    }

    public static func < (a: Self, b: Self) -> Bool { a.community < b.community }
    public var description: String { community.description }
}

extension RouteTargetKey {
    /// The route targets of these attributes, as keys, without repeats.
    public static func keys(in attributes: [PathAttribute]) -> [RouteTargetKey] {
        var keys: [RouteTargetKey] = []
        for community in attributes.extendedCommunities {
            if let key = RouteTargetKey(community), !keys.contains(key) { keys.append(key) }
        }
        return keys
    }
}

