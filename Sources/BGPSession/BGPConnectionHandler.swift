import BGPWire
import NIOCore

/// Splits a TCP stream into BGP messages. Framing accepts up to 65535 bytes; the negotiated size is
/// enforced when each message is decoded.
struct BGPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = try BGPMessage.nextMessageLength(in: buffer, context: WireContext(maxMessageSize: WireContext.maximumExtendedMessageSize)),
            let frame = buffer.readSlice(length: length)
        else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

/// Feeds one connection's bytes and events to its peer. A peer ignores events from connections it has
/// closed (they carry an old id).
final class BGPConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let peer: BGPPeer
    let connection: Int

    init(peer: BGPPeer, connection: Int) {
        self.peer = peer
        self.connection = connection
    }

    // The channel may live on another event loop than the peer: every call hops to the peer's loop,
    // in order.
    func channelActive(context: ChannelHandlerContext) {
        let (peer, connection) = (self.peer, self.connection)
        peer.eventLoop.execute { peer.connectionUp(connection) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (peer, connection) = (self.peer, self.connection)
        let frame = unwrapInboundIn(data)
        peer.eventLoop.execute { peer.received(frame, connection: connection) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let (peer, connection, writable) = (self.peer, self.connection, context.channel.isWritable)
        if writable { peer.eventLoop.execute { peer.writable(connection) } }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let (peer, connection) = (self.peer, self.connection)
        peer.eventLoop.execute { peer.connectionLost(connection, reason: "connection closed by the peer") }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let (peer, connection) = (self.peer, self.connection)
        if let decoding = error as? BGPDecodingError {
            peer.eventLoop.execute { peer.malformed(decoding, connection: connection) }
        } else {
            let reason = "\(error)"
            peer.eventLoop.execute { peer.connectionLost(connection, reason: reason) }
        }
        context.close(promise: nil)
    }
}
