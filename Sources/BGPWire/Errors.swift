/// What RFC 7606 requires of the receiver when an UPDATE (or any message) is malformed.
public enum ErrorHandling: Hashable, Sendable {
    /// Close the session after sending this NOTIFICATION.
    case sessionReset(NotificationMessage)
    /// Keep the session; withdraw every NLRI the message carried (RFC 7606 §2).
    case treatAsWithdraw(withdrawn: [NLRIBlock])
    /// Keep the session and the routes; drop the attribute (RFC 7606 §2).
    case attributeDiscard(typeCode: UInt8)

    /// "session-reset", "treat-as-withdraw" or "attribute-discard".
    public var name: String {
        switch self {
        case .sessionReset: "session-reset"
        case .treatAsWithdraw: "treat-as-withdraw"
        case .attributeDiscard: "attribute-discard"
        }
    }

    /// Ordering by severity: reset > treat-as-withdraw > discard.
    var severity: Int {
        switch self {
        case .sessionReset: 3
        case .treatAsWithdraw: 2
        case .attributeDiscard: 1
        }
    }
}

/// A malformed message, with the reason and what the receiver must do about it.
public struct BGPDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var handling: ErrorHandling
    public var reason: String

    public init(_ handling: ErrorHandling, _ reason: String) {
        self.handling = handling
        self.reason = reason
    }

    public var description: String { "\(handling.name): \(reason)" }

    /// A session reset with the given NOTIFICATION code, subcode and data.
    static func reset(_ code: NotificationCode, _ subcode: UInt8, data: [UInt8] = [], _ reason: String) -> Self {
        Self(.sessionReset(NotificationMessage(code: code, subcode: subcode, data: data)), reason)
    }

    /// The message header is broken (RFC 4271 §6.1): Message Header Error.
    static func header(_ subcode: UInt8, data: [UInt8] = [], _ reason: String) -> Self {
        reset(.messageHeaderError, subcode, data: data, reason)
    }

    static func open(_ subcode: UInt8, data: [UInt8] = [], _ reason: String) -> Self {
        reset(.openMessageError, subcode, data: data, reason)
    }

    static func update(_ subcode: UInt8, data: [UInt8] = [], _ reason: String) -> Self {
        reset(.updateMessageError, subcode, data: data, reason)
    }
}

/// Subcodes used with the codes above (RFC 4271 §4.5, RFC 7313).
public enum ErrorSubcode {
    public static let connectionNotSynchronized: UInt8 = 1
    public static let badMessageLength: UInt8 = 2
    public static let badMessageType: UInt8 = 3

    public static let unsupportedVersion: UInt8 = 1
    public static let badPeerAS: UInt8 = 2
    public static let badBGPIdentifier: UInt8 = 3
    public static let unsupportedOptionalParameter: UInt8 = 4
    public static let unacceptableHoldTime: UInt8 = 6
    public static let unsupportedCapability: UInt8 = 7

    public static let malformedAttributeList: UInt8 = 1
    public static let unrecognizedWellKnownAttribute: UInt8 = 2
    public static let missingWellKnownAttribute: UInt8 = 3
    public static let attributeFlagsError: UInt8 = 4
    public static let attributeLengthError: UInt8 = 5
    public static let invalidOriginAttribute: UInt8 = 6
    public static let invalidNextHopAttribute: UInt8 = 8
    public static let optionalAttributeError: UInt8 = 9
    public static let invalidNetworkField: UInt8 = 10
    public static let malformedASPath: UInt8 = 11

    public static let invalidRouteRefreshLength: UInt8 = 1
}

/// Thrown by low-level readers; the caller decides the RFC 7606 class from where it happened.
struct TruncatedInput: Error {}
struct MalformedField: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}
