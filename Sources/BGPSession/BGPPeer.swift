import BGPWire
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

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

/// Counters and state for the looking glass and metrics.
public struct PeerStatistics: Hashable, Sendable {
    public var state: SessionStateMachine.State = .idle
    public var lastStateChange: NIODeadline = .now()
    /// The state before the last change, and the wall-clock time of that change (seconds since 1970).
    public var previousState: SessionStateMachine.State?
    public var lastStateChangeWallClock: Double = 0
    public var establishedSince: NIODeadline?
    public var messagesReceived: [String: Int] = [:]
    public var messagesSent: [String: Int] = [:]
    public var lastNotificationSent: NotificationMessage?
    public var lastNotificationReceived: NotificationMessage?
    public var lastDownReason: String?
}

/// What to send a peer, when something other than the peer's own Adj-RIB-Out decides (the route
/// engine, which keeps one Loc-RIB for all peers instead of a copy per peer). Called on the peer's
/// event loop, when its socket can take more.
public protocol OutboundRoutes: AnyObject {
    /// The next UPDATE content, or nil when nothing is pending.
    func takePending(limit: Int) -> (family: AddressFamily, announce: [(AttributeSet, [NLRIElement])], withdraw: [NLRIElement])?
    var hasPending: Bool { get }
    /// Everything of these families is to be sent again (the peer asked for a route refresh).
    func resend(_ families: [AddressFamily])
    /// The next UPDATEs already encoded for this context (a provider may share encodings between
    /// peers); by default, `takePending` encoded here.
    func takeEncoded(limit: Int, context: WireContext) -> (family: AddressFamily, messages: [ByteBuffer])?
}

extension OutboundRoutes {
    public func takeEncoded(limit: Int, context: WireContext) -> (family: AddressFamily, messages: [ByteBuffer])? {
        guard let batch = takePending(limit: limit) else { return nil }
        return (batch.family, UpdateBuilder(context: context).messages(announcing: batch.announce, withdrawing: batch.withdraw, family: batch.family))
    }
}

extension UpdateBuilder {
    /// UPDATEs announcing routes grouped by attribute set, then withdrawing others.
    public func messages(announcing groups: [(AttributeSet, [NLRIElement])], withdrawing withdraw: [NLRIElement], family: AddressFamily) -> [ByteBuffer] {
        var messages: [ByteBuffer] = []
        for (set, elements) in groups {
            announce(elements, family: family, nextHop: set.nextHop, attributes: set.attributes) { messages.append($0) }
        }
        if !withdraw.isEmpty { messages += self.withdraw(withdraw, family: family) }
        return messages
    }
}

/// One configured peer: the RFC 4271 state machine plus the I/O that carries out its actions.
/// Everything runs on the peer's event loop.
public final class BGPPeer: @unchecked Sendable {
    public let remoteAddress: String
    public let remotePort: Int
    public let localAddress: String?
    public let eventLoop: any EventLoop
    public let logger: Logger

    /// Called on the event loop. Set them before `start()`.
    public var onEstablished: (NegotiatedSession) -> Void = { _ in }
    public var onUpdate: (UpdateMessage) -> Void = { _ in }
    /// What changed in the Adj-RIB-In (announces, replacements, withdraws; stale routes swept).
    /// Nil: not computed at all (a peer that keeps no Adj-RIB-In and whose owner reads `onUpdate`).
    public var onRoutes: ((AddressFamily, [RouteChange]) -> Void)?
    /// The peer finished its initial advertisement of a family (RFC 4724 End-of-RIB).
    public var onEndOfRIB: (AddressFamily) -> Void = { _ in }
    public var onWithdrawals: ([NLRIBlock], String) -> Void = { _, _ in }
    public var onRouteRefresh: (RouteRefreshMessage) -> Void = { _ in }
    public var onDown: (String) -> Void = { _ in }
    public var onStateChange: (SessionStateMachine.State) -> Void = { _ in }

