import BGPSession
import BagpipeLab
import BGPWire
import Testing

/// Drives a state machine as the session driver would, with a simulated clock: timers the machine
/// arms fire when the test advances time. Nothing sleeps.
struct Simulation {
    var machine: SessionStateMachine
    var now = 0.0
    var timers: [SessionStateMachine.Timer: Double] = [:]
    var sent: [BGPMessage] = []
    var log: [SessionStateMachine.Action] = []
    var connects = 0
    var closes = 0

    init(_ configuration: SessionConfiguration) { machine = SessionStateMachine(configuration: configuration, randomSeed: 42) }

    @discardableResult
    mutating func feed(_ event: SessionStateMachine.Event) -> [SessionStateMachine.Action] {
        let actions = machine.handle(event)
        for action in actions {
            switch action {
            case .armTimer(let timer, let seconds): timers[timer] = now + seconds
            case .cancelTimer(let timer): timers[timer] = nil
            case .send(let message): sent.append(message)
            case .connect: connects += 1
            case .closeConnection: closes += 1
            default: break
            }
        }
        log += actions
        return actions
    }

    /// Moves the clock forward, firing timers in deadline order.
    mutating func advance(_ seconds: Double) {
        let end = now + seconds
        while let (timer, deadline) = timers.min(by: { $0.value < $1.value }), deadline <= end {
            now = deadline
            timers[timer] = nil
            feed(.timerExpired(timer))
        }
        now = end
    }

    var state: SessionStateMachine.State { machine.state }
    var lastNotification: NotificationMessage? {
        for case .notification(let n) in sent.reversed() { return n }
        return nil
    }
}

let local = IPv4Address(192, 0, 2, 1)
let remote = IPv4Address(192, 0, 2, 2)

func configuration(active: Bool = true, delayOpen: UInt16 = 0, hold: UInt16 = 90) -> SessionConfiguration {
    SessionConfiguration(
        localAS: 64512, peerAS: 64512, routerID: local, families: [.ipv4VPN, .evpn, .routeTargetConstraint], holdTime: hold, active: active,
        delayOpenTime: delayOpen, connectRetryTime: 5, connectRetryMaximum: 60)
}

func peerOpen(asn: UInt32 = 64512, id: IPv4Address = remote, hold: UInt16 = 30, families: [AddressFamily] = [.ipv4VPN, .evpn]) -> OpenMessage {
    OpenMessage(asn: asn, holdTime: hold, bgpIdentifier: id, capabilities: families.map { .multiprotocol($0) } + [.routeRefresh])
}

/// Brings a simulation to Established.
func established(_ config: SessionConfiguration = configuration()) -> Simulation {
    var s = Simulation(config)
    s.feed(.manualStart)
    s.feed(.tcpConnectionConfirmed)
    s.feed(.openReceived(peerOpen()))
    s.feed(.keepaliveReceived)
    return s
}

@Suite("RFC 4271 §8.2.2: Idle")
struct IdleStateTests {
    @Test func manualStartConnects() {
        var s = Simulation(configuration())
        let actions = s.feed(.manualStart)
        #expect(s.state == .connect)
        #expect(s.connects == 1)
        #expect(actions.contains(.stateChanged(from: .idle, to: .connect, reason: "started")))
        #expect(s.timers[.connectRetry] != nil)
    }

    @Test func passiveStartListens() {
        var s = Simulation(configuration(active: false))
        s.feed(.manualStart)
        #expect(s.state == .active)
        #expect(s.connects == 0)
    }

    @Test func otherEventsAreIgnored() {
        var s = Simulation(configuration())
        for event: SessionStateMachine.Event in [.keepaliveReceived, .tcpConnectionFails, .timerExpired(.hold), .openReceived(peerOpen()), .automaticStart] {
            #expect(s.feed(event).isEmpty)
            #expect(s.state == .idle)
        }
    }
}

@Suite("Automatic restart")
struct AutomaticRestartTests {
    @Test func manualStopInIdleCancelsTheRestart() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        s.feed(.tcpConnectionFails)  // OpenSent -> Active
        s.feed(.tcpConnectionFails)  // Active -> Idle, restart armed
        #expect(s.state == .idle && s.timers[.idleHold] != nil)
        s.feed(.manualStop)
        #expect(s.timers[.idleHold] == nil)
        s.advance(1000)
        #expect(s.state == .idle)
    }
}

