/// One NLRI of any family this library models.
public enum NLRI: Hashable, Sendable {
    /// IPv4/IPv6 unicast or multicast.
    case prefix(IPPrefix)
    /// RFC 8277 labeled unicast (SAFI 4).
    case labeledPrefix(LabeledPrefix)
    /// RFC 4364 / 4659 labeled VPN (SAFI 128).
    case vpnPrefix(VPNPrefix)
    /// RFC 7432 / 9136 EVPN (AFI 25, SAFI 70).
    case evpn(EVPNRoute)
    /// RFC 4684 route target membership (SAFI 132).
    case routeTargetMembership(RouteTargetMembership)
    /// RFC 8955 / 8956 flow specification (SAFI 133, and 134 with an RD).
    case flowSpec(FlowSpecRule)
}

/// An NLRI with its RFC 7911 path identifier, when add-path is in use.
public struct NLRIElement: Hashable, Sendable {
    public var pathID: UInt32?
    public var nlri: NLRI

    public init(_ nlri: NLRI, pathID: UInt32? = nil) {
        self.nlri = nlri
        self.pathID = pathID
    }
}

/// RFC 8277 labeled prefix.
public struct LabeledPrefix: Hashable, Sendable {
    public var labels: MPLSLabelStack
    public var prefix: IPPrefix

    public init(labels: MPLSLabelStack, prefix: IPPrefix) {
        self.labels = labels
        self.prefix = prefix
    }
}

/// RFC 4364 VPN-IPv4 / RFC 4659 VPN-IPv6 labeled prefix.
public struct VPNPrefix: Hashable, Sendable, CustomStringConvertible {
    public var labels: MPLSLabelStack
    public var routeDistinguisher: RouteDistinguisher
    public var prefix: IPPrefix

    public init(labels: MPLSLabelStack, routeDistinguisher: RouteDistinguisher, prefix: IPPrefix) {
        self.labels = labels
        self.routeDistinguisher = routeDistinguisher
        self.prefix = prefix
    }

    public var description: String { "\(routeDistinguisher):\(prefix) label \(labels)" }
}

/// RFC 4684 route target membership NLRI. Prefix length 0 is the default route (all route
/// targets); 32 carries only the origin AS; 33-96 carry a (possibly partial) route target.
public struct RouteTargetMembership: Hashable, Sendable, CustomStringConvertible {
    /// Length in bits of origin AS + route target, 0 or 32...96.
    public var prefixLength: UInt8
    public var originAS: UInt32
    /// The route target bits; bits beyond `prefixLength - 32` are as on the wire (normally zero).
    public var routeTarget: ExtendedCommunity

    public init(originAS: UInt32, routeTarget: ExtendedCommunity) {
        prefixLength = 96
        self.originAS = originAS
        self.routeTarget = routeTarget
    }

    public init(prefixLength: UInt8, originAS: UInt32, routeTarget: ExtendedCommunity) {
        self.prefixLength = prefixLength
        self.originAS = originAS
        self.routeTarget = routeTarget
    }

    /// The default route target membership (length 0): "send me everything".
    public static let `default` = RouteTargetMembership(prefixLength: 0, originAS: 0, routeTarget: ExtendedCommunity(rawValue: 0))

    public var isDefault: Bool { prefixLength == 0 }

    /// Whether a route carrying `target` matches this membership (RFC 4684 §4 prefix match).
    public func matches(_ target: ExtendedCommunity) -> Bool {
        guard prefixLength > 32 else { return true }
        let bits = UInt64(prefixLength - 32)
        let mask: UInt64 = bits >= 64 ? .max : ~(UInt64.max >> bits)
        return target.rawValue & mask == routeTarget.rawValue & mask
    }

    /// "origin-as:administrator:number/length", as GoBGP prints it ("0:0:0/0" for the default).
    public var description: String {
        let value = routeTarget.value
        let target: String
        switch routeTarget.type & ~ExtendedCommunity.TypeCode.nonTransitiveBit {
        case ExtendedCommunity.TypeCode.ipv4Address: target = "\(IPv4Address(UInt32(truncatingIfNeeded: value >> 16))):\(value & 0xFFFF)"
        case ExtendedCommunity.TypeCode.fourOctetAS: target = "\(value >> 16):\(value & 0xFFFF)"
        default: target = "\(value >> 32):\(value & 0xFFFF_FFFF)"
        }
        return "\(originAS):\(target)/\(prefixLength)"
    }
}