    private var machine: SessionStateMachine
    private var channel: (any Channel)?
    /// The connection whose events count; others are stale. Ids come from `reserveConnectionID`.
    private var connectionID = 0
    private let connectionIDs = NIOLockedValueBox(0)
    private var timers: [SessionStateMachine.Timer: Scheduled<Void>] = [:]
    private var statistics = PeerStatistics()
    private var ribIn = AdjRIBIn()
    private var ribOut = AdjRIBOut()
    /// False: keep no Adj-RIB-In (as BIRD without an import table). `onRoutes` reports every announce
    /// and withdraw as received, and the owner, which stores the routes, drops them itself on `onDown`.
    /// Graceful-restart helper mode and the maximum-prefix limits need the Adj-RIB-In and are off.
    public var keepsAdjRIBIn = true
    /// Set before `start()` to take outbound routes from elsewhere than `announce`/`withdraw`.
    public var outbound: (any OutboundRoutes)?
    /// Families whose initial advertisement ends with End-of-RIB, and refreshes that end with EoRR.
    private var endOfRIBDue: Set<AddressFamily> = []
    private var endOfRefreshDue: Set<AddressFamily> = []
    private var warnedPrefixes: Set<AddressFamily> = []
    /// Graceful restart of the peer (RFC 4724): routes kept stale until this timer or its End-of-RIB.
    private var staleTimer: Scheduled<Void>?

    /// RFC 4271 §6.8: the peer's connection, accepted while ours waits in OpenSent. It runs a state
    /// machine of its own until an OPEN on either connection tells the peer's identifier; then one
    /// connection is kept (the one opened by the higher identifier) and the other gets Cease 6/7.
    private struct PendingConnection {
        var machine: SessionStateMachine
        var channel: any Channel
        var id: Int
        /// Timers its machine armed, replayed on the peer's loop if it is kept.
        var timers: [SessionStateMachine.Timer: Double] = [:]
    }
    private var pending: PendingConnection?

    public init(
        configuration: SessionConfiguration, remoteAddress: String, remotePort: Int = 179, localAddress: String? = nil,
        eventLoop: any EventLoop, logger: Logger? = nil
    ) {
        machine = SessionStateMachine(configuration: configuration, randomSeed: UInt64.random(in: 0...UInt64.max))
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.localAddress = localAddress
        self.eventLoop = eventLoop
        var log = logger ?? Logger(label: "bagpipe.bgp.peer")
        log[metadataKey: "peer"] = "\(remoteAddress)"
        self.logger = log
    }

    public var configuration: SessionConfiguration { machine.configuration }

    // MARK: Control (any thread)

    public func start() { eventLoop.execute { self.handle(.manualStart) } }
    public func stop() { eventLoop.execute { self.handle(.manualStop) } }

    /// Stops with a Cease (RFC 4486), e.g. maximum prefixes reached; the session restarts after backoff.
    public func stop(notification: NotificationMessage, restartAfter: Double? = nil) {
        eventLoop.execute { self.handle(.automaticStop(notification, restartAfter: restartAfter)) }
    }

    public func state() -> EventLoopFuture<SessionStateMachine.State> { eventLoop.submit { self.machine.state } }

    public func currentStatistics() -> EventLoopFuture<PeerStatistics> { eventLoop.submit { self.statisticsOnLoop } }

    /// Sends encoded UPDATEs when Established. The returned future completes when they are flushed,
    /// which is what lets a sender apply back-pressure.
    public func send(updates: [ByteBuffer]) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            guard self.machine.state == .established, let channel = self.channel else {
                return self.eventLoop.makeFailedFuture(PeerNotEstablished())
            }
            self.statistics.messagesSent["update", default: 0] += updates.count
            for update in updates.dropLast() { channel.write(update, promise: nil) }
            return updates.last.map { channel.writeAndFlush($0) } ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// Advertises routes to the peer (now if Established, else when it is). Routes replace earlier
    /// ones with the same key.
    public func announce(_ elements: [NLRIElement], family: AddressFamily, nextHop: NextHop, attributes: [PathAttribute]) {
        eventLoop.execute {
            self.ribOut.announce(elements, family: family, nextHop: nextHop, attributes: attributes)
            self.flush()
        }
    }

    public func withdraw(_ elements: [NLRIElement], family: AddressFamily) {
        eventLoop.execute {
            self.ribOut.withdraw(elements, family: family)
            self.flush()
        }
    }

    /// Sends what `outbound` has pending (call on any thread; cheap when nothing is).
    public func outboundChanged() {
        if eventLoop.inEventLoop { flush() } else { eventLoop.execute { self.flush() } }
    }

    /// Routes held from the peer, per family.
    public func receivedCounts() -> EventLoopFuture<[AddressFamily: Int]> {
        eventLoop.submit { self.ribIn.tables.mapValues(\.count) }
    }

    /// The routes held from the peer in one family.
    public func receivedRoutes(_ family: AddressFamily) -> EventLoopFuture<[AdjRIBIn.Entry]> {
        eventLoop.submit { Array(self.ribIn.tables[family]?.values.map { $0 } ?? []) }
    }

