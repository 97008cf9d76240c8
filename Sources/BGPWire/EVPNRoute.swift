/// RFC 7432 §5 Ethernet segment identifier: a type byte and 9 value bytes.
public struct EthernetSegmentIdentifier: Hashable, Sendable, CustomStringConvertible {
    /// The first 2 bytes (type and first value byte).
    public var high: UInt16
    /// The last 8 bytes.
    public var low: UInt64

    public init(high: UInt16, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static let zero = EthernetSegmentIdentifier(high: 0, low: 0)

    /// ESI type 0-5 (RFC 7432 §5): arbitrary, LACP, bridged LAN, MAC-based, router id, AS-based.
    public var type: UInt8 { UInt8(truncatingIfNeeded: high >> 8) }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.appendBigEndian(high)
        out.appendBigEndian(low)
        return out
    }

    public var description: String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }
}

/// EVPN route type 1.
public struct EVPNEthernetAutoDiscoveryRoute: Hashable, Sendable {
    public var routeDistinguisher: RouteDistinguisher
    public var esi: EthernetSegmentIdentifier
    public var ethernetTag: UInt32
    /// The 3-byte label field as on the wire.
    public var labelField: UInt32

    public init(routeDistinguisher: RouteDistinguisher, esi: EthernetSegmentIdentifier, ethernetTag: UInt32, labelField: UInt32) {
        self.routeDistinguisher = routeDistinguisher
        self.esi = esi
        self.ethernetTag = ethernetTag
        self.labelField = labelField & 0xFF_FFFF
    }
}

/// EVPN route type 2 (MAC/IP advertisement).
public struct EVPNMACIPRoute: Hashable, Sendable {
    public var routeDistinguisher: RouteDistinguisher
    public var esi: EthernetSegmentIdentifier
    public var ethernetTag: UInt32
    public var mac: MACAddress
    public var ip: IPAddress?
    /// Label field 1 (a VNI for VXLAN per RFC 8365, an MPLS label entry otherwise).
    public var labelField1: UInt32
    /// Optional label field 2 (L3 VNI / label).
    public var labelField2: UInt32?

    public init(
        routeDistinguisher: RouteDistinguisher, esi: EthernetSegmentIdentifier = .zero, ethernetTag: UInt32 = 0,
        mac: MACAddress, ip: IPAddress? = nil, labelField1: UInt32, labelField2: UInt32? = nil
    ) {
        self.routeDistinguisher = routeDistinguisher
        self.esi = esi
        self.ethernetTag = ethernetTag
        self.mac = mac
        self.ip = ip
        self.labelField1 = labelField1 & 0xFF_FFFF
        self.labelField2 = labelField2.map { $0 & 0xFF_FFFF }
    }
}

/// EVPN route type 3 (inclusive multicast Ethernet tag).
public struct EVPNInclusiveMulticastRoute: Hashable, Sendable {
    public var routeDistinguisher: RouteDistinguisher
    public var ethernetTag: UInt32
    public var originatingRouter: IPAddress

    public init(routeDistinguisher: RouteDistinguisher, ethernetTag: UInt32 = 0, originatingRouter: IPAddress) {
        self.routeDistinguisher = routeDistinguisher
        self.ethernetTag = ethernetTag
        self.originatingRouter = originatingRouter
    }
}

/// EVPN route type 4 (Ethernet segment).
public struct EVPNEthernetSegmentRoute: Hashable, Sendable {
    public var routeDistinguisher: RouteDistinguisher
    public var esi: EthernetSegmentIdentifier
    public var originatingRouter: IPAddress

    public init(routeDistinguisher: RouteDistinguisher, esi: EthernetSegmentIdentifier, originatingRouter: IPAddress) {
        self.routeDistinguisher = routeDistinguisher
        self.esi = esi
        self.originatingRouter = originatingRouter
    }
}

/// EVPN route type 5 (IP prefix, RFC 9136). The gateway address has the prefix's family.
public struct EVPNIPPrefixRoute: Hashable, Sendable {
    public var routeDistinguisher: RouteDistinguisher
    public var esi: EthernetSegmentIdentifier
    public var ethernetTag: UInt32
    public var prefix: IPPrefix
    public var gateway: IPAddress
    public var labelField: UInt32

    public init(
        routeDistinguisher: RouteDistinguisher, esi: EthernetSegmentIdentifier = .zero, ethernetTag: UInt32 = 0,
        prefix: IPPrefix, gateway: IPAddress, labelField: UInt32
    ) {
        self.routeDistinguisher = routeDistinguisher
        self.esi = esi
        self.ethernetTag = ethernetTag
        self.prefix = prefix
        self.gateway = gateway
        self.labelField = labelField & 0xFF_FFFF
    }
}

/// An EVPN NLRI. Route types this library does not model keep their bytes.
public enum EVPNRoute: Hashable, Sendable {
    case ethernetAutoDiscovery(EVPNEthernetAutoDiscoveryRoute)
    case macIPAdvertisement(EVPNMACIPRoute)
    case inclusiveMulticast(EVPNInclusiveMulticastRoute)
    case ethernetSegment(EVPNEthernetSegmentRoute)
    case ipPrefix(EVPNIPPrefixRoute)
    case unknown(type: UInt8, value: [UInt8])

    public var routeType: UInt8 {
        switch self {
        case .ethernetAutoDiscovery: 1
        case .macIPAdvertisement: 2
        case .inclusiveMulticast: 3
        case .ethernetSegment: 4
        case .ipPrefix: 5
        case .unknown(let type, _): type
        }
    }

    public var routeDistinguisher: RouteDistinguisher? {
        switch self {
        case .ethernetAutoDiscovery(let r): r.routeDistinguisher
        case .macIPAdvertisement(let r): r.routeDistinguisher
        case .inclusiveMulticast(let r): r.routeDistinguisher
        case .ethernetSegment(let r): r.routeDistinguisher
        case .ipPrefix(let r): r.routeDistinguisher
        case .unknown: nil
        }
    }
}