@Suite("RFC 4271 §8.2.2: Connect and Active")
struct ConnectActiveStateTests {
    @Test func connectRetryTimerRetries() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.advance(6)
        #expect(s.state == .connect)
        #expect(s.connects == 2)
    }

    @Test func tcpUpSendsOpen() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        #expect(s.state == .openSent)
        guard case .open(let open)? = s.sent.first else { Issue.record("no OPEN"); return }
        #expect(open.asn == 64512 && open.holdTime == 90 && open.bgpIdentifier == local)
        #expect(open.multiprotocolFamilies == [.ipv4VPN, .evpn, .routeTargetConstraint])
        #expect(s.timers[.hold] == SessionStateMachine.openHoldTime)
        #expect(s.timers[.connectRetry] == nil)
    }

    @Test func delayOpenWaitsThenSends() {
        var s = Simulation(configuration(delayOpen: 3))
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        #expect(s.state == .connect)
        #expect(s.sent.isEmpty)
        s.advance(3)
        #expect(s.state == .openSent)
        #expect(s.sent.count == 1)
    }

    @Test func openDuringDelayOpenGoesToOpenConfirm() {
        var s = Simulation(configuration(delayOpen: 3))
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        s.feed(.openReceived(peerOpen()))
        #expect(s.state == .openConfirm)
        #expect(s.sent.count == 2)  // OPEN then KEEPALIVE
        #expect(s.sent.last == .keepalive)
    }

    @Test func tcpFailureInConnectGoesActive() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.tcpConnectionFails)
        #expect(s.state == .active)
        s.advance(10)
        #expect(s.state == .connect)  // connect-retry expiry reconnects
    }

    @Test func tcpFailureInActiveGoesIdleThenRestarts() {
        var s = Simulation(configuration(active: false))
        s.feed(.manualStart)
        s.feed(.tcpConnectionFails)
        #expect(s.state == .idle)
        #expect(s.machine.connectRetryCounter == 1)
        s.advance(20)
        #expect(s.state == .active)  // the idle-hold timer restarted the passive session
    }

    @Test func manualStopStops() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.manualStop)
        #expect(s.state == .idle)
        s.advance(1000)
        #expect(s.state == .idle)  // no automatic restart after an operator stop
        #expect(s.sent.isEmpty)
    }

    @Test func unexpectedEventResets() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.keepaliveReceived)
        #expect(s.state == .idle)
        #expect(s.machine.connectRetryCounter == 1)
    }

    @Test func versionNotificationDuringDelayOpenIsNotCounted() {
        var s = Simulation(configuration(delayOpen: 3))
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        s.feed(.notificationReceived(NotificationMessage(code: .openMessageError, subcode: 1)))
        #expect(s.state == .idle)
        #expect(s.machine.connectRetryCounter == 0)
    }
}

@Suite("RFC 4271 §8.2.2: OpenSent")
struct OpenSentStateTests {
    func openSent() -> Simulation {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        return s
    }

    @Test func validOpenGoesToOpenConfirmWithNegotiatedTimers() {
        var s = openSent()
        s.feed(.openReceived(peerOpen(hold: 30)))
        #expect(s.state == .openConfirm)
        #expect(s.sent.last == .keepalive)
        #expect(s.timers[.hold] == 30)  // min(90, 30)
        #expect(s.timers[.keepalive] == 10)  // hold / 3
        #expect(s.machine.negotiated?.families == [.ipv4VPN, .evpn])
    }

    @Test func badPeerASIsRefused() {
        var s = openSent()
        s.feed(.openReceived(peerOpen(asn: 65000)))
        #expect(s.state == .idle)
        #expect(s.lastNotification?.code == .openMessageError && s.lastNotification?.subcode == 2)
    }

    @Test(arguments: [IPv4Address(0), local])
    func badBGPIdentifierIsRefused(id: IPv4Address) {
        var s = openSent()
        s.feed(.openReceived(peerOpen(id: id)))
        #expect(s.lastNotification?.code == .openMessageError && s.lastNotification?.subcode == 3)
    }

    @Test(arguments: [UInt16(1), 2])
    func unacceptableHoldTimeIsRefused(hold: UInt16) {
        var s = openSent()
        s.feed(.openReceived(peerOpen(hold: hold)))
        #expect(s.lastNotification?.code == .openMessageError && s.lastNotification?.subcode == 6)
    }

    @Test func noCommonFamilyIsUnsupportedCapability() {
        var s = openSent()
        s.feed(.openReceived(peerOpen(families: [.ipv6Unicast])))
        #expect(s.lastNotification?.code == .openMessageError && s.lastNotification?.subcode == 7)
        #expect(s.state == .idle)
    }

    @Test func holdTimerExpiryNotifies() {
        var s = openSent()
        s.advance(SessionStateMachine.openHoldTime)
        #expect(s.state == .idle)
        #expect(s.lastNotification?.code == .holdTimerExpired)
    }

