import NIOCore

/// RFC 4271 §4.3 attribute flags.
public struct AttributeFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let optional = AttributeFlags(rawValue: 0x80)
    public static let transitive = AttributeFlags(rawValue: 0x40)
    public static let partial = AttributeFlags(rawValue: 0x20)
    public static let extendedLength = AttributeFlags(rawValue: 0x10)

    static let wellKnown: AttributeFlags = [.transitive]
    static let optionalTransitive: AttributeFlags = [.optional, .transitive]
    static let optionalNonTransitive: AttributeFlags = [.optional]
}

/// Attribute type codes (IANA "BGP Path Attributes").
public enum AttributeType {
    public static let origin: UInt8 = 1
    public static let asPath: UInt8 = 2
    public static let nextHop: UInt8 = 3
    public static let multiExitDiscriminator: UInt8 = 4
    public static let localPreference: UInt8 = 5
    public static let atomicAggregate: UInt8 = 6
    public static let aggregator: UInt8 = 7
    public static let communities: UInt8 = 8
    public static let originatorID: UInt8 = 9
    public static let clusterList: UInt8 = 10
    public static let mpReachNLRI: UInt8 = 14
    public static let mpUnreachNLRI: UInt8 = 15
    public static let extendedCommunities: UInt8 = 16
    public static let as4Path: UInt8 = 17
    public static let as4Aggregator: UInt8 = 18
    public static let pmsiTunnel: UInt8 = 22
    public static let largeCommunities: UInt8 = 32

    static let names: [UInt8: String] = [
        1: "origin", 2: "as-path", 3: "next-hop", 4: "med", 5: "local-preference", 6: "atomic-aggregate",
        7: "aggregator", 8: "communities", 9: "originator-id", 10: "cluster-list", 14: "mp-reach-nlri",
        15: "mp-unreach-nlri", 16: "extended-communities", 17: "as4-path", 18: "as4-aggregator",
        22: "pmsi-tunnel", 32: "large-communities",
    ]

    public static func name(_ code: UInt8) -> String { names[code] ?? "attribute-\(code)" }
}

/// The value of a path attribute.
public enum PathAttributeValue: Hashable, Sendable {
    case origin(Origin)
    case asPath(ASPath)
    case nextHop(IPv4Address)
    case multiExitDiscriminator(UInt32)
    case localPreference(UInt32)
    case atomicAggregate
    case aggregator(Aggregator)
    case communities([Community])
    case originatorID(IPv4Address)
    case clusterList([UInt32])
    case mpReachNLRI(MPReachNLRI)
    case mpUnreachNLRI(MPUnreachNLRI)
    case extendedCommunities([ExtendedCommunity])
    case as4Path(ASPath)
    case as4Aggregator(Aggregator)
    case pmsiTunnel(PMSITunnel)
    case largeCommunities([LargeCommunity])
    /// Any other attribute, kept byte for byte so it can be passed on unchanged.
    case unknown(type: UInt8, value: [UInt8])

    public var typeCode: UInt8 {
        switch self {
        case .origin: AttributeType.origin
        case .asPath: AttributeType.asPath
        case .nextHop: AttributeType.nextHop
        case .multiExitDiscriminator: AttributeType.multiExitDiscriminator
        case .localPreference: AttributeType.localPreference
        case .atomicAggregate: AttributeType.atomicAggregate
        case .aggregator: AttributeType.aggregator
        case .communities: AttributeType.communities
        case .originatorID: AttributeType.originatorID
        case .clusterList: AttributeType.clusterList
        case .mpReachNLRI: AttributeType.mpReachNLRI
        case .mpUnreachNLRI: AttributeType.mpUnreachNLRI
        case .extendedCommunities: AttributeType.extendedCommunities
        case .as4Path: AttributeType.as4Path
        case .as4Aggregator: AttributeType.as4Aggregator
        case .pmsiTunnel: AttributeType.pmsiTunnel
        case .largeCommunities: AttributeType.largeCommunities
        case .unknown(let type, _): type
        }
    }

    /// The flags RFC 4271 and each attribute's RFC give it (without partial and extended length).
    public var standardFlags: AttributeFlags {
        switch self {
        case .origin, .asPath, .nextHop, .localPreference, .atomicAggregate: .wellKnown
        case .multiExitDiscriminator, .originatorID, .clusterList, .mpReachNLRI, .mpUnreachNLRI: .optionalNonTransitive
        case .aggregator, .communities, .extendedCommunities, .as4Path, .as4Aggregator, .pmsiTunnel, .largeCommunities:
            .optionalTransitive
        case .unknown: .optionalTransitive
        }
    }
}

/// A path attribute: flags as on the wire plus its value. Decoding keeps the flags (partial bit,
/// extended length) so a reflected attribute goes out as it came in.
public struct PathAttribute: Hashable, Sendable {
    public var flags: AttributeFlags
    public var value: PathAttributeValue

    public init(flags: AttributeFlags, value: PathAttributeValue) {
        self.flags = flags
        self.value = value
    }

    /// An attribute with its standard flags.
    public init(_ value: PathAttributeValue) {
        self.value = value
        flags = value.standardFlags
    }

    public var typeCode: UInt8 { value.typeCode }
}

extension Array where Element == PathAttribute {
    /// The first attribute with this type code.
    public func first(type: UInt8) -> PathAttributeValue? { first { $0.typeCode == type }?.value }

    public var origin: Origin? {
        if case .origin(let o) = first(type: AttributeType.origin) { return o }
        return nil
    }

    public var asPath: ASPath? {
        if case .asPath(let p) = first(type: AttributeType.asPath) { return p }
        return nil
    }

    public var localPreference: UInt32? {
        if case .localPreference(let v) = first(type: AttributeType.localPreference) { return v }
        return nil
    }

    public var multiExitDiscriminator: UInt32? {
        if case .multiExitDiscriminator(let v) = first(type: AttributeType.multiExitDiscriminator) { return v }
        return nil
    }

    public var nextHop: IPv4Address? {
        if case .nextHop(let v) = first(type: AttributeType.nextHop) { return v }
        return nil
    }

    public var extendedCommunities: [ExtendedCommunity] {
        if case .extendedCommunities(let v) = first(type: AttributeType.extendedCommunities) { return v }
        return []
    }

    public var communities: [Community] {
        if case .communities(let v) = first(type: AttributeType.communities) { return v }
        return []
    }

    public var mpReach: MPReachNLRI? {
        if case .mpReachNLRI(let v) = first(type: AttributeType.mpReachNLRI) { return v }
        return nil
    }

    public var mpUnreach: MPUnreachNLRI? {
        if case .mpUnreachNLRI(let v) = first(type: AttributeType.mpUnreachNLRI) { return v }
        return nil
    }

    public var pmsiTunnel: PMSITunnel? {
        if case .pmsiTunnel(let v) = first(type: AttributeType.pmsiTunnel) { return v }
        return nil
    }

    public var originatorID: IPv4Address? {
        if case .originatorID(let v) = first(type: AttributeType.originatorID) { return v }
        return nil
    }

    public var clusterList: [UInt32] {
        if case .clusterList(let v) = first(type: AttributeType.clusterList) { return v }
        return []
    }
}
