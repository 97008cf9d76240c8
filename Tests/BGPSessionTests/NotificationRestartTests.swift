import BGPSession
import BGPWire
import Testing

/// RFC 8538: with the N bit on both sides, a session ended by a NOTIFICATION other than Hard Reset
/// is a graceful restart (the peer's routes stay, stale), an operator's stop says Hard Reset, and a
/// stop for a restart says Cease (Administrative Reset) instead of dropping the connection.
@Suite struct NotificationRestartTests {
    static func grConfiguration(notification: Bool = true) -> SessionConfiguration {
        var c = configuration()
        c.gracefulRestartTime = 120
        c.gracefulRestartNotification = notification
        return c
    }

    static func grOpen(notification: Bool) -> OpenMessage {
        let families: [AddressFamily] = [.ipv4VPN, .evpn]
        return OpenMessage(
            asn: 64512, holdTime: 30, bgpIdentifier: remote,
            capabilities: families.map { .multiprotocol($0) } + [.routeRefresh]
                + [.gracefulRestart(GracefulRestartCapability(flags: notification ? 0x4 : 0, restartTime: 120, families: [.init(family: .evpn, flags: 0x80)]))])
    }

    /// Established with graceful restart on both sides; `ours`/`theirs`: the N bit of each.
    static func session(ours: Bool = true, theirs: Bool = true) -> Simulation {
        var s = Simulation(grConfiguration(notification: ours))
        s.feed(.manualStart)
        s.feed(.tcpConnectionConfirmed)
        s.feed(.openReceived(grOpen(notification: theirs)))
        s.feed(.keepaliveReceived)
        return s
    }

    static func graceful(_ actions: [SessionStateMachine.Action]) -> Bool? {
        for case .sessionDown(_, let graceful) in actions { return graceful }
        return nil
    }

    @Test func ourOpenSetsTheNBit() {
        var sent: GracefulRestartCapability?
        for case .gracefulRestart(let gr) in Self.grConfiguration().openMessage.capabilities { sent = gr }
        #expect(sent?.notificationSupport == true)
        for case .gracefulRestart(let gr) in Self.grConfiguration(notification: false).openMessage.capabilities { sent = gr }
        #expect(sent?.notificationSupport == false)
    }

    @Test func negotiatedOnlyWhenBothSetIt() {
        for (ours, theirs) in [(true, true), (true, false), (false, true)] {
            let s = Self.session(ours: ours, theirs: theirs)
            #expect(s.state == .established)
            #expect(s.machine.negotiated?.notificationRestart == (ours && theirs), "ours \(ours), theirs \(theirs)")
        }
    }

    @Test func aNotificationOtherThanHardResetKeepsTheRoutes() {
        let received: [NotificationMessage] = [
            .cease(subcode: NotificationMessage.CeaseSubcode.administrativeReset, communication: "upgrade"),
            NotificationMessage(code: .updateMessageError, subcode: 1),
        ]
        for n in received {
            var s = Self.session()
            #expect(Self.graceful(s.feed(.notificationReceived(n))) == true, "\(n)")
            var without = Self.session(theirs: false)
            #expect(Self.graceful(without.feed(.notificationReceived(n))) == false, "without N: \(n)")
        }
        var hard = Self.session()
        let reset = NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.hardReset, data: [6, 2])
        #expect(Self.graceful(hard.feed(.notificationReceived(reset))) == false)
        // Errors we find and send a NOTIFICATION for keep the routes too.
        var fsm = Self.session()
        #expect(Self.graceful(fsm.feed(.openReceived(peerOpen()))) == true)
        #expect(fsm.lastNotification?.code == .finiteStateMachineError)
    }

    @Test func theOperatorsStopIsAHardReset() {
        var s = Self.session()
        #expect(Self.graceful(s.feed(.manualStop)) == false)
        #expect(s.lastNotification == NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.hardReset, data: [6, 2]))
        var without = Self.session(theirs: false)
        without.feed(.manualStop)
        #expect(without.lastNotification == NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.administrativeShutdown))
        var maximum = Self.session()
        #expect(Self.graceful(maximum.feed(.automaticStop(NotificationMessage(code: .cease, subcode: 1)))) == false)
        #expect(maximum.lastNotification == NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.hardReset, data: [6, 1]))
    }

    @Test func aStopForARestartSaysCeaseOnlyWithTheNBit() {
        var s = Self.session()
        let actions = s.feed(.restartStop)
        #expect(Self.graceful(actions) == true)
        #expect(s.lastNotification?.subcode == NotificationMessage.CeaseSubcode.administrativeReset)
        #expect(s.state == .idle && s.timers[.idleHold] == nil, "no reconnect while stopping")
        var without = Self.session(theirs: false)
        #expect(Self.graceful(without.feed(.restartStop)) == true)
        #expect(without.lastNotification == nil, "without N, the connection just closes")
        #expect(without.closes == 1)
    }
}
