import BGPWire
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// RFC 4271 §6.8 collisions (decided by `ConnectionCollision`), outgoing connections, and what each
/// connection's handler reports: all on the peer's loop.
extension BGPPeer {
    /// A fresh connection id (any thread).
    func reserveConnectionID() -> Int { connectionIDs.withLockedValue { $0 += 1; return $0 } }

    /// Handlers for a connection, installed when it is created so that no byte is missed; they report
    /// to this peer under `id`.
    func handlers(connection id: Int) -> [any ChannelHandler] {
        [ByteToMessageHandler(BGPFrameDecoder()), BGPConnectionHandler(peer: self, connection: id)]
    }

    /// A connection the listener accepted from this peer's address. Its handlers are in place and its
    /// events queue behind this call on the peer's loop.
    func accepted(_ channel: any Channel, connection id: Int) {
        eventLoop.assertInEventLoop()
        switch ConnectionCollision.accept(
            ours: machine.state, oursHasPeer: machine.negotiated?.peerRouterID, localID: configuration.routerID, besideAlready: pending != nil,
            administrativelyDown: machine.administrativelyDown || machine.holdingDown)
        {
        case .adopt:
            self.channel?.close(promise: nil)
            adopt(channel, connection: id)
            handle(.tcpConnectionConfirmed)
        case .adoptFromIdle:
            logger.info("the peer connected while Idle: session restarting on its connection")
            adopt(channel, connection: id)
            handle(.passiveStart)
            handle(.tcpConnectionConfirmed)
        case .replaceOurs:
            handle(.openCollisionDump)
            adopt(channel, connection: id)
            handle(.passiveStart)
            handle(.tcpConnectionConfirmed)
        case .runBeside:
            logger.info("connection collision: the peer connected while ours is \(machine.state.rawValue); resolving when an OPEN arrives")
            pending = PendingConnection(machine: SessionStateMachine(configuration: configuration, randomSeed: UInt64.random(in: 0...UInt64.max)), channel: channel, id: id)
            runPending(.passiveStart)
            runPending(.tcpConnectionConfirmed)
        case .refuse(let reason):
            logger.info("\(reason)")
            channel.close(promise: nil)
        }
    }

    /// Drives the pending connection's state machine: sends and closes on its channel, timers noted.
    func runPending(_ event: SessionStateMachine.Event) {
        guard var p = pending else { return }
        let actions = p.machine.handle(event)
        for action in actions {
            switch action {
            case .send(let message):
                p.channel.writeAndFlush(message.encoded(context: p.machine.negotiated?.sendContext ?? .standard), promise: nil)
            case .closeConnection: p.channel.close(promise: nil)
            case .armTimer(let timer, let seconds): p.timers[timer] = seconds
            case .cancelTimer(let timer): p.timers[timer] = nil
            case .stateChanged(let from, let to, let reason): logger.debug("peer's connection: \(from.rawValue) -> \(to.rawValue): \(reason)")
            default: break
            }
        }
        pending = p
        switch p.machine.state {
        case .active, .openSent: break  // starting, or waiting for the peer's OPEN
        case .openConfirm: resolveCollision()
        default: pending = nil  // it failed or was dumped
        }
    }

    /// RFC 4271 §6.8, once the peer's identifier is known on either connection.
    func resolveCollision() {
        guard let p = pending else { return }
        switch ConnectionCollision.resolve(ours: machine.state, localID: configuration.routerID, remoteID: p.machine.negotiated?.peerRouterID ?? machine.negotiated?.peerRouterID) {
        case .wait: return
        case .keepOurs:
            logger.info("connection collision: our identifier is higher, keeping our connection")
            runPending(.openCollisionDump)
            pending = nil
        case .keepTheirs where machine.state != .openSent && machine.state != .openConfirm:
            // Ours is gone: the peer's connection is simply the session.
            promote(p)
        case .keepTheirs:
            logger.info("connection collision: the peer's identifier is higher, keeping its connection")
            pending = nil  // before dumping ours, so that the dump does not resolve this collision again
            handle(.openCollisionDump)
            promote(p)
        }
    }

    /// Makes the pending connection the session: its machine, channel and timers replace ours.
    func promote(_ p: PendingConnection) {
        pending = nil
        for timer in timers.keys { perform(.cancelTimer(timer)) }
        channel?.close(promise: nil)
        machine = p.machine
        channel = p.channel
        connectionID = p.id
        statistics.state = machine.state
        for (timer, seconds) in p.timers { perform(.armTimer(timer, seconds: seconds)) }
        if machine.state == .openConfirm, let session = machine.negotiated { logger.info("peer's connection kept: OpenConfirm, hold time \(session.holdTime) s") }
    }

