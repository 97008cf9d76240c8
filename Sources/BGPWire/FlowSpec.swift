/// RFC 8955 (IPv4) / RFC 8956 (IPv6) flow specification: an ordered list of components, with a
/// route distinguisher in the VPN family (SAFI 134).
public struct FlowSpecRule: Hashable, Sendable {
    public var routeDistinguisher: RouteDistinguisher?
    public var components: [FlowSpecComponent]

    public init(routeDistinguisher: RouteDistinguisher? = nil, components: [FlowSpecComponent]) {
        self.routeDistinguisher = routeDistinguisher
        self.components = components
    }
}

/// Component type codes (IANA "Flow Spec Component Types").
public enum FlowSpecComponentType {
    public static let destinationPrefix: UInt8 = 1
    public static let sourcePrefix: UInt8 = 2
    public static let ipProtocol: UInt8 = 3  // next header for IPv6
    public static let port: UInt8 = 4
    public static let destinationPort: UInt8 = 5
    public static let sourcePort: UInt8 = 6
    public static let icmpType: UInt8 = 7
    public static let icmpCode: UInt8 = 8
    public static let tcpFlags: UInt8 = 9
    public static let packetLength: UInt8 = 10
    public static let dscp: UInt8 = 11
    public static let fragment: UInt8 = 12
    public static let flowLabel: UInt8 = 13  // IPv6 only

    static let names: [UInt8: String] = [
        1: "destination", 2: "source", 3: "protocol", 4: "port", 5: "destination-port", 6: "source-port",
        7: "icmp-type", 8: "icmp-code", 9: "tcp-flags", 10: "packet-length", 11: "dscp", 12: "fragment",
        13: "flow-label",
    ]

    /// Components whose operators are bitmask operators rather than numeric ones.
    static func isBitmask(_ type: UInt8) -> Bool { type == tcpFlags || type == fragment }
}

public enum FlowSpecComponent: Hashable, Sendable {
    /// Types 1 and 2. For IPv6 (RFC 8956) `offset` is the pattern's first bit; the address holds the
    /// pattern bits at their place in the address, bits before `offset` zero.
    case prefix(type: UInt8, prefix: IPPrefix, offset: UInt8)
    /// Types 3-13: a list of (operator, value) pairs, ANDed or ORed as each operator says.
    case match(type: UInt8, [FlowSpecMatch])

    public var type: UInt8 {
        switch self {
        case .prefix(let type, _, _): type
        case .match(let type, _): type
        }
    }

    public static func destination(_ prefix: IPPrefix) -> Self { .prefix(type: FlowSpecComponentType.destinationPrefix, prefix: prefix, offset: 0) }
    public static func source(_ prefix: IPPrefix) -> Self { .prefix(type: FlowSpecComponentType.sourcePrefix, prefix: prefix, offset: 0) }
}

/// One operator/value pair. `op` is the wire operator byte with the end-of-list bit cleared and the
/// length bits telling how many bytes the value takes (1, 2, 4 or 8).
public struct FlowSpecMatch: Hashable, Sendable, CustomStringConvertible {
    public var op: UInt8
    public var value: UInt64

    public static let endOfList: UInt8 = 0x80
    public static let and: UInt8 = 0x40
    public static let lengthMask: UInt8 = 0x30
    // Numeric operator bits.
    public static let lessThan: UInt8 = 0x04
    public static let greaterThan: UInt8 = 0x02
    public static let equal: UInt8 = 0x01
    // Bitmask operator bits.
    public static let not: UInt8 = 0x02
    public static let match: UInt8 = 0x01

    public init(op: UInt8, value: UInt64) {
        self.op = op & ~Self.endOfList
        self.value = value
    }

    /// An operator with the smallest value length that holds `value`.
    public init(comparison: UInt8, value: UInt64, and: Bool = false) {
        let lengthCode: UInt8 = value <= 0xFF ? 0 : value <= 0xFFFF ? 1 : value <= 0xFFFF_FFFF ? 2 : 3
        self.init(op: (and ? Self.and : 0) | lengthCode << 4 | comparison & 0x0F, value: value)
    }

    public var valueLength: Int { 1 << Int((op & Self.lengthMask) >> 4) }
    public var isAnd: Bool { op & Self.and != 0 }

    public var description: String { "op=0x\(String(op, radix: 16)) value=\(value)" }

    /// Text like ExaBGP's numeric syntax: "=80", ">=1024", "&<=2048".
    public func text(bitmask: Bool) -> String {
        var s = isAnd ? "&" : ""
        if bitmask {
            if op & Self.not != 0 { s += "!" }
            if op & Self.match != 0 { s += "=" }
        } else {
            switch op & 0x07 {
            case 0: s += "false"
            case Self.equal: s += "="
            case Self.greaterThan: s += ">"
            case Self.greaterThan | Self.equal: s += ">="
            case Self.lessThan: s += "<"
            case Self.lessThan | Self.equal: s += "<="
            case Self.lessThan | Self.greaterThan: s += "!="
            default: s += "true"
            }
        }
        return s + String(value)
    }
}
