import NIOCore

/// RFC 5492 capabilities advertised in OPEN.
public enum Capability: Hashable, Sendable {
    /// RFC 4760 (code 1).
    case multiprotocol(AddressFamily)
    /// RFC 2918 (code 2).
    case routeRefresh
    /// RFC 8950 (code 5): (NLRI family, next-hop AFI) pairs.
    case extendedNextHop([ExtendedNextHopEntry])
    /// RFC 8654 (code 6).
    case extendedMessage
    /// RFC 4724 (code 64).
    case gracefulRestart(GracefulRestartCapability)
    /// RFC 6793 (code 65).
    case fourOctetAS(UInt32)
    /// RFC 7911 (code 69).
    case addPath([AddPathEntry])
    /// RFC 7313 (code 70).
    case enhancedRouteRefresh
    /// Anything else (FQDN, LLGR, the pre-standard route refresh 128 …), kept as bytes.
    case unknown(code: UInt8, value: [UInt8])

    public enum Code {
        public static let multiprotocol: UInt8 = 1
        public static let routeRefresh: UInt8 = 2
        public static let extendedNextHop: UInt8 = 5
        public static let extendedMessage: UInt8 = 6
        public static let gracefulRestart: UInt8 = 64
        public static let fourOctetAS: UInt8 = 65
        public static let addPath: UInt8 = 69
        public static let enhancedRouteRefresh: UInt8 = 70
    }

    public var code: UInt8 {
        switch self {
        case .multiprotocol: Code.multiprotocol
        case .routeRefresh: Code.routeRefresh
        case .extendedNextHop: Code.extendedNextHop
        case .extendedMessage: Code.extendedMessage
        case .gracefulRestart: Code.gracefulRestart
        case .fourOctetAS: Code.fourOctetAS
        case .addPath: Code.addPath
        case .enhancedRouteRefresh: Code.enhancedRouteRefresh
        case .unknown(let code, _): code
        }
    }

    static func decode(code: UInt8, value: ByteBuffer) throws -> Capability {
        var b = value
        let length = b.readableBytes
        func require(_ ok: Bool) throws {
            guard ok else { throw MalformedField("capability \(code) has invalid length \(length)") }
        }
        switch code {
        case Code.multiprotocol:
            try require(length == 4)
            let afi = try b.readU16()
            _ = try b.readU8()
            return .multiprotocol(AddressFamily(afi: afi, safi: try b.readU8()))
        case Code.routeRefresh:
            try require(length == 0)
            return .routeRefresh
        case Code.extendedNextHop:
            try require(length % 6 == 0)
            var entries: [ExtendedNextHopEntry] = []
            while b.readableBytes > 0 {
                let afi = try b.readU16()
                let safi = try b.readU16()
                entries.append(ExtendedNextHopEntry(family: AddressFamily(afi: afi, safi: UInt8(truncatingIfNeeded: safi)), nextHopAFI: AFI(rawValue: try b.readU16())))
            }
            return .extendedNextHop(entries)
        case Code.extendedMessage:
            try require(length == 0)
            return .extendedMessage
        case Code.gracefulRestart:
            try require(length >= 2 && (length - 2) % 4 == 0)
            let header = try b.readU16()
            var families: [GracefulRestartCapability.Family] = []
            while b.readableBytes > 0 {
                let afi = try b.readU16()
                let safi = try b.readU8()
                families.append(.init(family: AddressFamily(afi: afi, safi: safi), flags: try b.readU8()))
            }
            return .gracefulRestart(GracefulRestartCapability(flags: UInt8(header >> 12), restartTime: header & 0x0FFF, families: families))
        case Code.fourOctetAS:
            try require(length == 4)
            return .fourOctetAS(try b.readU32())
        case Code.addPath:
            try require(length % 4 == 0)
            var entries: [AddPathEntry] = []
            while b.readableBytes > 0 {
                let afi = try b.readU16()
                let safi = try b.readU8()
                entries.append(AddPathEntry(family: AddressFamily(afi: afi, safi: safi), mode: AddPathEntry.Mode(rawValue: try b.readU8())))
            }
            return .addPath(entries)
        case Code.enhancedRouteRefresh:
            try require(length == 0)
            return .enhancedRouteRefresh
        default:
            return .unknown(code: code, value: try b.readByteArray(length))
        }
    }

    func writeValue(to buffer: inout ByteBuffer) {
        switch self {
        case .multiprotocol(let f):
            buffer.writeInteger(f.afi.rawValue)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(f.safi.rawValue)
        case .routeRefresh, .extendedMessage, .enhancedRouteRefresh: break
        case .extendedNextHop(let entries):
            for e in entries {
                buffer.writeInteger(e.family.afi.rawValue)
                buffer.writeInteger(UInt16(e.family.safi.rawValue))
                buffer.writeInteger(e.nextHopAFI.rawValue)
            }
        case .gracefulRestart(let gr):
            buffer.writeInteger(UInt16(gr.flags & 0x0F) << 12 | gr.restartTime & 0x0FFF)
            for f in gr.families {
                buffer.writeInteger(f.family.afi.rawValue)
                buffer.writeInteger(f.family.safi.rawValue)
                buffer.writeInteger(f.flags)
            }
        case .fourOctetAS(let asn): buffer.writeInteger(asn)
        case .addPath(let entries):
            for e in entries {
                buffer.writeInteger(e.family.afi.rawValue)
                buffer.writeInteger(e.family.safi.rawValue)
                buffer.writeInteger(e.mode.rawValue)
            }
        case .unknown(_, let value): buffer.writeBytes(value)
        }
    }
}

public struct ExtendedNextHopEntry: Hashable, Sendable {
    public var family: AddressFamily
    public var nextHopAFI: AFI
    public init(family: AddressFamily, nextHopAFI: AFI) {
        self.family = family
        self.nextHopAFI = nextHopAFI
    }
}

public struct AddPathEntry: Hashable, Sendable {
    public struct Mode: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let receive = Mode(rawValue: 1)
        public static let send = Mode(rawValue: 2)
        public static let both: Mode = [.receive, .send]
    }
    public var family: AddressFamily
    public var mode: Mode
    public init(family: AddressFamily, mode: Mode) {
        self.family = family
        self.mode = mode
    }
}

/// RFC 4724 §3: restart flags (R = 0x8, and N = 0x4 of RFC 8538), restart time in seconds, and
/// per family the forwarding-state flag (F = 0x80).
public struct GracefulRestartCapability: Hashable, Sendable {
    public struct Family: Hashable, Sendable {
        public var family: AddressFamily
        public var flags: UInt8
        public init(family: AddressFamily, flags: UInt8) {
            self.family = family
            self.flags = flags
        }
        public var forwardingStatePreserved: Bool { flags & 0x80 != 0 }
    }
    public var flags: UInt8
    public var restartTime: UInt16
    public var families: [Family]

    public init(flags: UInt8 = 0, restartTime: UInt16, families: [Family]) {
        self.flags = flags & 0x0F
        self.restartTime = restartTime & 0x0FFF
        self.families = families
    }

    public var restartState: Bool { flags & 0x8 != 0 }
    public var notificationSupport: Bool { flags & 0x4 != 0 }
}
