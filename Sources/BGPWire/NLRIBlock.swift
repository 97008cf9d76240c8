import NIOCore

/// The NLRI of one family as they sit in a message: the withdrawn-routes or NLRI field, or the
/// NLRI part of MP_REACH_NLRI / MP_UNREACH_NLRI.
///
/// Decoding validates every NLRI but keeps the bytes (a slice of the message, no copy); iterating
/// reads the values again on the fly. That keeps decoding free of per-NLRI heap allocation, which
/// matters when a peer sends a million routes. Families the library does not model are kept as
/// opaque bytes and iterate as empty.
public struct NLRIBlock: Hashable, Sendable, Sequence {
    public let family: AddressFamily
    /// RFC 7911 path identifiers precede each NLRI.
    public let addPath: Bool
    /// The NLRI bytes as on the wire.
    public let bytes: ByteBuffer
    /// Number of NLRI (0 for an opaque family).
    public let count: Int

    /// Decodes and validates NLRI bytes.
    init(validating bytes: ByteBuffer, family: AddressFamily, addPath: Bool) throws(MalformedField) {
        self.family = family
        self.addPath = addPath
        self.bytes = bytes
        let layout = NLRILayout(family)
        guard layout != .opaque else {
            count = 0
            return
        }
        let result: Result<Int, MalformedField> = bytes.withUnsafeReadableBytes { raw in
            var cursor = RawCursor(raw)
            var n = 0
            do throws(MalformedField) {
                while cursor.remaining > 0 {
                    try NLRICodec.skip(layout, addPath: addPath, from: &cursor)
                    n += 1
                }
            } catch {
                return .failure(error)
            }
            return .success(n)
        }
        count = try result.get()
    }

    /// Encodes NLRI values.
    public init(family: AddressFamily, addPath: Bool = false, _ elements: [NLRIElement]) {
        self.family = family
        self.addPath = addPath
        var buffer = ByteBuffer()
        for element in elements { NLRICodec.write(element, addPath: addPath, to: &buffer) }
        bytes = buffer
        count = elements.count
    }

    public init(family: AddressFamily, _ nlri: [NLRI]) {
        self.init(family: family, addPath: false, nlri.map { NLRIElement($0) })
    }

    /// An opaque block for a family this library does not model.
    public init(family: AddressFamily, addPath: Bool = false, opaqueBytes: [UInt8]) {
        self.family = family
        self.addPath = addPath
        bytes = ByteBuffer(bytes: opaqueBytes)
        count = 0
    }

    public static func empty(_ family: AddressFamily) -> NLRIBlock { NLRIBlock(family: family, addPath: false, []) }

    public var isOpaque: Bool { NLRILayout(family) == .opaque }
    public var isEmpty: Bool { bytes.readableBytes == 0 }

    public struct Iterator: IteratorProtocol {
        /// Keeps the bytes alive (and unchanged: this copy is never written) while `base` points into them.
        let bytes: ByteBuffer
        let base: UnsafeRawPointer?
        var cursor: RawCursor
        let layout: NLRILayout
        let addPath: Bool

        init(bytes: ByteBuffer, layout: NLRILayout, addPath: Bool) {
            self.bytes = bytes
            // The storage of a ByteBuffer that is not mutated neither moves nor is freed while a copy of
            // the buffer lives, so its address stays good for this iterator's lifetime. Resolving it once
            // keeps every element from paying for a buffer access.
            base = bytes.withUnsafeReadableBytes { $0.baseAddress }
            cursor = RawCursor(base: base, position: 0, end: bytes.readableBytes)
            self.layout = layout
            self.addPath = addPath
        }

        public mutating func next() -> NLRIElement? {
            guard layout != .opaque, cursor.remaining > 0 else { return nil }
            // Validated at construction, so this cannot fail; stop rather than trap if it ever did.
            do {
                return try NLRICodec.read(layout, addPath: addPath, from: &cursor)
            } catch {
                cursor.position = cursor.end
                return nil
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(bytes: bytes, layout: NLRILayout(family), addPath: addPath) }

    public var elements: [NLRIElement] { Array(self) }

    /// Equal when family, add-path and every NLRI are equal.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.family == rhs.family && lhs.addPath == rhs.addPath && lhs.count == rhs.count && lhs.bytes == rhs.bytes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(family)
        hasher.combine(addPath)
        hasher.combine(bytes)
    }
}

/// Next hop of MP_REACH_NLRI. Which case comes out of decoding depends only on the length
/// (RFC 4760, 4364 §4.3.2, 4659 §3.2.1, 8950), so encoding gives the same bytes back.
public enum NextHop: Hashable, Sendable, CustomStringConvertible {
    case none
    case ipv4(IPv4Address)
    case ipv6(IPv6Address, linkLocal: IPv6Address?)
    /// VPN next hops carry an RD (normally zero) before the address.
    case vpnIPv4(RouteDistinguisher, IPv4Address)
    /// The link-local address has an RD of its own (zero in practice) when present.
    case vpnIPv6(RouteDistinguisher, IPv6Address, linkLocal: IPv6Address?, linkLocalRD: RouteDistinguisher = RouteDistinguisher(rawValue: 0))
    /// Any other length, kept as bytes.
    case raw([UInt8])

