import BGPWire
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix


public struct PeerNotEstablished: Error, CustomStringConvertible {
    public var description: String { "the session is not established" }
}

/// Listens for BGP connections and hands each to its configured peer; others are closed and logged.
public final class BGPListener: Sendable {
    public let channel: any Channel

    public static func listen(
        host: String, port: Int, group: any EventLoopGroup, peers: [String: BGPPeer], logger: Logger = Logger(label: "bagpipe.bgp.listener")
    ) -> EventLoopFuture<BGPListener> {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                // MD5 keys live on the listening socket, one per peer; accepted sockets inherit them.
                var future = channel.eventLoop.makeSucceededVoidFuture()
                for (address, peer) in peers {
                    guard let password = peer.configuration.security.md5Password, let peerAddress = try? SocketAddress(ipAddress: address, port: 0) else { continue }
                    future = future.flatMap { TransportSecurity.setMD5(password, peer: peerAddress, on: channel) }
                }
                return future
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? "?"
                guard let peer = peers[address] else {
                    logger.warning("connection from \(address), which is not a configured peer: closed")
                    return channel.close()
                }
                let id = peer.reserveConnectionID()
                var security = peer.configuration.security
                security.md5Password = nil  // already on the listening socket
                let secured: EventLoopFuture<Void>
                if let remote = channel.remoteAddress, !security.isEmpty {
                    secured = security.apply(peer: remote, to: channel)
                } else {
                    secured = channel.eventLoop.makeSucceededVoidFuture()
                }
                return secured.flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandlers(peer.handlers(connection: id))
                    peer.eventLoop.execute { peer.accepted(channel, connection: id) }
                }
            }
            .bind(host: host, port: port)
            .map { BGPListener(channel: $0) }
    }

    init(channel: any Channel) { self.channel = channel }

    public var port: Int? { channel.localAddress?.port }

    public func close() -> EventLoopFuture<Void> { channel.close() }
}