    @Test func tcpFailureGoesActive() {
        var s = openSent()
        s.feed(.tcpConnectionFails)
        #expect(s.state == .active)
    }

    @Test func malformedMessageSendsItsNotification() {
        var s = openSent()
        let error = BGPDecodingError(.sessionReset(NotificationMessage(code: .messageHeaderError, subcode: 1)), "bad marker")
        s.feed(.decodingError(error))
        #expect(s.state == .idle)
        #expect(s.lastNotification?.code == .messageHeaderError)
    }

    @Test func unexpectedMessageIsAnFSMError() {
        var s = openSent()
        s.feed(.keepaliveReceived)
        #expect(s.lastNotification == NotificationMessage(code: .finiteStateMachineError, subcode: 1))
    }

    @Test func collisionDumpCeases() {
        var s = openSent()
        s.feed(.openCollisionDump)
        #expect(s.lastNotification == NotificationMessage(code: .cease, subcode: 7))
        #expect(s.state == .idle)
    }

    @Test func notificationReceivedResets() {
        var s = openSent()
        s.feed(.notificationReceived(NotificationMessage(code: .cease, subcode: 5)))
        #expect(s.state == .idle)
        #expect(s.machine.lastNotificationReceived?.subcode == 5)
    }
}

@Suite("RFC 4271 §8.2.2: OpenConfirm")
struct OpenConfirmStateTests {
    func openConfirm() -> Simulation {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        s.feed(.openReceived(peerOpen(hold: 30)))
        return s
    }

    @Test func keepaliveEstablishes() {
        var s = openConfirm()
        let actions = s.feed(.keepaliveReceived)
        #expect(s.state == .established)
        #expect(actions.contains { if case .established = $0 { return true } else { return false } })
    }

    @Test func keepaliveTimerSendsKeepalives() {
        var s = openConfirm()
        let before = s.sent.count
        s.advance(10)
        #expect(s.sent.count == before + 1 && s.sent.last == .keepalive)
    }

    @Test func holdTimerExpiry() {
        var s = openConfirm()
        s.advance(31)
        #expect(s.state == .idle)
        #expect(s.lastNotification?.code == .holdTimerExpired)
    }

    @Test func updateBeforeEstablishedIsAnFSMError() {
        var s = openConfirm()
        s.feed(.updateReceived(UpdateMessage()))
        #expect(s.lastNotification == NotificationMessage(code: .finiteStateMachineError, subcode: 2))
    }

    @Test func manualStopSendsCease() {
        var s = openConfirm()
        s.feed(.manualStop)
        #expect(s.lastNotification == NotificationMessage(code: .cease, subcode: 2))
        #expect(s.state == .idle)
    }
}

@Suite("RFC 4271 §8.2.2: Established")
struct EstablishedStateTests {
    @Test func keepalivesFlowAndHoldTimerIsRefreshed() {
        var s = established()
        for _ in 0..<10 {
            s.advance(9)
            s.feed(.keepaliveReceived)
        }
        #expect(s.state == .established)
        #expect(s.sent.filter { $0 == .keepalive }.count >= 10)
    }

    @Test func silenceExpiresTheHoldTimer() {
        var s = established()
        s.advance(30.01)
        #expect(s.state == .idle)
        #expect(s.lastNotification?.code == .holdTimerExpired)
        #expect(s.log.contains { if case .sessionDown = $0 { return true } else { return false } })
        // A session that was up tries again at once, not after the connect-retry backoff.
        s.advance(0.25)
        #expect(s.state == .connect)
    }

    @Test func updatesAreDeliveredAndRefreshTheHoldTimer() {
        var s = established()
        s.advance(25)
        let actions = s.feed(.updateReceived(UpdateMessage.endOfRIB(.evpn)))
        #expect(actions.contains(.deliverUpdate(UpdateMessage.endOfRIB(.evpn))))
        s.advance(25)
        #expect(s.state == .established)
    }

    @Test func treatAsWithdrawKeepsTheSession() {
        var s = established()
        let block = NLRIBlock(family: .ipv4Unicast, [.prefix(IPPrefix("10.0.0.0/8")!)])
        let actions = s.feed(.updateTreatedAsWithdraw([block], reason: "missing ORIGIN"))
        #expect(s.state == .established)
        #expect(actions.contains(.deliverWithdrawals([block], reason: "missing ORIGIN")))
        #expect(s.sent.allSatisfy { if case .notification = $0 { return false } else { return true } })
    }

