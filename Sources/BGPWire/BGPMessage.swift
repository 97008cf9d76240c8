import NIOCore

/// A BGP message (RFC 4271 §4).
public enum BGPMessage: Hashable, Sendable {
    case open(OpenMessage)
    case update(UpdateMessage)
    case notification(NotificationMessage)
    case keepalive
    case routeRefresh(RouteRefreshMessage)

    public static let headerLength = 19
    public static let minimumUpdateLength = 23

    public enum MessageType {
        public static let open: UInt8 = 1
        public static let update: UInt8 = 2
        public static let notification: UInt8 = 3
        public static let keepalive: UInt8 = 4
        public static let routeRefresh: UInt8 = 5
    }

    public var type: UInt8 {
        switch self {
        case .open: MessageType.open
        case .update: MessageType.update
        case .notification: MessageType.notification
        case .keepalive: MessageType.keepalive
        case .routeRefresh: MessageType.routeRefresh
        }
    }

    public var typeName: String { Self.typeName(type) }

    public static func typeName(_ type: UInt8) -> String {
        switch type {
        case MessageType.open: "open"
        case MessageType.update: "update"
        case MessageType.notification: "notification"
        case MessageType.keepalive: "keepalive"
        case MessageType.routeRefresh: "route-refresh"
        default: "type-\(type)"
        }
    }

    // MARK: Framing

    /// Checks the header at the reader index of a stream buffer and returns the length of the next
    /// message, or nil when fewer than 19 bytes are there. Throws Message Header Error (RFC 4271 §6.1)
    /// for a bad marker, length or type.
    public static func nextMessageLength(in buffer: ByteBuffer, context: WireContext = .standard) throws(BGPDecodingError) -> Int? {
        guard buffer.readableBytes >= headerLength else { return nil }
        let start = buffer.readerIndex
        guard buffer.getInteger(at: start, as: UInt64.self) == .max, buffer.getInteger(at: start + 8, as: UInt64.self) == .max else {
            throw .header(ErrorSubcode.connectionNotSynchronized, "marker is not all ones")
        }
        guard let rawLength = buffer.getInteger(at: start + 16, as: UInt16.self),
            let type = buffer.getInteger(at: start + 18, as: UInt8.self)
        else { return nil }
        let length = Int(rawLength)
        let minimum: Int
        switch type {
        case MessageType.open: minimum = 29
        case MessageType.update: minimum = minimumUpdateLength
        case MessageType.notification: minimum = 21
        case MessageType.keepalive: minimum = headerLength
        case MessageType.routeRefresh: minimum = 23
        default: throw .header(ErrorSubcode.badMessageType, data: [type], "message type \(type) is unknown")
        }
        // OPEN and KEEPALIVE never need more than 4096 bytes (RFC 8654 §4).
        let maximum = type == MessageType.keepalive ? headerLength : (type == MessageType.open ? 4096 : context.maxMessageSize)
        guard length >= minimum && length <= maximum else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(length)), "\(typeName(type)) length \(length) is outside \(minimum)...\(maximum)")
        }
        return length
    }

    /// Reads one whole message from a stream buffer; nil (and nothing consumed) when it is not all there yet.
    public static func read(from buffer: inout ByteBuffer, context: WireContext = .standard) throws(BGPDecodingError) -> BGPMessage? {
        guard let length = try nextMessageLength(in: buffer, context: context), buffer.readableBytes >= length else { return nil }
        guard let message = buffer.readSlice(length: length) else { return nil }
        return try decode(message, context: context)
    }

    /// Decodes exactly one message, header included.
    public static func decode(_ message: ByteBuffer, context: WireContext = .standard) throws(BGPDecodingError) -> BGPMessage {
        guard let length = try nextMessageLength(in: message, context: context) else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(message.readableBytes)), "message shorter than its 19-byte header")
        }
        guard length == message.readableBytes else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(length)),
                "length field \(length) does not match the \(message.readableBytes) bytes of the message")
        }
        guard let type = message.getInteger(at: message.readerIndex + 18, as: UInt8.self),
            let body = message.getSlice(at: message.readerIndex + headerLength, length: length - headerLength)
        else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(length)), "message shorter than its header")
        }
        switch type {
        case MessageType.open: return .open(try OpenMessage.decode(body: body))
        case MessageType.update: return .update(try UpdateMessage.decode(body: body, context: context))
        case MessageType.notification: return .notification(try NotificationMessage.decode(body: body))
        case MessageType.keepalive: return .keepalive
        default: return .routeRefresh(try RouteRefreshMessage.decode(body: body))
        }
    }

    /// Decodes a message given as bytes.
    public static func decode(bytes: [UInt8], context: WireContext = .standard) throws(BGPDecodingError) -> BGPMessage {
        try decode(ByteBuffer(bytes: bytes), context: context)
    }

    // MARK: Encoding

    /// Appends the encoded message. Encoding is deterministic: the same value gives the same bytes.
    public func write(to buffer: inout ByteBuffer, context: WireContext = .standard) {
        let start = buffer.writerIndex
        buffer.writeInteger(UInt64.max)
        buffer.writeInteger(UInt64.max)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(type)
        switch self {
        case .open(let m): m.writeBody(to: &buffer)
        case .update(let m): m.writeBody(context: context, to: &buffer)
        case .notification(let m): m.writeBody(to: &buffer)
        case .keepalive: break
        case .routeRefresh(let m): m.writeBody(to: &buffer)
        }
        buffer.setInteger(UInt16(truncatingIfNeeded: buffer.writerIndex - start), at: start + 16)
    }

    public func encoded(context: WireContext = .standard) -> ByteBuffer {
        var buffer = ByteBuffer()
        write(to: &buffer, context: context)
        return buffer
    }

    public func encodedBytes(context: WireContext = .standard) -> [UInt8] { Array(encoded(context: context).readableBytesView) }
}