    public static func decode(_ bytes: ByteBuffer) -> NextHop {
        var b = bytes
        switch b.readableBytes {
        case 0: return .none
        case 4: return .ipv4(IPv4Address(b.readInteger(as: UInt32.self) ?? 0))
        case 16: return .ipv6((try? b.readIPv6()) ?? IPv6Address(high: 0, low: 0), linkLocal: nil)
        case 32:
            let global = (try? b.readIPv6()) ?? IPv6Address(high: 0, low: 0)
            return .ipv6(global, linkLocal: try? b.readIPv6())
        case 12:
            let rd = RouteDistinguisher(rawValue: b.readInteger(as: UInt64.self) ?? 0)
            return .vpnIPv4(rd, IPv4Address(b.readInteger(as: UInt32.self) ?? 0))
        case 24:
            let rd = RouteDistinguisher(rawValue: b.readInteger(as: UInt64.self) ?? 0)
            return .vpnIPv6(rd, (try? b.readIPv6()) ?? IPv6Address(high: 0, low: 0), linkLocal: nil)
        case 48:
            let rd = RouteDistinguisher(rawValue: b.readInteger(as: UInt64.self) ?? 0)
            let global = (try? b.readIPv6()) ?? IPv6Address(high: 0, low: 0)
            let linkLocalRD = RouteDistinguisher(rawValue: b.readInteger(as: UInt64.self) ?? 0)
            return .vpnIPv6(rd, global, linkLocal: try? b.readIPv6(), linkLocalRD: linkLocalRD)
        default: return .raw(b.readBytes(length: b.readableBytes) ?? [])
        }
    }

    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .none: break
        case .ipv4(let a): buffer.writeInteger(a.value)
        case .ipv6(let global, let linkLocal):
            buffer.writeIPAddress(.v6(global))
            if let linkLocal { buffer.writeIPAddress(.v6(linkLocal)) }
        case .vpnIPv4(let rd, let a):
            buffer.writeInteger(rd.rawValue)
            buffer.writeInteger(a.value)
        case .vpnIPv6(let rd, let global, let linkLocal, let linkLocalRD):
            buffer.writeInteger(rd.rawValue)
            buffer.writeIPAddress(.v6(global))
            if let linkLocal {
                buffer.writeInteger(linkLocalRD.rawValue)
                buffer.writeIPAddress(.v6(linkLocal))
            }
        case .raw(let bytes): buffer.writeBytes(bytes)
        }
    }

    /// The IPv6 link-local address that may follow a global one (RFC 2545 §3).
    public var linkLocal: IPv6Address? {
        switch self {
        case .ipv6(_, let ll), .vpnIPv6(_, _, let ll, _): ll
        default: nil
        }
    }

    /// The address routes should be forwarded to, whatever the encoding.
    public var address: IPAddress? {
        switch self {
        case .ipv4(let a), .vpnIPv4(_, let a): .v4(a)
        case .ipv6(let a, _), .vpnIPv6(_, let a, _, _): .v6(a)
        case .none, .raw: nil
        }
    }

    /// The usual next hop encoding for a family: with a zero RD for VPN families.
    public static func forFamily(_ family: AddressFamily, _ address: IPAddress) -> NextHop {
        let vpn = family.safi == .mplsVPN
        switch address {
        case .v4(let a): return vpn ? .vpnIPv4(RouteDistinguisher(rawValue: 0), a) : .ipv4(a)
        case .v6(let a): return vpn ? .vpnIPv6(RouteDistinguisher(rawValue: 0), a, linkLocal: nil) : .ipv6(a, linkLocal: nil)
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .ipv4(let a): a.description
        case .ipv6(let a, let ll): ll.map { "\(a) (\($0))" } ?? a.description
        case .vpnIPv4(_, let a): a.description
        case .vpnIPv6(_, let a, let ll, _): ll.map { "\(a) (\($0))" } ?? a.description
        case .raw(let bytes): "0x" + Hex.encode(bytes, uppercase: false)
        }
    }
}

/// RFC 4760 MP_REACH_NLRI.
public struct MPReachNLRI: Hashable, Sendable {
    public var nextHop: NextHop
    public var nlri: NLRIBlock
    public var family: AddressFamily { nlri.family }

    public init(nextHop: NextHop, nlri: NLRIBlock) {
        self.nextHop = nextHop
        self.nlri = nlri
    }
}

/// RFC 4760 MP_UNREACH_NLRI. An empty block is End-of-RIB for its family (RFC 4724 §2).
public struct MPUnreachNLRI: Hashable, Sendable {
    public var nlri: NLRIBlock
    public var family: AddressFamily { nlri.family }

    public init(nlri: NLRIBlock) { self.nlri = nlri }
}