    @Test func updateErrorResetsWithItsNotification() {
        var s = established()
        let notification = NotificationMessage(code: .updateMessageError, subcode: 1)
        s.feed(.decodingError(BGPDecodingError(.sessionReset(notification), "attribute list")))
        #expect(s.state == .idle)
        #expect(s.lastNotification == notification)
    }

    @Test func openIsAnFSMError() {
        var s = established()
        s.feed(.openReceived(peerOpen()))
        #expect(s.lastNotification == NotificationMessage(code: .finiteStateMachineError, subcode: 3))
    }

    @Test func maximumPrefixStopsWithCease1() {
        var s = established()
        s.feed(.automaticStop(NotificationMessage(code: .cease, subcode: 1)))
        #expect(s.lastNotification == NotificationMessage(code: .cease, subcode: 1))
        #expect(s.state == .idle)
        s.advance(120)
        #expect(s.state != .idle)  // restarted automatically
    }

    @Test func routeRefreshIsDelivered() {
        var s = established()
        let refresh = RouteRefreshMessage(family: .evpn)
        #expect(s.feed(.routeRefreshReceived(refresh)).contains(.deliverRouteRefresh(refresh)))
    }

    @Test func peerNotificationAndTCPLossTakeTheSessionDown() {
        for event: SessionStateMachine.Event in [.notificationReceived(.cease(subcode: 2, communication: "maintenance")), .tcpConnectionFails] {
            var s = established()
            let actions = s.feed(event)
            #expect(s.state == .idle)
            #expect(actions.contains { if case .sessionDown = $0 { return true } else { return false } })
        }
    }

    @Test func zeroHoldTimeMeansNoKeepalives() {
        var s = Simulation(configuration(hold: 0))
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        s.feed(.openReceived(peerOpen(hold: 30)))
        s.feed(.keepaliveReceived)
        #expect(s.state == .established)
        #expect(s.timers[.hold] == nil && s.timers[.keepalive] == nil)
        s.advance(100_000)
        #expect(s.state == .established)
    }
}

@Suite struct BackoffAndCollisionTests {
    @Test func retriesBackOffExponentiallyWithJitterUpToTheMaximum() {
        var s = Simulation(configuration())
        s.feed(.manualStart)
        var intervals: [Double] = []
        for _ in 0..<8 {
            s.feed(.tcpConnectionConfirmed)
            s.feed(.notificationReceived(NotificationMessage(code: .cease, subcode: 5)))
            let wait = s.timers[.idleHold]! - s.now
            intervals.append(wait)
            s.advance(wait)
        }
        // Base 5 s doubling per failure, jitter 0.75-1, capped at 60 s.
        for (i, wait) in intervals.enumerated() {
            let nominal = min(5 * pow2(i + 1), 60)
            #expect(wait >= 0.75 * nominal && wait <= nominal, "retry \(i): \(wait)")
        }
        // A session that establishes resets the backoff.
        s.feed(.tcpConnectionConfirmed)
        s.feed(.openReceived(peerOpen()))
        s.feed(.keepaliveReceived)
        #expect(s.machine.connectRetryCounter == 0)
    }

    func pow2(_ n: Int) -> Double { Double(1 << n) }

    @Test func higherIdentifierKeepsItsOwnConnection() {
        #expect(ConnectionCollision.keepsOutgoing(localID: IPv4Address(10, 0, 0, 2), remoteID: IPv4Address(10, 0, 0, 1)))
        #expect(!ConnectionCollision.keepsOutgoing(localID: IPv4Address(10, 0, 0, 1), remoteID: IPv4Address(10, 0, 0, 2)))
    }
}

@Suite struct NegotiationTests {
    @Test func contextsFollowBothOpens() throws {
        var config = configuration()
        config.addPathReceive = [.ipv4VPN]
        let open = OpenMessage(
            asn: 64512, holdTime: 180, bgpIdentifier: remote,
            capabilities: [.multiprotocol(.ipv4VPN), .multiprotocol(.evpn), .addPath([AddPathEntry(family: .ipv4VPN, mode: .both)]), .extendedMessage, .enhancedRouteRefresh, .routeRefresh])
        let session = try Negotiation.negotiate(local: config, peer: open).get()
        #expect(session.holdTime == 90)
        #expect(session.receiveContext.addPathFamilies == [.ipv4VPN])  // they send, we receive
        #expect(session.sendContext.addPathFamilies.isEmpty)  // we only offered receive
        #expect(session.receiveContext.maxMessageSize == 65535)
        #expect(session.receiveContext.fourOctetAS)
        #expect(session.routeRefresh && session.enhancedRouteRefresh)
    }

