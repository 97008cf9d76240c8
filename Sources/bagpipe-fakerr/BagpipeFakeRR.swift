import ArgumentParser
import Logging
import NIOCore
import NIOPosix

/// The original's `bagpipe-fakerr`: not a BGP speaker but a TCP relay between exactly two clients,
/// which then peer with each other (same AS, different router ids). The first client's bytes wait
/// until the second connects; a third connection resets everybody; a disconnect closes the other side.
@main
struct BagpipeFakeRR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-fakerr",
        abstract: "Relay BGP between two bagpipe-bgp instances (the original's fake route reflector).",
        discussion: "For two hosts only. With more, run bagpipe-bgp as a route reflector (route_reflector = True).")

    @Option(help: "Address to listen on.") var host = "0.0.0.0"
    @Option(help: "TCP port to listen on.") var port = 179

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "bagpipe.fakerr")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let relay = Relay(logger: logger)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RelayHandler(relay: relay)) }
            }
            .bind(host: host, port: port).wait()
        logger.notice("relaying between two BGP clients on \(host) port \(channel.localAddress?.port ?? port)")
        try channel.closeFuture.wait()
    }
}

/// The two connections and the bytes waiting for the second. Touched only on the one event loop.
final class Relay: @unchecked Sendable {
    let logger: Logger
    private var clients: [any Channel] = []
    private var waiting: [ByteBuffer] = []

    init(logger: Logger) { self.logger = logger }

    func connected(_ channel: any Channel) {
        let address = channel.remoteAddress?.description ?? "?"
        if clients.count >= 2 {
            logger.warning("third connection from \(address): resetting everybody")
            reset()
            channel.close(promise: nil)
            return
        }
        clients.append(channel)
        logger.info("client \(clients.count) connected from \(address)")
        if clients.count == 2 {
            for buffer in waiting { channel.write(buffer, promise: nil) }
            channel.flush()
            waiting = []
        }
    }

    func received(_ buffer: ByteBuffer, from channel: any Channel) {
        guard let other = clients.first(where: { $0 !== channel }) else {
            if clients.count == 1 && clients[0] === channel { waiting.append(buffer) }
            return
        }
        other.writeAndFlush(buffer, promise: nil)
    }

    func closed(_ channel: any Channel) {
        guard clients.contains(where: { $0 === channel }) else { return }
        logger.info("client \(channel.remoteAddress?.description ?? "?") disconnected: closing the other side")
        reset()
    }

    private func reset() {
        let all = clients
        clients = []
        waiting = []
        for c in all { c.close(promise: nil) }
    }
}

final class RelayHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let relay: Relay

    init(relay: Relay) { self.relay = relay }

    func channelActive(context: ChannelHandlerContext) {
        relay.connected(context.channel)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.received(unwrapInboundIn(data), from: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay.closed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