    /// Routes advertised to the peer, per family.
    public func advertisedCounts() -> EventLoopFuture<[AddressFamily: Int]> {
        eventLoop.submit { self.ribOut.tables.mapValues(\.count) }
    }

    /// Asks the peer to send a family again (RFC 2918).
    public func requestRefresh(_ family: AddressFamily) {
        eventLoop.execute { self.perform(.send(.routeRefresh(RouteRefreshMessage(family: family)))) }
    }

    /// Drops the connection without a NOTIFICATION, as a crashed speaker would (tests of the peer's
    /// graceful-restart helper mode use it).
    public func abort() {
        eventLoop.execute {
            self.channel?.close(mode: .all, promise: nil)
        }
    }

    /// On the peer's loop: its state and negotiated session now (the looking glass reads them there).
    public var stateOnLoop: SessionStateMachine.State {
        eventLoop.preconditionInEventLoop()
        return machine.state
    }

    /// On the peer's loop: its statistics now.
    public var statisticsOnLoop: PeerStatistics {
        eventLoop.preconditionInEventLoop()
        var s = statistics
        s.state = machine.state
        s.lastNotificationSent = machine.lastNotificationSent
        s.lastNotificationReceived = machine.lastNotificationReceived
        return s
    }

    public var negotiatedOnLoop: NegotiatedSession? {
        eventLoop.preconditionInEventLoop()
        return machine.negotiated
    }

    /// The negotiated session parameters, when Established.
    public func negotiated() -> EventLoopFuture<NegotiatedSession?> { eventLoop.submit { self.machine.negotiated } }