    @Test func aPeerWithoutFourOctetASUsesTwoByteASPaths() throws {
        let open = OpenMessage(myAS: 64512, holdTime: 90, bgpIdentifier: remote, optionalParameters: [.capabilities([.multiprotocol(.ipv4VPN)])])
        let session = try Negotiation.negotiate(local: configuration(), peer: open).get()
        #expect(!session.receiveContext.fourOctetAS && !session.sendContext.fourOctetAS)
    }

    @Test func unsupportedOptionalParameterIsRefused() {
        var open = peerOpen()
        open.optionalParameters.append(.unknown(type: 1, value: [0]))
        guard case .failure(let rejection) = Negotiation.negotiate(local: configuration(), peer: open) else { Issue.record("accepted"); return }
        #expect(rejection.notification.subcode == ErrorSubcode.unsupportedOptionalParameter)
    }
}

/// Every state against every kind of event, with the next state RFC 4271 §8.2.2 prescribes (RFC 6608
/// FSM errors where it says "any other event").
@Suite struct TransitionTableTests {
    enum Start: String, CaseIterable { case idle, connect, active, openSent, openConfirm, established }

    static let events: [(String, SessionStateMachine.Event)] = [
        ("ManualStart", .manualStart), ("ManualStop", .manualStop), ("AutomaticStop", .automaticStop(nil)),
        ("ConnectRetryTimer", .timerExpired(.connectRetry)), ("HoldTimer", .timerExpired(.hold)), ("KeepaliveTimer", .timerExpired(.keepalive)),
        ("TcpConnectionConfirmed", .tcpConnectionConfirmed), ("TcpConnectionFails", .tcpConnectionFails), ("BGPOpen", .openReceived(peerOpen())),
        ("BGPHeaderErr", .decodingError(BGPDecodingError(.sessionReset(NotificationMessage(code: .messageHeaderError, subcode: 1)), "marker"))),
        ("OpenCollisionDump", .openCollisionDump), ("NotifMsg", .notificationReceived(NotificationMessage(code: .cease, subcode: 5))),
        ("KeepAliveMsg", .keepaliveReceived), ("UpdateMsg", .updateReceived(UpdateMessage())), ("RouteRefresh", .routeRefreshReceived(RouteRefreshMessage(family: .ipv4VPN))),
    ]

    /// Expected next state, by start state, in the order of `events`.
    static let expected: [Start: [SessionStateMachine.State]] = [
        .idle: [.connect, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle],
        .connect: [.connect, .idle, .idle, .connect, .idle, .idle, .openSent, .active, .idle, .idle, .idle, .idle, .idle, .idle, .idle],
        .active: [.active, .idle, .idle, .active, .idle, .idle, .openSent, .idle, .idle, .idle, .idle, .idle, .idle, .idle, .idle],
        .openSent: [.openSent, .idle, .idle, .idle, .idle, .idle, .openSent, .active, .openConfirm, .idle, .idle, .idle, .idle, .idle, .idle],
        .openConfirm: [.openConfirm, .idle, .idle, .idle, .idle, .openConfirm, .openConfirm, .idle, .idle, .idle, .idle, .idle, .established, .idle, .idle],
        .established: [
            .established, .idle, .idle, .idle, .idle, .established, .established, .idle, .idle, .idle, .idle, .idle, .established, .established, .established,
        ],
    ]

    static func machine(in start: Start) -> Simulation {
        switch start {
        case .idle: return Simulation(configuration())
        case .connect:
            var s = Simulation(configuration())
            s.feed(.manualStart)
            return s
        case .active:
            var s = Simulation(configuration(active: false))
            s.feed(.manualStart)
            return s
        case .openSent:
            var s = Simulation(configuration())
            s.feed(.manualStart)
            s.feed(.tcpConnectionConfirmed)
            return s
        case .openConfirm:
            var s = machine(in: .openSent)
            s.feed(.openReceived(peerOpen()))
            return s
        case .established: return established()
        }
    }

    @Test(arguments: Start.allCases)
    func everyEventInEveryState(start: Start) throws {
        let expectations = try #require(Self.expected[start])
        for ((name, event), next) in zip(Self.events, expectations) {
            var s = Self.machine(in: start)
            #expect(s.state.rawValue.lowercased() == start.rawValue.lowercased())
            s.feed(event)
            #expect(s.state == next, "\(start) + \(name): \(s.state), expected \(next)")
            // Leaving a synchronized state because of an error always tells the peer why.
            if (start == .openSent || start == .openConfirm || start == .established) && next == .idle
                && !["TcpConnectionFails", "NotifMsg", "BGPHeaderErr"].contains(name)
            {
                #expect(s.lastNotification != nil, "\(start) + \(name) sent no NOTIFICATION")
            }
        }
    }
}
