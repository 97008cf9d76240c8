import BGPWire

/// RFC 4271 §8 finite state machine for one connection to one peer, as a value: events go in,
/// actions come out, and it never does I/O or reads a clock. Timers are actions (arm, cancel) and
/// their expiry is an event. The session driver carries the actions out.
public struct SessionStateMachine: Sendable {
    public enum State: String, Hashable, Sendable, CaseIterable {
        case idle = "Idle"
        case connect = "Connect"
        case active = "Active"
        case openSent = "OpenSent"
        case openConfirm = "OpenConfirm"
        case established = "Established"
    }

    public enum Timer: Hashable, Sendable {
        case connectRetry, hold, keepalive, delayOpen
        /// Between an error and the automatic restart (RFC 4271 §8.1.1 IdleHoldTimer), with backoff.
        case idleHold
    }

    /// RFC 4271 §8.1 events (numbers in the comments).
    public enum Event: Hashable, Sendable {
        case manualStart  // 1 (4 when the configuration is passive)
        /// 4/5: start listening only, whatever the configuration (used to adopt the peer's connection).
        case passiveStart
        case manualStop  // 2
        /// We stop to start again with our forwarding state kept (graceful restart): the peer
        /// should keep our routes. With RFC 8538 negotiated, a Cease (Administrative Reset) says
        /// so; otherwise the connection just closes, as a crash would.
        case restartStop
        case automaticStart  // 3 (5 when passive)
        /// 8: e.g. maximum prefixes (Cease 6/1); restarts after `restartAfter` seconds (else the backoff).
        case automaticStop(NotificationMessage?, restartAfter: Double? = nil)
        case timerExpired(Timer)  // 9, 10, 11, 12, 13
        case tcpConnectionConfirmed  // 16/17: our connection came up, or we accepted theirs
        case tcpConnectionFails  // 18
        case openReceived(OpenMessage)  // 19, 20
        case decodingError(BGPDecodingError)  // 21, 22, 28 (session-reset errors)
        case openCollisionDump  // 23
        case notificationReceived(NotificationMessage)  // 24, 25
        case keepaliveReceived  // 26
        case updateReceived(UpdateMessage)  // 27
        /// An UPDATE that RFC 7606 turns into withdrawals: the session stays up.
        case updateTreatedAsWithdraw([NLRIBlock], reason: String)
        case routeRefreshReceived(RouteRefreshMessage)
    }

    public enum Action: Hashable, Sendable {
        case connect
        case closeConnection
        case send(BGPMessage)
        case armTimer(Timer, seconds: Double)
        case cancelTimer(Timer)
        /// The session reached Established with these parameters.
        case established(NegotiatedSession)
        /// The session left Established: forget the peer's routes, or keep them stale (`graceful`)
        /// when it ended without a NOTIFICATION, or with one other than Hard Reset under RFC 8538,
        /// and the peer can restart gracefully (RFC 4724 §4.2).
        case sessionDown(reason: String, graceful: Bool)
        case deliverUpdate(UpdateMessage)
        case deliverWithdrawals([NLRIBlock], reason: String)
        case deliverRouteRefresh(RouteRefreshMessage)
        case stateChanged(from: State, to: State, reason: String)
    }

    /// Changes only between sessions' OPENs: the restart bit is cleared when our restart is over.
    public internal(set) var configuration: SessionConfiguration
    public private(set) var state: State = .idle
    public private(set) var connectRetryCounter = 0
    public private(set) var negotiated: NegotiatedSession?
    /// The peer's graceful restart capability of the last session, kept after it goes down.
    public private(set) var lastNegotiatedGracefulRestart: GracefulRestartCapability?
    /// The last NOTIFICATION sent and received, for the looking glass.
    public private(set) var lastNotificationSent: NotificationMessage?
    public private(set) var lastNotificationReceived: NotificationMessage?
    /// Stopped by the operator: no automatic restart.
    public private(set) var administrativelyDown = true
    /// Stopped on purpose for a while (`automaticStop`, e.g. too many prefixes): Idle refuses the
    /// peer's connections until the idle-hold timer restarts the session.
    public private(set) var holdingDown = false
    private var delayOpenRunning = false
    private var random: UInt64