    // MARK: Connections (event loop)

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
        switch machine.state {
        case .active:
            // No connection of ours in progress: the peer's is the session (RFC 4271 §8.2.2, event 17).
            self.channel?.close(promise: nil)
            adopt(channel, connection: id)
            handle(.tcpConnectionConfirmed)
        case .openConfirm:
            // RFC 4271 §6.8: both connections exist; keep the one opened by the higher identifier.
            if let remoteID = machine.negotiated?.peerRouterID, !SessionStateMachine.keepsOutgoingConnection(localID: configuration.routerID, remoteID: remoteID) {
                handle(.openCollisionDump)
                adopt(channel, connection: id)
                handle(.passiveStart)
                handle(.tcpConnectionConfirmed)
            } else {
                logger.info("connection collision: keeping our connection, closing the peer's")
                channel.close(promise: nil)
            }
        case .connect where pending == nil, .openSent where pending == nil:
            // Ours is being set up and the peer's identifier is not known yet: run both connections
            // until an OPEN tells it (dropping ours now could drop the one the peer keeps).
            logger.info("connection collision: the peer connected while ours is \(machine.state.rawValue); resolving when an OPEN arrives")
            pending = PendingConnection(machine: SessionStateMachine(configuration: configuration, randomSeed: UInt64.random(in: 0...UInt64.max)), channel: channel, id: id)
            runPending(.passiveStart)
            runPending(.tcpConnectionConfirmed)
        default:
            logger.info("connection from the peer while \(machine.state.rawValue): closed")
            channel.close(promise: nil)
        }
    }

    /// Drives the pending connection's state machine: sends and closes on its channel, timers noted.
    private func runPending(_ event: SessionStateMachine.Event) {
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
    private func resolveCollision() {
        guard let p = pending else { return }
        guard machine.state == .openSent || machine.state == .openConfirm else {
            // Ours is gone: the peer's connection is simply the session.
            promote(p)
            return
        }
        guard let remoteID = p.machine.negotiated?.peerRouterID ?? machine.negotiated?.peerRouterID else { return }
        if SessionStateMachine.keepsOutgoingConnection(localID: configuration.routerID, remoteID: remoteID) {
            logger.info("connection collision: our identifier is higher, keeping our connection")
            runPending(.openCollisionDump)
            pending = nil
        } else {
            logger.info("connection collision: the peer's identifier is higher, keeping its connection")
            pending = nil  // before dumping ours, so that the dump does not resolve this collision again
            handle(.openCollisionDump)
            promote(p)
        }
    }

    /// Makes the pending connection the session: its machine, channel and timers replace ours.
    private func promote(_ p: PendingConnection) {
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
    private func pendingEvent(_ frame: ByteBuffer?, lost: Bool = false) {
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

    private func adopt(_ channel: any Channel, connection id: Int) {
        connectionID = id
        self.channel = channel
    }

    private func connect() {
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
                if machine.state == .established { report(keepsAdjRIBIn ? ribIn.withdraw(blocks) : AdjRIBIn.withdrawals(blocks)) }
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
            if machine.state == .established { ingest(update) }
        case .notification(let n):
            logger.warning("NOTIFICATION received: \(n)")
            handle(.notificationReceived(n))
        case .routeRefresh(let r): handle(.routeRefreshReceived(r))
        }
    }

    // MARK: Routes

    /// Applies an UPDATE to the Adj-RIB-In, handles End-of-RIB and the maximum-prefix limits.
    private func ingest(_ update: UpdateMessage) {
        if let family = update.endOfRIBFamily {
            report([family: ribIn.sweepStale(family)])
            if ribIn.tables.values.allSatisfy({ !$0.values.contains { $0.stale } }) { staleTimer?.cancel() }
            onEndOfRIB(family)
            return
        }
        guard keepsAdjRIBIn else {
            if onRoutes != nil { report(AdjRIBIn.changes(in: update)) }
            return
        }
        let changes = ribIn.apply(update)
        report(changes)
        for family in changes.keys {
            guard let limit = configuration.maxPrefixes[family] else { continue }
            let count = ribIn.count(family)
            if count > limit {
                logger.error("\(count) \(family) routes from the peer, above the limit of \(limit): stopping the session (Cease 6/1)")
                // RFC 4486 §4: AFI, SAFI and the limit.
                var data = bigEndianBytes(family.afi.rawValue) + [family.safi.rawValue]
                data += bigEndianBytes(UInt32(truncatingIfNeeded: limit))
                handle(.automaticStop(NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.maximumPrefixesReached, data: data), restartAfter: configuration.maxPrefixRestartTime))
                return
            } else if Double(count) >= configuration.maxPrefixWarning * Double(limit), !warnedPrefixes.contains(family) {
                warnedPrefixes.insert(family)
                logger.warning("\(count) \(family) routes from the peer: \(Int(configuration.maxPrefixWarning * 100))% of the limit of \(limit)")
            }
        }
    }

    private func report(_ changes: [AddressFamily: [RouteChange]]) {
        guard let onRoutes else { return }
        for (family, list) in changes where !list.isEmpty { onRoutes(family, list) }
    }

    /// RFC 2918 / RFC 7313: the peer wants a family again; with enhanced route refresh, between BoRR
    /// and EoRR.
    private func answerRefresh(_ refresh: RouteRefreshMessage) {
        guard let session = machine.negotiated, session.families.contains(refresh.family), refresh.subtype == .request else {
            // A BoRR/EoRR from the peer brackets its own re-advertisement: stale marking is not needed
            // for correctness here, since replacements overwrite and its EoRR ends the refresh.
            return
        }
        if session.enhancedRouteRefresh {
            perform(.send(.routeRefresh(RouteRefreshMessage(family: refresh.family, subtype: .beginningOfRouteRefresh))))
            endOfRefreshDue.insert(refresh.family)
        }
        if let outbound { outbound.resend([refresh.family]) } else { ribOut.markAllPending([refresh.family]) }
        flush()
    }

    func writable(_ id: Int) {
        guard id == connectionID else { return }
        flush()
    }

    /// Sends pending Adj-RIB-Out changes while the connection takes them: packed UPDATEs per attribute
    /// set, End-of-RIB after the initial advertisement, EoRR after a refresh. When the socket's buffer is
    /// full it stops, and continues when the channel becomes writable again.
    private func flush() {
        guard machine.state == .established, let channel, let session = machine.negotiated else { return }
        let builder = UpdateBuilder(context: session.sendContext)
        var sent = 0  // UPDATEs, End-of-RIB included
        var endedRefreshes = 0
        while channel.isWritable, let outbound, let batch = outbound.takeEncoded(limit: 2000, context: session.sendContext) {
            guard session.families.contains(batch.family) else { continue }
            for message in batch.messages { channel.write(message, promise: nil) }
            sent += batch.messages.count
        }
        while channel.isWritable, let batch = ribOut.takePending(limit: 2000) {
            guard session.families.contains(batch.family) else { continue }
            let messages = builder.messages(announcing: batch.announce, withdrawing: batch.withdraw, family: batch.family)
            for message in messages { channel.write(message, promise: nil) }
            sent += messages.count
        }
        if !ribOut.hasPending && outbound?.hasPending != true {
            for family in endOfRIBDue.sorted() {
                channel.write(BGPMessage.update(.endOfRIB(family)).encoded(context: session.sendContext), promise: nil)
                sent += 1
            }
            endOfRIBDue = []
            for family in endOfRefreshDue.sorted() {
                let endOfRefresh = BGPMessage.routeRefresh(RouteRefreshMessage(family: family, subtype: .endOfRouteRefresh))
                channel.write(endOfRefresh.encoded(), promise: nil)
                statistics.messagesSent[endOfRefresh.typeName, default: 0] += 1
                endedRefreshes += 1
            }
            endOfRefreshDue = []
        }
        if sent > 0 { statistics.messagesSent["update", default: 0] += sent }
        if sent + endedRefreshes > 0 { channel.flush() }
    }

    // MARK: Carrying out actions

    private func handle(_ event: SessionStateMachine.Event) {
        eventLoop.assertInEventLoop()
        for action in machine.handle(event) { perform(action) }
        // Our OPEN exchange finished while the peer's connection is pending: §6.8 decides now.
        if pending != nil && (machine.state == .openConfirm || machine.state == .idle || machine.state == .active) {
            if machine.state == .openConfirm { resolveCollision() } else if case .openConfirm = pending?.machine.state { resolveCollision() }
        }
    }

    private func perform(_ action: SessionStateMachine.Action) {
        switch action {
        case .connect: connect()
        case .closeConnection:
            connectionID = 0  // events of the closed connection are stale from now on
            channel?.close(promise: nil)
            channel = nil
        case .send(let message):
            guard let channel else { return }
            statistics.messagesSent[message.typeName, default: 0] += 1
            let context = machine.negotiated?.sendContext ?? .standard
            if case .notification(let n) = message { logger.warning("NOTIFICATION sent: \(n)") }
            channel.writeAndFlush(message.encoded(context: context), promise: nil)
        case .armTimer(let timer, let seconds):
            timers[timer]?.cancel()
            timers[timer] = eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [weak self] in
                self?.timers[timer] = nil
                self?.handle(.timerExpired(timer))
            }
        case .cancelTimer(let timer):
            timers[timer]?.cancel()
            timers[timer] = nil
        case .established(let session):
            statistics.establishedSince = .now()
            warnedPrefixes = []
            // RFC 4724 §4.2: a restarted peer that no longer preserves a family's forwarding state
            // gets its stale routes in that family dropped now.
            let kept = Set(session.peerGracefulRestart?.families.filter(\.forwardingStatePreserved).map(\.family) ?? [])
            for family in ribIn.tables.keys where !kept.contains(family) { report([family: ribIn.sweepStale(family)]) }
            endOfRIBDue = Set(session.families)
            if outbound == nil { ribOut.markAllPending(session.families) }
            logger.notice(
                "session established: AS \(session.peerAS), router id \(session.peerRouterID), hold time \(session.holdTime) s, families \(session.families.map(\.description).joined(separator: " "))")
            onEstablished(session)
            flush()
        case .sessionDown(let reason, let withoutNotification):
            statistics.establishedSince = nil
            statistics.lastDownReason = reason
            endOfRIBDue = []
            endOfRefreshDue = []
            if !keepsAdjRIBIn {
                // The owner holds the routes and drops them on onDown.
            } else if withoutNotification, let gr = machine.lastNegotiatedGracefulRestart, !gr.families.isEmpty {
                // RFC 4724 §4.2 helper: keep the peer's routes, stale, for its restart time.
                let families = Set(gr.families.map(\.family))
                ribIn.markStale(families)
                logger.notice("peer may be restarting: keeping its routes stale for \(gr.restartTime) s")
                staleTimer?.cancel()
                staleTimer = eventLoop.scheduleTask(in: .seconds(Int64(gr.restartTime))) { [weak self] in
                    guard let self else { return }
                    for family in families { self.report([family: self.ribIn.sweepStale(family)]) }
                }
            } else {
                report(ribIn.clear())
            }
            onDown(reason)
        case .deliverUpdate(let update): onUpdate(update)
        case .deliverWithdrawals(let blocks, let reason): onWithdrawals(blocks, reason)
        case .deliverRouteRefresh(let refresh):
            onRouteRefresh(refresh)
            answerRefresh(refresh)
        case .stateChanged(let from, let to, let reason):
            statistics.previousState = from
            statistics.state = to
            statistics.lastStateChange = .now()
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            statistics.lastStateChangeWallClock = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
            logger.info("\(from.rawValue) -> \(to.rawValue): \(reason)")
            onStateChange(to)
        }
    }
}

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