    /// Frames and failures of the pending connection.
    func pendingEvent(_ frame: ByteBuffer?, lost: Bool = false) {
        guard let p = pending else { return }
        if lost { return runPending(.tcpConnectionFails) }
        guard let frame else { return }
        do {
            switch try BGPMessage.decode(frame, context: p.machine.negotiated?.receiveContext ?? .standard) {
            case .open(let open): runPending(.openReceived(open))
            case .keepalive: runPending(.keepaliveReceived)
            case .notification(let n): runPending(.notificationReceived(n))
            case .update(let u): runPending(.updateReceived(u))
            case .routeRefresh(let r): runPending(.routeRefreshReceived(r))
            }
        } catch {
            runPending(.decodingError(error))
        }
    }

    func adopt(_ channel: any Channel, connection id: Int) {
        connectionID = id
        self.channel = channel
    }

    func connect() {
        let id = reserveConnectionID()
        connectionID = id
        var bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(Int64(max(configuration.connectRetryTime, 3))))
            .channelInitializer { channel in
                let secured: EventLoopFuture<Void>
                if self.configuration.security.isEmpty {
                    secured = channel.eventLoop.makeSucceededVoidFuture()
                } else if let address = try? SocketAddress(ipAddress: self.remoteAddress, port: self.remotePort) {
                    secured = self.configuration.security.apply(peer: address, to: channel)
                } else {
                    secured = channel.eventLoop.makeFailedFuture(TransportSecurityError("peer address \(self.remoteAddress) is not an IP address"))
                }
                return secured.flatMapThrowing { try channel.pipeline.syncOperations.addHandlers(self.handlers(connection: id)) }
            }
        if let localAddress {
            guard let source = try? SocketAddress(ipAddress: localAddress, port: 0) else {
                logger.error("local address \(localAddress) is not an IP address")
                eventLoop.execute { self.connectionLost(id, reason: "bad local address") }
                return
            }
            bootstrap = bootstrap.bind(to: source)
        }
        bootstrap.connect(host: remoteAddress, port: remotePort).whenComplete { result in
            switch result {
            case .success(let channel):
                if id == self.connectionID { self.channel = channel } else { channel.close(promise: nil) }
            case .failure(let error):
                self.connectionLost(id, reason: "connect failed: \(error)")
            }
        }
    }

    func connectionUp(_ id: Int) {
        guard id == connectionID else { return }
        // Outgoing connections: the handler's channelActive is the "TCP connection confirmed" event.
        if machine.state == .connect || machine.state == .active { handle(.tcpConnectionConfirmed) }
    }

    func connectionLost(_ id: Int, reason: String) {
        if id == pending?.id { return pendingEvent(nil, lost: true) }
        guard id == connectionID, machine.state != .idle || channel != nil else { return }
        channel = nil
        logger.debug("connection lost: \(reason)")
        handle(.tcpConnectionFails)
    }

    func malformed(_ error: BGPDecodingError, connection id: Int) {
        if id == pending?.id { return runPending(.decodingError(error)) }
        guard id == connectionID else { return }
        handle(.decodingError(error))
    }

    func received(_ frame: ByteBuffer, connection id: Int) {
        if id == pending?.id { return pendingEvent(frame) }
        guard id == connectionID else { return }
        let context = machine.negotiated?.receiveContext ?? WireContext(externalPeer: !configuration.isInternal)
        let message: BGPMessage
        do {
            message = try BGPMessage.decode(frame, context: context)
        } catch {
            if case .treatAsWithdraw(let blocks) = error.handling {
                statistics.messagesReceived["update", default: 0] += 1
                logger.warning("UPDATE treated as withdraw (RFC 7606): \(error.reason)")
                handle(.updateTreatedAsWithdraw(blocks, reason: error.reason))
            } else {
                handle(.decodingError(error))
            }
            return
        }
        statistics.messagesReceived[message.typeName, default: 0] += 1
        switch message {
        case .open(let open): handle(.openReceived(open))
        case .keepalive: handle(.keepaliveReceived)
        case .update(let update):
            for discarded in update.discardedAttributes { logger.warning("attribute \(discarded.typeCode) discarded (RFC 7606): \(discarded.reason)") }
            handle(.updateReceived(update))
        case .notification(let n):
            logger.warning("NOTIFICATION received: \(n)")
            handle(.notificationReceived(n))
        case .routeRefresh(let r): handle(.routeRefreshReceived(r))
        }
    }
}
