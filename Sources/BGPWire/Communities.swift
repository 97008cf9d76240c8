/// RFC 1997 community: 2-byte AS and 2-byte value.
public struct Community: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(as asn: UInt16, _ value: UInt16) { rawValue = UInt32(asn) << 16 | UInt32(value) }

    public static let noExport = Community(rawValue: 0xFFFF_FF01)
    public static let noAdvertise = Community(rawValue: 0xFFFF_FF02)
    public static let noExportSubconfed = Community(rawValue: 0xFFFF_FF03)

    public var description: String { "\(rawValue >> 16):\(rawValue & 0xFFFF)" }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// RFC 8092 large community: three 4-byte fields.
public struct LargeCommunity: Hashable, Sendable, CustomStringConvertible {
    public var globalAdministrator: UInt32
    public var localData1: UInt32
    public var localData2: UInt32

    public init(_ globalAdministrator: UInt32, _ localData1: UInt32, _ localData2: UInt32) {
        self.globalAdministrator = globalAdministrator
        self.localData1 = localData1
        self.localData2 = localData2
    }

    public var description: String { "\(globalAdministrator):\(localData1):\(localData2)" }
}

/// RFC 4271 ORIGIN.
public enum Origin: UInt8, Hashable, Sendable, CustomStringConvertible {
    case igp = 0
    case egp = 1
    case incomplete = 2

    public var description: String {
        switch self {
        case .igp: "igp"
        case .egp: "egp"
        case .incomplete: "incomplete"
        }
    }
}

/// AS_PATH / AS4_PATH: segments of AS numbers (held as 4 bytes whatever the wire width).
public struct ASPath: Hashable, Sendable, CustomStringConvertible {
    public enum SegmentType: UInt8, Hashable, Sendable {
        case set = 1
        case sequence = 2
        case confederationSequence = 3  // RFC 5065
        case confederationSet = 4
    }

    public struct Segment: Hashable, Sendable {
        public var type: SegmentType
        public var asns: [UInt32]
        public init(_ type: SegmentType, _ asns: [UInt32]) {
            self.type = type
            self.asns = asns
        }
    }

    public var segments: [Segment]

    public init(_ segments: [Segment] = []) { self.segments = segments }

    public static func sequence(_ asns: [UInt32]) -> Self { asns.isEmpty ? Self() : Self([Segment(.sequence, asns)]) }

    /// RFC 4271 §9.1.2.2: a set counts as one, confederation segments count zero.
    public var pathLength: Int {
        segments.reduce(0) { total, segment in
            switch segment.type {
            case .sequence: total + segment.asns.count
            case .set: total + 1
            case .confederationSequence, .confederationSet: total
            }
        }
    }

    /// True when any AS number needs 4 bytes.
    public var needsFourOctets: Bool { segments.contains { $0.asns.contains { $0 > 0xFFFF } } }

    public var description: String {
        segments.map { segment in
            let list = segment.asns.map(String.init).joined(separator: " ")
            switch segment.type {
            case .sequence: return list
            case .set: return "{\(list)}"
            case .confederationSequence: return "(\(list))"
            case .confederationSet: return "[\(list)]"
            }
        }.joined(separator: " ")
    }
}

/// AGGREGATOR / AS4_AGGREGATOR.
public struct Aggregator: Hashable, Sendable {
    public var asn: UInt32
    public var address: IPv4Address
    public init(asn: UInt32, address: IPv4Address) {
        self.asn = asn
        self.address = address
    }
}

/// RFC 6514 §5 P-Multicast Service Interface tunnel attribute.
public struct PMSITunnel: Hashable, Sendable {
    public struct TunnelKind: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let noTunnelInformation = TunnelKind(rawValue: 0)
        public static let rsvpTEP2MP = TunnelKind(rawValue: 1)
        public static let mldpP2MP = TunnelKind(rawValue: 2)
        public static let pimSSM = TunnelKind(rawValue: 3)
        public static let pimSM = TunnelKind(rawValue: 4)
        public static let bidirPIM = TunnelKind(rawValue: 5)
        public static let ingressReplication = TunnelKind(rawValue: 6)
        public static let mldpMP2MP = TunnelKind(rawValue: 7)
    }

    /// Bit 0 (0x01) is "leaf information required".
    public var flags: UInt8
    public var tunnelType: TunnelKind
    /// The 3-byte label field as on the wire: a VNI for VXLAN (RFC 8365), else label << 4.
    public var labelField: UInt32
    public var tunnelIdentifier: [UInt8]

    public init(flags: UInt8 = 0, tunnelType: TunnelKind, labelField: UInt32, tunnelIdentifier: [UInt8]) {
        self.flags = flags
        self.tunnelType = tunnelType
        self.labelField = labelField & 0xFF_FFFF
        self.tunnelIdentifier = tunnelIdentifier
    }

    /// Ingress replication to a tunnel endpoint (what an EVPN type-3 route carries).
    public static func ingressReplication(endpoint: IPAddress, labelField: UInt32, flags: UInt8 = 0) -> Self {
        var id: [UInt8] = []
        switch endpoint {
        case .v4(let a): id.appendBigEndian(a.value)
        case .v6(let a):
            id.appendBigEndian(a.high)
            id.appendBigEndian(a.low)
        }
        return Self(flags: flags, tunnelType: .ingressReplication, labelField: labelField, tunnelIdentifier: id)
    }

    /// The tunnel endpoint for ingress replication (4 or 16 bytes of identifier).
    public var tunnelEndpoint: IPAddress? {
        switch tunnelIdentifier.count {
        case 4: return .v4(IPv4Address(tunnelIdentifier.readBigEndianUInt32(at: 0)))
        case 16:
            return .v6(IPv6Address(high: tunnelIdentifier.readBigEndianUInt64(at: 0), low: tunnelIdentifier.readBigEndianUInt64(at: 8)))
        default: return nil
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        for i in stride(from: T.bitWidth / 8 - 1, through: 0, by: -1) {
            append(UInt8(truncatingIfNeeded: value >> (i * 8)))
        }
    }

    func readBigEndianUInt32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(self[offset + $1]) }
    }

    func readBigEndianUInt64(at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(self[offset + $1]) }
    }
}
