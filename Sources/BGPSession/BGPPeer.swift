import BGPRoutes
import BGPWire
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix


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
    /// Helper mode for a peer without an Adj-RIB-In (whose routes the owner stores): the peer went
    /// away without a NOTIFICATION, keep its routes of these families, stale (before `onDown`)…
    public var onKeepStale: (Set<AddressFamily>) -> Void = { _ in }
    /// …until this: its End-of-RIB, its new session without forwarding state, or its restart time.
    public var onSweepStale: (AddressFamily) -> Void = { _ in }
    /// A restarting speaker's End-of-RIB of the VPN families waits until it has its peers' routes
    /// (RFC 4724 §4.1), so that a helper does not sweep routes it is about to receive again.
    public var holdsEndOfRIB = false {
        didSet { if !holdsEndOfRIB && oldValue { flush() } }
    }
    public var onWithdrawals: ([NLRIBlock], String) -> Void = { _, _ in }
    public var onRouteRefresh: (RouteRefreshMessage) -> Void = { _ in }
    public var onDown: (String) -> Void = { _ in }
    public var onStateChange: (SessionStateMachine.State) -> Void = { _ in }

    var machine: SessionStateMachine
    var channel: (any Channel)?
    /// The connection whose events count; others are stale. Ids come from `reserveConnectionID`.
    var connectionID = 0
    let connectionIDs = NIOLockedValueBox(0)
    var timers: [SessionStateMachine.Timer: Scheduled<Void>] = [:]
    var statistics = PeerStatistics()
    /// The Adj-RIB-In with what depends on it: maximum prefixes, graceful-restart helper mode, End-of-RIB.
    var routes: PeerRoutes
    var ribOut: AdjRIBOut
    /// False: keep no Adj-RIB-In (see `PeerRoutes.keepsAdjRIBIn`); set before `start()`.
    public var keepsAdjRIBIn: Bool {
        get { routes.keepsAdjRIBIn }
        set { routes.keepsAdjRIBIn = newValue }
    }
    /// Set before `start()` to take outbound routes from elsewhere than `announce`/`withdraw`.
    public var outbound: (any OutboundRoutes)?
    /// Graceful restart of the peer (RFC 4724): routes kept stale until this timer or its End-of-RIB.
    var staleTimer: Scheduled<Void>?

    /// RFC 4271 §6.8: the peer's connection, accepted while ours waits in OpenSent. It runs a state
    /// machine of its own until an OPEN on either connection tells the peer's identifier; then one
    /// connection is kept (the one opened by the higher identifier) and the other gets Cease 6/7.
    struct PendingConnection {
        var machine: SessionStateMachine
        var channel: any Channel
        var id: Int
        /// Timers its machine armed, replayed on the peer's loop if it is kept.
        var timers: [SessionStateMachine.Timer: Double] = [:]
    }
    var pending: PendingConnection?

    public init(
        configuration: SessionConfiguration, remoteAddress: String, remotePort: Int = 179, localAddress: String? = nil,
        eventLoop: any EventLoop, logger: Logger? = nil, interner: AttributeInterner = AttributeInterner()
    ) {
        machine = SessionStateMachine(configuration: configuration, randomSeed: UInt64.random(in: 0...UInt64.max))
        routes = PeerRoutes(configuration, interner: interner)
        ribOut = AdjRIBOut(interner: interner)
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

    /// Stops for a restart that keeps our forwarding state: the peer keeps our routes (RFC 4724),
    /// told by a Cease when RFC 8538 is negotiated, by the connection closing otherwise.
    public func restartStop() { eventLoop.execute { self.handle(.restartStop) } }

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
        eventLoop.submit { self.routes.ribIn.tables.mapValues(\.count) }
    }

    /// The routes held from the peer in one family.
    public func receivedRoutes(_ family: AddressFamily) -> EventLoopFuture<[AdjRIBIn.Entry]> {
        eventLoop.submit { Array(self.routes.ribIn.tables[family]?.values.map { $0 } ?? []) }
    }

    /// Routes advertised to the peer, per family.
    public func advertisedCounts() -> EventLoopFuture<[AddressFamily: Int]> {
        eventLoop.submit { self.ribOut.tables.mapValues(\.count) }
    }

    /// Asks the peer to send a family again (RFC 2918).
    public func requestRefresh(_ family: AddressFamily) {
        eventLoop.execute { self.perform(.send(.routeRefresh(RouteRefreshMessage(family: family)))) }
    }

    /// Our restart is over: the OPENs of later sessions no longer set the restart (R) bit.
    public func restartFinished() {
        eventLoop.preconditionInEventLoop()
        machine.configuration.gracefulRestartRestarting = false
        pending?.machine.configuration.gracefulRestartRestarting = false
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

    // MARK: Carrying out actions

    func handle(_ event: SessionStateMachine.Event) {
        eventLoop.assertInEventLoop()
        for action in machine.handle(event) { perform(action) }
        // Our OPEN exchange finished while the peer's connection is pending: §6.8 decides now.
        if pending != nil && (machine.state == .openConfirm || machine.state == .idle || machine.state == .active) {
            if machine.state == .openConfirm { resolveCollision() } else if case .openConfirm = pending?.machine.state { resolveCollision() }
        }
    }

    func perform(_ action: SessionStateMachine.Action) {
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
            apply(routes.established(session))
            if outbound == nil { ribOut.markAllPending(session.families) }
            logger.notice(
                "session established: AS \(session.peerAS), router id \(session.peerRouterID), hold time \(session.holdTime) s, families \(session.families.map(\.description).joined(separator: " "))")
            onEstablished(session)
            flush()
        case .sessionDown(let reason, let graceful):
            statistics.establishedSince = nil
            statistics.lastDownReason = reason
            apply(routes.down(graceful: graceful, gracefulRestart: machine.lastNegotiatedGracefulRestart))
            onDown(reason)
        case .deliverUpdate(let update):
            onUpdate(update)
            apply(routes.received(update, wantsChanges: onRoutes != nil))
        case .deliverWithdrawals(let blocks, let reason):
            onWithdrawals(blocks, reason)
            apply(routes.treatedAsWithdraw(blocks))
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