    /// RFC 4271 §8.2.2: the hold timer while waiting for the peer's OPEN ("a large value", 4 minutes).
    public static let openHoldTime: Double = 240

    public init(configuration: SessionConfiguration, randomSeed: UInt64 = 0x5EED) {
        self.configuration = configuration
        random = randomSeed
    }

    // MARK: Handling events

    public mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action] = []
        let before = state
        var reason = ""
        switch (state, event) {
        // Starting: ignored everywhere but Idle.
        case (.idle, .manualStart), (.idle, .automaticStart):
            holdingDown = false
            if case .manualStart = event { administrativelyDown = false }
            if case .automaticStart = event, administrativelyDown { return [] }
            connectRetryCounter = event == .manualStart ? 0 : connectRetryCounter
            actions.append(.cancelTimer(.idleHold))
            actions.append(.armTimer(.connectRetry, seconds: connectRetryInterval()))
            if configuration.active {
                actions.append(.connect)
                state = .connect
            } else {
                state = .active
            }
            reason = event == .manualStart ? "started" : "restarting"
        case (.idle, .passiveStart):
            administrativelyDown = false
            holdingDown = false
            actions += [.cancelTimer(.idleHold), .armTimer(.connectRetry, seconds: connectRetryInterval())]
            state = .active
            reason = "waiting for the peer's connection"
        case (_, .manualStart), (_, .automaticStart), (_, .passiveStart):
            return []

        case (.idle, .manualStop), (.idle, .restartStop):
            // Ignored by RFC 4271 in Idle; here it also cancels the pending automatic restart.
            administrativelyDown = true
            connectRetryCounter = 0
            return [.cancelTimer(.idleHold)]
        case (.idle, _):
            // RFC 4271 §8.2.2 Idle: every other event is ignored; the idle-hold timer restarts us.
            if case .timerExpired(.idleHold) = event { return handle(.automaticStart) }
            return []

        case (_, .manualStop):
            administrativelyDown = true
            connectRetryCounter = 0
            let sent = notifyStop(NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.administrativeShutdown), into: &actions)
            actions += tearDown(reason: "stopped by the operator", restart: false, notification: sent)
            reason = "stopped by the operator"

        case (_, .restartStop):
            administrativelyDown = true
            connectRetryCounter = 0
            reason = "stopped for a restart that keeps forwarding"
            guard state == .established, negotiated?.notificationRestart == true else {
                actions += tearDown(reason: reason, restart: false, notification: nil)
                break
            }
            let cease = NotificationMessage.cease(subcode: NotificationMessage.CeaseSubcode.administrativeReset, communication: "restarting, forwarding preserved")
            actions += sendNotification(cease) + tearDown(reason: reason, restart: false, notification: cease)

        case (_, .automaticStop(let notification, let restartAfter)):
            let sent = notifyStop(notification ?? NotificationMessage(code: .cease, subcode: 0), into: &actions)
            connectRetryCounter += 1
            holdingDown = true
            reason = notification.map { "stopped: \($0)" } ?? "stopped"
            actions += tearDown(reason: reason, restart: restartAfter == nil, notification: sent)
            if let restartAfter { actions.append(.armTimer(.idleHold, seconds: restartAfter)) }

        // Connect and Active: waiting for a TCP connection (or, with DelayOpen, for the peer's OPEN).
        case (.connect, .timerExpired(.connectRetry)):
            actions += [.closeConnection, .cancelTimer(.delayOpen), .armTimer(.connectRetry, seconds: connectRetryInterval()), .connect]
            delayOpenRunning = false
            return actions
        case (.active, .timerExpired(.connectRetry)):
            if configuration.active {
                actions += [.armTimer(.connectRetry, seconds: connectRetryInterval()), .connect]
                state = .connect
                reason = "connect-retry timer expired"
            } else {
                return [.armTimer(.connectRetry, seconds: connectRetryInterval())]
            }
        case (.connect, .tcpConnectionConfirmed), (.active, .tcpConnectionConfirmed):
            actions.append(.cancelTimer(.connectRetry))
            if configuration.delayOpenTime > 0 {
                delayOpenRunning = true
                actions.append(.armTimer(.delayOpen, seconds: Double(configuration.delayOpenTime)))
                state = .active == state ? .active : .connect
                return actions
            }
            actions += [.send(.open(configuration.openMessage)), .armTimer(.hold, seconds: Self.openHoldTime)]
            state = .openSent
            reason = "TCP connection up, OPEN sent"
        case (.connect, .timerExpired(.delayOpen)), (.active, .timerExpired(.delayOpen)):
            delayOpenRunning = false
            actions += [.send(.open(configuration.openMessage)), .armTimer(.hold, seconds: Self.openHoldTime)]
            state = .openSent
            reason = "delay-open timer expired, OPEN sent"
        case (.connect, .openReceived(let open)) where delayOpenRunning, (.active, .openReceived(let open)) where delayOpenRunning:
            delayOpenRunning = false
            actions += [.cancelTimer(.connectRetry), .cancelTimer(.delayOpen), .send(.open(configuration.openMessage))]
            actions += acceptOpen(open, reason: &reason)
        case (.connect, .tcpConnectionFails) where delayOpenRunning:
            delayOpenRunning = false
            actions += [.closeConnection, .cancelTimer(.delayOpen), .armTimer(.connectRetry, seconds: connectRetryInterval())]
            state = .active
            reason = "TCP connection failed"
        case (.connect, .tcpConnectionFails):
            actions += [.closeConnection, .cancelTimer(.connectRetry)]
            state = .active
            actions.append(.armTimer(.connectRetry, seconds: connectRetryInterval()))
            reason = "TCP connection failed"
        case (.active, .tcpConnectionFails):
            connectRetryCounter += 1
            delayOpenRunning = false
            reason = "TCP connection failed"
            actions += [.cancelTimer(.delayOpen)] + tearDown(reason: reason, restart: true, notification: nil)
        case (.connect, .notificationReceived(let n)), (.active, .notificationReceived(let n)):
            lastNotificationReceived = n
            // RFC 4271 §8.2.2 event 24: a version error during DelayOpen does not count as a failure.
            if !(delayOpenRunning && n.code == .openMessageError && n.subcode == ErrorSubcode.unsupportedVersion) { connectRetryCounter += 1 }
            reason = "NOTIFICATION received: \(n)"
            actions += tearDown(reason: reason, restart: true, notification: n)
        case (.connect, .decodingError(let error)), (.active, .decodingError(let error)):
            actions += resetFor(error, reason: &reason)
        case (.connect, _), (.active, _):
            connectRetryCounter += 1
            reason = "unexpected \(Self.name(event)) in \(state.rawValue)"
            actions += tearDown(reason: reason, restart: true, notification: nil)

        // RFC 4271 §8.2.2 events 14-17 after Connect/Active: a second connection, which collision
        // detection (§6.8, done by the peer driver) sorts out; this connection is not affected.
        case (.openSent, .tcpConnectionConfirmed), (.openConfirm, .tcpConnectionConfirmed), (.established, .tcpConnectionConfirmed):
            return []

        // OpenSent: our OPEN is out, waiting for theirs.
        case (.openSent, .openReceived(let open)):
            actions += acceptOpen(open, reason: &reason)
        case (.openSent, .tcpConnectionFails):
            actions += [.closeConnection, .cancelTimer(.hold), .armTimer(.connectRetry, seconds: connectRetryInterval())]
            state = .active
            reason = "TCP connection failed in OpenSent"

        // OpenConfirm: OPENs exchanged, waiting for the first KEEPALIVE.
        case (.openConfirm, .keepaliveReceived):
            guard let negotiated else { return [] }
            if negotiated.holdTime > 0 { actions.append(.armTimer(.hold, seconds: Double(negotiated.holdTime))) }
            actions.append(.established(negotiated))
            state = .established
            connectRetryCounter = 0
            reason = "KEEPALIVE received"
        case (.openConfirm, .timerExpired(.keepalive)), (.established, .timerExpired(.keepalive)):
            guard let negotiated, negotiated.keepaliveInterval > 0 else { return [] }
            return [.send(.keepalive), .armTimer(.keepalive, seconds: Double(negotiated.keepaliveInterval))]

        // Established.
        case (.established, .keepaliveReceived):
            return restartHoldTimer()
        case (.established, .updateReceived(let update)):
            return restartHoldTimer() + [.deliverUpdate(update)]
        case (.established, .updateTreatedAsWithdraw(let blocks, let why)):
            return restartHoldTimer() + [.deliverWithdrawals(blocks, reason: why)]
        case (.established, .routeRefreshReceived(let refresh)):
            return restartHoldTimer() + [.deliverRouteRefresh(refresh)]

        // Errors common to OpenSent, OpenConfirm and Established.
        case (_, .timerExpired(.hold)):
            connectRetryCounter += 1
            reason = "hold timer expired"
            // RFC 4724 helpers treat a dead peer like a lost connection: its routes may be kept.
            actions += sendNotification(NotificationMessage(code: .holdTimerExpired, subcode: 0)) + tearDown(reason: reason, restart: true, notification: nil)
        case (_, .openCollisionDump):
            connectRetryCounter += 1
            reason = "connection collision: the other connection is kept"
            let cease = NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.connectionCollisionResolution)
            actions += sendNotification(cease) + tearDown(reason: reason, restart: false, notification: cease)
        case (_, .notificationReceived(let n)):
            lastNotificationReceived = n
            if !(n.code == .openMessageError && n.subcode == ErrorSubcode.unsupportedVersion) { connectRetryCounter += 1 }
            reason = "NOTIFICATION received: \(n)" + (restartsGracefully(after: n) ? " (a graceful restart: RFC 8538)" : "")
            actions += tearDown(reason: reason, restart: true, notification: n)
        case (_, .tcpConnectionFails):
            connectRetryCounter += 1
            reason = "TCP connection lost"
            actions += tearDown(reason: reason, restart: true, notification: nil)
        case (_, .decodingError(let error)):
            actions += resetFor(error, reason: &reason)
        default:
            // RFC 4271 §8.2.2 with RFC 6608 subcodes: an event the state does not expect is an FSM error.
            let subcode: UInt8 = state == .openSent ? 1 : (state == .openConfirm ? 2 : 3)
            connectRetryCounter += 1
            reason = "unexpected \(Self.name(event)) in \(state.rawValue)"
            let error = NotificationMessage(code: .finiteStateMachineError, subcode: subcode)
            actions += sendNotification(error) + tearDown(reason: reason, restart: true, notification: error)
        }
        if state != before { actions.append(.stateChanged(from: before, to: state, reason: reason)) }
        return actions
    }

    // MARK: Helpers

    /// Validates the peer's OPEN; on success sends KEEPALIVE and moves to OpenConfirm.
    private mutating func acceptOpen(_ open: OpenMessage, reason: inout String) -> [Action] {
        switch Negotiation.negotiate(local: configuration, peer: open) {
        case .failure(let rejection):
            let notification = rejection.notification
            connectRetryCounter += 1
            reason = "OPEN refused: \(notification)"
            return sendNotification(notification) + tearDown(reason: reason, restart: true, notification: notification)
        case .success(let session):
            negotiated = session
            lastNegotiatedGracefulRestart = session.peerGracefulRestart
            state = .openConfirm
            reason = "OPEN received, hold time \(session.holdTime) s"
            var actions: [Action] = [.cancelTimer(.connectRetry), .send(.keepalive)]
            if session.holdTime > 0 {
                actions += [.armTimer(.keepalive, seconds: Double(session.keepaliveInterval)), .armTimer(.hold, seconds: Double(session.holdTime))]
            } else {
                actions += [.cancelTimer(.keepalive), .cancelTimer(.hold)]
            }
            return actions
        }
    }

    private func restartHoldTimer() -> [Action] {
        guard let negotiated, negotiated.holdTime > 0 else { return [] }
        return [.armTimer(.hold, seconds: Double(negotiated.holdTime))]
    }

    private mutating func sendNotification(_ notification: NotificationMessage) -> [Action] {
        lastNotificationSent = notification
        return [.send(.notification(notification))]
    }

    /// A message that RFC 4271 / RFC 7606 answer with a session reset.
    private mutating func resetFor(_ error: BGPDecodingError, reason: inout String) -> [Action] {
        connectRetryCounter += 1
        reason = "malformed message: \(error.reason)"
        guard case .sessionReset(let notification) = error.handling else { return tearDown(reason: reason, restart: true, notification: nil) }
        return sendNotification(notification) + tearDown(reason: reason, restart: true, notification: notification)
    }

    /// A stop that must flush the peer's routes, in OpenSent, OpenConfirm or Established: the
    /// NOTIFICATION sent, which under RFC 8538 (§3) is a Hard Reset carrying `notification`'s code,
    /// subcode and data. Nil in the other states, where nothing is sent.
    private mutating func notifyStop(_ notification: NotificationMessage, into actions: inout [Action]) -> NotificationMessage? {
        guard state == .openSent || state == .openConfirm || state == .established else { return nil }
        var sent = notification
        if negotiated?.notificationRestart == true, !notification.isHardReset {
            sent = NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.hardReset, data: [notification.code.rawValue, notification.subcode] + notification.data)
        }
        actions += sendNotification(sent)
        return sent
    }

    /// Whether a session ended by this NOTIFICATION (sent or received) keeps the peer's routes:
    /// only with RFC 8538 negotiated, and not for Hard Reset.
    private func restartsGracefully(after notification: NotificationMessage) -> Bool {
        negotiated?.notificationRestart == true && !notification.isHardReset
    }

    /// Close the connection, stop every timer, go Idle; restart after the backoff. The peer's routes
    /// stay, stale, when the session ends without a NOTIFICATION (`notification` nil), or with
    /// one that RFC 8538 makes a graceful restart.
    private mutating func tearDown(reason: String, restart: Bool, notification: NotificationMessage?) -> [Action] {
        let graceful = notification.map(restartsGracefully(after:)) ?? true
        let wasUp = state == .established
        state = .idle
        negotiated = nil
        delayOpenRunning = false
        var actions: [Action] = [
            .closeConnection, .cancelTimer(.connectRetry), .cancelTimer(.hold), .cancelTimer(.keepalive), .cancelTimer(.delayOpen),
        ]
        if wasUp { actions.append(.sessionDown(reason: reason, graceful: graceful)) }
        // A session that was up reconnects at once (as FRR does): its peer most likely restarted, and
        // every second costs stale routes. Failures before Established back off.
        if restart && !administrativelyDown { actions.append(.armTimer(.idleHold, seconds: wasUp ? 0.2 * jitter() : connectRetryInterval())) }
        return actions
    }

    /// Exponential backoff with jitter (RFC 4271 §10: jitter between 0.75 and 1): the base interval
    /// doubled for each consecutive failure, capped at the maximum.
    private mutating func connectRetryInterval() -> Double {
        let base = Double(configuration.connectRetryTime)
        let doubled = base * Double(1 << min(connectRetryCounter, 16))
        let capped = min(doubled, Double(max(configuration.connectRetryMaximum, configuration.connectRetryTime)))
        return capped * jitter()
    }

    /// RFC 4271 §10: a factor between 0.75 and 1.
    private mutating func jitter() -> Double {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return 0.75 + 0.25 * Double(z >> 11) / Double(1 << 53)
    }

    static func name(_ event: Event) -> String {
        switch event {
        case .manualStart: "ManualStart"
        case .passiveStart: "PassiveStart"
        case .manualStop: "ManualStop"
        case .restartStop: "ManualStop (restart)"
        case .automaticStart: "AutomaticStart"
        case .automaticStop: "AutomaticStop"
        case .timerExpired(let t): "\(t) timer expiry"
        case .tcpConnectionConfirmed: "TCP connection"
        case .tcpConnectionFails: "TCP failure"
        case .openReceived: "OPEN"
        case .decodingError: "malformed message"
        case .openCollisionDump: "collision dump"
        case .notificationReceived: "NOTIFICATION"
        case .keepaliveReceived: "KEEPALIVE"
        case .updateReceived, .updateTreatedAsWithdraw: "UPDATE"
        case .routeRefreshReceived: "ROUTE-REFRESH"
        }
    }
}
