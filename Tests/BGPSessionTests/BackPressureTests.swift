import BGPSession
import BGPWire
import BagpipeLab
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A peer that reads nothing: our speaker must stop writing when the socket is full (memory bounded by
/// routes, not by queued messages), and finish once the peer reads again.
@Suite(.serialized) struct BackPressureTests {
    /// A minimal BGP peer: answers the OPEN, then counts UPDATEs, reading only when told to.
    final class SlowPeer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private var buffer = ByteBuffer()
        private let lock = NIOLock()
        private var _updates = 0
        private var _routes = 0
        private var opened = false
        var updates: Int { lock.withLock { _updates } }
        var routes: Int { lock.withLock { _routes } }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            while let length = try? BGPMessage.nextMessageLength(in: buffer, context: WireContext(maxMessageSize: 65535)), buffer.readableBytes >= length {
                let type = buffer.getInteger(at: buffer.readerIndex + 18, as: UInt8.self)
                let message = buffer.readSlice(length: length)
                if type == BGPMessage.MessageType.open && !opened {
                    opened = true
                    let open = OpenMessage(asn: 64512, holdTime: 180, bgpIdentifier: IPv4Address(192, 0, 2, 1), capabilities: [.multiprotocol(.ipv4VPN)])
                    context.write(wrapOutboundOut(BGPMessage.open(open).encoded()), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(BGPMessage.keepalive.encoded()), promise: nil)
                    // From now on read only when the test says so.
                    context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
                } else if type == BGPMessage.MessageType.update, let message,
                    case .update(let update)? = try? BGPMessage.decode(message, context: WireContext(maxMessageSize: 65535))
                {
                    let n = update.announced.reduce(0) { $0 + $1.count }
                    lock.withLock {
                        _updates += 1
                        _routes += n
                    }
                }
            }
            buffer.discardReadBytes()
        }
        typealias OutboundOut = ByteBuffer
    }

    @Test func aPeerThatDoesNotReadDoesNotMakeUsBuffer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let slow = SlowPeer()
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                ChildHolder.channel = channel
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(slow) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let peer = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: [.ipv4VPN], holdTime: 180),
            remoteAddress: "127.0.0.1", remotePort: server.localAddress?.port ?? 0, eventLoop: group.next())
        peer.start()
        do {
            let up = try await eventually { try await peer.state().get() == .established }
            #expect(up)
            // 1,000,000 routes: about 4,000 UPDATEs, 16 MB.
            let routes = vpnRoutesWide(1_000_000)
            peer.announce(routes, family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 2))), attributes: baseAttributes)
            // Writing stops once the socket and NIO's buffer are full: the count settles well below the total.
            var last = -1
            let settled = try await eventually(timeout: 90) {
                let sent = try await peer.currentStatistics().get().messagesSent["update", default: 0]
                defer { last = sent }
                return sent > 0 && sent == last
            }
            #expect(settled)
            let stalled = try await peer.currentStatistics().get().messagesSent["update", default: 0]
            #expect(stalled < 3000, "wrote \(stalled) UPDATEs to a peer that reads nothing")
            // The peer reads again: everything arrives.
            let child = try await waitForChild(server)
            try await child.setOption(.autoRead, value: true).get()
            child.read()
            let all = try await eventually(timeout: 60) { slow.routes == routes.count }
            print("back-pressure: \(stalled) UPDATEs written while the peer read nothing, \(slow.updates) once it read")
            #expect(all, "received \(slow.routes) routes")
            let delivered = try await eventually { try await peer.currentStatistics().get().messagesSent["update", default: 0] == slow.updates }
            #expect(delivered, "every UPDATE sent (End-of-RIB included) arrived")
        } catch { Issue.record("\(error)") }
        peer.stop()
        try await server.close().get()
        try await group.shutdownGracefully()
    }

    /// The accepted connection of `server` (the test has only one).
    func waitForChild(_ server: any Channel) async throws -> any Channel {
        try #require(ChildHolder.channel)
    }
}

enum ChildHolder {
    nonisolated(unsafe) static var channel: (any Channel)?
}

func vpnRoutesWide(_ n: Int) -> [NLRIElement] {
    (0..<n).map { i in
        NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [100]), routeDistinguisher: .as2(64512, UInt32(i % 1000)), prefix: IPPrefix(.v4(IPv4Address(UInt32(0x0A00_0000 + i))), length: 32))))
    }
}
