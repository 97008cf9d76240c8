import NIOCore

/// RFC 4271 §4.5 error codes.
public struct NotificationCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let messageHeaderError = NotificationCode(rawValue: 1)
    public static let openMessageError = NotificationCode(rawValue: 2)
    public static let updateMessageError = NotificationCode(rawValue: 3)
    public static let holdTimerExpired = NotificationCode(rawValue: 4)
    public static let finiteStateMachineError = NotificationCode(rawValue: 5)
    public static let cease = NotificationCode(rawValue: 6)
    public static let routeRefreshMessageError = NotificationCode(rawValue: 7)

    static let names: [UInt8: String] = [
        1: "Message Header Error", 2: "OPEN Message Error", 3: "UPDATE Message Error", 4: "Hold Timer Expired",
        5: "Finite State Machine Error", 6: "Cease", 7: "ROUTE-REFRESH Message Error",
    ]
    public var description: String { Self.names[rawValue] ?? "code \(rawValue)" }
}

/// RFC 4271 §4.5 NOTIFICATION, with the RFC 9003 shutdown communication of Cease 2 and 4.
public struct NotificationMessage: Hashable, Sendable, CustomStringConvertible {
    public var code: NotificationCode
    public var subcode: UInt8
    public var data: [UInt8]

    public init(code: NotificationCode, subcode: UInt8, data: [UInt8] = []) {
        self.code = code
        self.subcode = subcode
        self.data = data
    }

    /// Cease with a shutdown communication (RFC 9003): up to 255 bytes of UTF-8, cut at a character boundary.
    public static func cease(subcode: UInt8, communication: String) -> NotificationMessage {
        var bytes = Array(communication.utf8.prefix(255))
        while String(validating: bytes, as: UTF8.self) == nil && !bytes.isEmpty { bytes.removeLast() }
        return NotificationMessage(code: .cease, subcode: subcode, data: [UInt8(bytes.count)] + bytes)
    }

    public enum CeaseSubcode {
        public static let maximumPrefixesReached: UInt8 = 1
        public static let administrativeShutdown: UInt8 = 2
        public static let peerDeconfigured: UInt8 = 3
        public static let administrativeReset: UInt8 = 4
        public static let connectionRejected: UInt8 = 5
        public static let otherConfigurationChange: UInt8 = 6
        public static let connectionCollisionResolution: UInt8 = 7
        public static let outOfResources: UInt8 = 8
        public static let hardReset: UInt8 = 9
        public static let bfdDown: UInt8 = 10
    }

    /// Cease / Hard Reset (RFC 8538): the peer must flush our routes, graceful restart or not.
    public var isHardReset: Bool { code == .cease && subcode == CeaseSubcode.hardReset }

    /// The RFC 9003 message, when this is Cease / administrative shutdown or reset and carries one.
    public var shutdownCommunication: String? {
        guard code == .cease, subcode == CeaseSubcode.administrativeShutdown || subcode == CeaseSubcode.administrativeReset,
            let length = data.first, Int(length) <= data.count - 1, length > 0
        else { return nil }
        return String(validating: data[1...Int(length)], as: UTF8.self)
    }

    static let subcodeNames: [UInt8: [UInt8: String]] = [
        1: [1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"],
        2: [
            1: "Unsupported Version Number", 2: "Bad Peer AS", 3: "Bad BGP Identifier", 4: "Unsupported Optional Parameter",
            6: "Unacceptable Hold Time", 7: "Unsupported Capability", 8: "Role Mismatch",
        ],
        3: [
            1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute", 3: "Missing Well-known Attribute",
            4: "Attribute Flags Error", 5: "Attribute Length Error", 6: "Invalid ORIGIN Attribute", 8: "Invalid NEXT_HOP Attribute",
            9: "Optional Attribute Error", 10: "Invalid Network Field", 11: "Malformed AS_PATH",
        ],
        5: [1: "Unexpected Message in OpenSent", 2: "Unexpected Message in OpenConfirm", 3: "Unexpected Message in Established"],
        6: [
            1: "Maximum Number of Prefixes Reached", 2: "Administrative Shutdown", 3: "Peer De-configured", 4: "Administrative Reset",
            5: "Connection Rejected", 6: "Other Configuration Change", 7: "Connection Collision Resolution", 8: "Out of Resources",
            9: "Hard Reset", 10: "BFD Down",
        ],
        7: [1: "Invalid Message Length"],
    ]

    public var subcodeName: String {
        if subcode == 0 { return "Unspecific" }
        return Self.subcodeNames[code.rawValue]?[subcode] ?? "subcode \(subcode)"
    }

    public var description: String {
        var s = "\(code)/\(subcodeName) (\(code.rawValue)/\(subcode))"
        if let text = shutdownCommunication { s += ": \"\(text)\"" } else if !data.isEmpty { s += " data " + Hex.encode(data) }
        return s
    }

    static func decode(body: ByteBuffer) throws(BGPDecodingError) -> NotificationMessage {
        var b = body
        guard let code = b.readInteger(as: UInt8.self), let subcode = b.readInteger(as: UInt8.self) else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(body.readableBytes + 19)), "NOTIFICATION shorter than 21 bytes")
        }
        return NotificationMessage(code: NotificationCode(rawValue: code), subcode: subcode, data: b.readBytes(length: b.readableBytes) ?? [])
    }

    func writeBody(to buffer: inout ByteBuffer) {
        buffer.writeInteger(code.rawValue)
        buffer.writeInteger(subcode)
        buffer.writeBytes(data)
    }
}

/// RFC 2918 ROUTE-REFRESH with the RFC 7313 subtypes.
public struct RouteRefreshMessage: Hashable, Sendable {
    public enum Subtype: UInt8, Hashable, Sendable {
        case request = 0
        case beginningOfRouteRefresh = 1
        case endOfRouteRefresh = 2
    }
    public var family: AddressFamily
    /// The raw subtype byte (0 request, 1 BoRR, 2 EoRR, others reserved).
    public var subtypeValue: UInt8
    /// RFC 5291 ORF entries of a request, kept as bytes.
    public var orfData: [UInt8]

    public init(family: AddressFamily, subtype: Subtype = .request, orfData: [UInt8] = []) {
        self.family = family
        subtypeValue = subtype.rawValue
        self.orfData = orfData
    }

    public var subtype: Subtype? { Subtype(rawValue: subtypeValue) }

    static func decode(body: ByteBuffer) throws(BGPDecodingError) -> RouteRefreshMessage {
        var b = body
        guard let afi = b.readInteger(as: UInt16.self), let subtype = b.readInteger(as: UInt8.self),
            let safi = b.readInteger(as: UInt8.self)
        else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(body.readableBytes + 19)), "ROUTE-REFRESH shorter than 23 bytes")
        }
        // RFC 7313 §5: BoRR and EoRR carry nothing after the family.
        if (subtype == 1 || subtype == 2) && b.readableBytes != 0 {
            throw .reset(.routeRefreshMessageError, ErrorSubcode.invalidRouteRefreshLength, data: Array(body.readableBytesView),
                "BoRR/EoRR with \(b.readableBytes) extra bytes")
        }
        var message = RouteRefreshMessage(family: AddressFamily(afi: afi, safi: safi), orfData: b.readBytes(length: b.readableBytes) ?? [])
        message.subtypeValue = subtype
        return message
    }

    func writeBody(to buffer: inout ByteBuffer) {
        buffer.writeInteger(family.afi.rawValue)
        buffer.writeInteger(subtypeValue)
        buffer.writeInteger(family.safi.rawValue)
        buffer.writeBytes(orfData)
    }
}
