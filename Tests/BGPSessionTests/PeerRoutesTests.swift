import BGPRoutes
import BGPSession
import BGPWire
import NIOCore
import Testing

/// `PeerRoutes` without sockets: the maximum-prefix limits (RFC 4486), graceful-restart helper mode
/// (RFC 4724 §4.2, which the GoBGP, FRR and BIRD interop tests exercise with real restarts), and
/// End-of-RIB / EoRR bookkeeping (RFC 4724 §2, RFC 7313).
@Suite struct PeerRoutesTests {
    static let family = AddressFamily.ipv4VPN

    static func route(_ i: UInt8) -> NLRIElement {
        NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [100]), routeDistinguisher: .as2(64512, 10), prefix: IPPrefix(.v4(IPv4Address(10, 10, 0, i)), length: 32))))
    }

    /// An UPDATE announcing these routes, as the peer would send it (encoded, then decoded).
    static func announcing(_ routes: [UInt8]) throws -> UpdateMessage {
        let attributes = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
        let encoded = UpdateBuilder().announce(routes.map(route), family: family, nextHop: .forFamily(family, .v4(IPv4Address(192, 0, 2, 9))), attributes: attributes)
        guard encoded.count == 1, case .update(let update) = try BGPMessage.decode(encoded[0], context: .standard) else { throw Unexpected() }
        return update
    }

    struct Unexpected: Error {}

    /// A session negotiated with a peer whose OPEN carries this graceful-restart capability.
    static func session(gracefulRestart: GracefulRestartCapability? = nil) throws -> NegotiatedSession {
        let configuration = SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 1), families: [family, .evpn])
        let capabilities: [Capability] = [.multiprotocol(family), .multiprotocol(.evpn)] + (gracefulRestart.map { [.gracefulRestart($0)] } ?? [])
        return try Negotiation.negotiate(local: configuration, peer: OpenMessage(asn: 64512, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 2), capabilities: capabilities)).get()
    }

    static func restart(_ seconds: UInt16, preserved: Bool) -> GracefulRestartCapability {
        GracefulRestartCapability(restartTime: seconds, families: [.init(family: family, flags: preserved ? 0x80 : 0)])
    }

    /// The announced and withdrawn routes the actions report, by last octet.
    static func reported(_ actions: [PeerRoutes.Action]) -> (announced: [UInt8], withdrawn: [RouteKey]) {
        var announced: [UInt8] = [], withdrawn: [RouteKey] = []
        for case .report(_, let changes) in actions {
            for change in changes {
                switch change {
                case .announce(_, let element, _):
                    if case .vpnPrefix(let p) = element.nlri, case .v4(let a) = p.prefix.address { announced.append(UInt8(a.value & 0xFF)) }
                case .withdraw(let key): withdrawn.append(key)
                }
            }
        }
        return (announced, withdrawn)
    }

    @Test func maximumPrefixesWarnOnceThenStopWithCease61() throws {
        var routes = PeerRoutes(maxPrefixes: [Self.family: 3], maxPrefixWarning: 0.8, maxPrefixRestartTime: 30)
        #expect(Self.reported(routes.received(try Self.announcing([1, 2]))).announced == [1, 2])
        // 3 routes: at 80% of 3 (2.4) and more, one warning.
        let third = routes.received(try Self.announcing([3]))
        #expect(third.contains { if case .log(.warning, let m) = $0 { m.contains("3 ipv4-vpn routes") && m.contains("limit of 3") } else { false } })
        // The same count again: no second warning.
        #expect(!routes.received(try Self.announcing([3])).contains { if case .log = $0 { true } else { false } })
        // A fourth: Cease 6/1 with AFI 1, SAFI 128 and the limit (RFC 4486 §4), restart after 30 s.
        let over = routes.received(try Self.announcing([4]))
        let cease = NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.maximumPrefixesReached, data: [0, 1, 128, 0, 0, 0, 3])
        #expect(over.last == .stop(cease, restartAfter: 30), "\(over)")
        #expect(over.contains { if case .log(.error, _) = $0 { true } else { false } })
        // A new session warns again.
        _ = routes.down(graceful: false, gracefulRestart: nil)
        _ = routes.established(try Self.session())
        _ = routes.received(try Self.announcing([1, 2]))
        #expect(routes.received(try Self.announcing([3])).contains { if case .log(.warning, _) = $0 { true } else { false } })
    }

    @Test func aFamilyWithoutLimitIsNotCounted() throws {
        var routes = PeerRoutes(maxPrefixes: [.evpn: 1])
        let actions = routes.received(try Self.announcing([1, 2, 3]))
        #expect(!actions.contains { if case .stop = $0 { true } else { false } } && routes.ribIn.count(Self.family) == 3)
    }

    /// The helper keeps a restarting peer's routes, stale, until its End-of-RIB: what it sent again
    /// stays, the rest goes then, and the stale timer is cancelled.
    @Test func gracefulRestartHelperKeepsStaleRoutesUntilEndOfRIB() throws {
        var routes = PeerRoutes()
        _ = routes.established(try Self.session(gracefulRestart: Self.restart(120, preserved: false)))
        _ = routes.received(try Self.announcing([1, 2]))
        let down = routes.down(graceful: true, gracefulRestart: Self.restart(120, preserved: false))
        #expect(down.contains(.armStaleTimer(seconds: 120)) && Self.reported(down).withdrawn.isEmpty, "\(down)")
        #expect(routes.ribIn.count(Self.family) == 2 && routes.staleFamilies == [Self.family])
        // Back, forwarding state preserved: nothing is dropped at once.
        #expect(Self.reported(routes.established(try Self.session(gracefulRestart: Self.restart(120, preserved: true)))).withdrawn.isEmpty)
        _ = routes.received(try Self.announcing([1]))
        let end = routes.received(.endOfRIB(Self.family))
        #expect(Self.reported(end).withdrawn == [RouteKey(Self.route(2))], "\(end)")
        #expect(end.contains(.cancelStaleTimer) && end.last == .endOfRIBReceived(Self.family))
        #expect(routes.ribIn.count(Self.family) == 1)
    }

    @Test func staleRoutesGoWhenTheRestartTimeEnds() throws {
        var routes = PeerRoutes()
        _ = routes.received(try Self.announcing([1, 2]))
        _ = routes.down(graceful: true, gracefulRestart: Self.restart(60, preserved: true))
        #expect(Set(Self.reported(routes.staleTimerExpired()).withdrawn) == [RouteKey(Self.route(1)), RouteKey(Self.route(2))])
        #expect(routes.ribIn.count(Self.family) == 0 && routes.staleFamilies.isEmpty)
    }

    /// A peer that comes back without preserving the family's forwarding state loses its stale routes at once.
    @Test func aRestartedPeerThatLostForwardingStateLosesItsStaleRoutes() throws {
        var routes = PeerRoutes()
        _ = routes.received(try Self.announcing([1, 2]))
        _ = routes.down(graceful: true, gracefulRestart: Self.restart(60, preserved: true))
        #expect(Self.reported(routes.established(try Self.session(gracefulRestart: Self.restart(60, preserved: false)))).withdrawn.count == 2)
    }

    /// A NOTIFICATION, or no graceful restart: the routes go with the session.
    @Test(arguments: [(true, false), (false, true)])
    func routesGoWithTheSessionOtherwise(graceful: Bool, negotiated: Bool) throws {
        var routes = PeerRoutes()
        _ = routes.received(try Self.announcing([1, 2]))
        let down = routes.down(graceful: graceful, gracefulRestart: negotiated ? Self.restart(60, preserved: true) : nil)
        #expect(Self.reported(down).withdrawn.count == 2 && !down.contains { if case .armStaleTimer = $0 { true } else { false } })
    }

    @Test func endOfRIBIsDueOncePerFamilyAndEoRROnlyWithEnhancedRefresh() throws {
        var routes = PeerRoutes()
        _ = routes.established(try Self.session())
        let first = routes.takeEndMarkers()
        #expect(first.endOfRIB == [Self.family, .evpn].sorted() && first.endOfRefresh.isEmpty)
        #expect(routes.takeEndMarkers().endOfRIB.isEmpty)
        routes.refreshRequested(.evpn, enhanced: false)
        #expect(routes.takeEndMarkers().endOfRefresh.isEmpty)
        routes.refreshRequested(.evpn, enhanced: true)
        #expect(routes.takeEndMarkers().endOfRefresh == [.evpn])
        // Nothing is due across a session that went down.
        routes.refreshRequested(.evpn, enhanced: true)
        _ = routes.down(graceful: false, gracefulRestart: nil)
        let after = routes.takeEndMarkers()
        #expect(after.endOfRIB.isEmpty && after.endOfRefresh.isEmpty)
    }

    @Test func withoutAnAdjRIBInChangesAreReportedAndNothingIsKept() throws {
        var routes = PeerRoutes(maxPrefixes: [Self.family: 1])
        routes.keepsAdjRIBIn = false
        #expect(Self.reported(routes.received(try Self.announcing([1, 2, 3]))).announced == [1, 2, 3])
        #expect(routes.received(try Self.announcing([4]), wantsChanges: false).isEmpty)
        #expect(routes.ribIn.count(Self.family) == 0)
        #expect(routes.down(graceful: false, gracefulRestart: Self.restart(60, preserved: true)).isEmpty)
    }

    /// Helper mode without an Adj-RIB-In (our reflector): the owner keeps the routes, told when to
    /// sweep them — at the peer's End-of-RIB, at a new session without the F bit, at the restart time.
    @Test func withoutAnAdjRIBInTheOwnerKeepsTheRoutesStale() throws {
        var routes = PeerRoutes()
        routes.keepsAdjRIBIn = false
        let down = routes.down(graceful: true, gracefulRestart: Self.restart(60, preserved: true))
        #expect(down.contains(.keepStale([Self.family])) && down.contains(.armStaleTimer(seconds: 60)))
        #expect(routes.established(try Self.session(gracefulRestart: Self.restart(60, preserved: true))).isEmpty, "forwarding preserved: kept until End-of-RIB")
        #expect(routes.received(.endOfRIB(Self.family)) == [.sweepStale(Self.family), .cancelStaleTimer, .endOfRIBReceived(Self.family)])

        _ = routes.down(graceful: true, gracefulRestart: Self.restart(60, preserved: true))
        #expect(routes.established(try Self.session(gracefulRestart: Self.restart(60, preserved: false))) == [.sweepStale(Self.family), .cancelStaleTimer])

        _ = routes.down(graceful: true, gracefulRestart: Self.restart(60, preserved: true))
        #expect(routes.staleTimerExpired() == [.sweepStale(Self.family)])
        #expect(routes.down(graceful: false, gracefulRestart: Self.restart(60, preserved: true)).isEmpty, "a NOTIFICATION: nothing kept")
    }

    /// RFC 4684 §6: the VPN families' End-of-RIB waits for the peer's RT-Constraint End-of-RIB.
    @Test func vpnEndOfRIBWaitsForTheMemberships() throws {
        var routes = PeerRoutes()
        _ = routes.established(try Self.session())
        let first = routes.takeEndMarkers(waitForMemberships: true)
        #expect(first.endOfRIB.isEmpty, "no RT-Constraint End-of-RIB from the peer yet")
        _ = routes.received(.endOfRIB(.routeTargetConstraint))
        #expect(routes.takeEndMarkers(waitForMemberships: true).endOfRIB == [Self.family, .evpn].sorted())
        #expect(routes.takeEndMarkers(waitForMemberships: true).endOfRIB.isEmpty)
    }

    @Test func anUpdateTreatedAsWithdrawRemovesItsRoutes() throws {
        var routes = PeerRoutes()
        _ = routes.received(try Self.announcing([1, 2]))
        let update = try Self.announcing([2])
        let actions = routes.treatedAsWithdraw(update.announced)
        #expect(Self.reported(actions).withdrawn == [RouteKey(Self.route(2))] && routes.ribIn.count(Self.family) == 1)
    }
}

/// RFC 4271 §6.8 decisions, which `LoopbackSessionTests` exercise with two real speakers.
@Suite struct ConnectionCollisionTests {
    static let low = IPv4Address(10, 0, 0, 1), high = IPv4Address(10, 0, 0, 2)

    @Test func theConnectionOfTheHigherIdentifierStays() {
        #expect(ConnectionCollision.keepsOutgoing(localID: Self.high, remoteID: Self.low))
        #expect(!ConnectionCollision.keepsOutgoing(localID: Self.low, remoteID: Self.high))
        #expect(ConnectionCollision.resolve(ours: .openConfirm, localID: Self.high, remoteID: Self.low) == .keepOurs)
        #expect(ConnectionCollision.resolve(ours: .openSent, localID: Self.low, remoteID: Self.high) == .keepTheirs)
        #expect(ConnectionCollision.resolve(ours: .openSent, localID: Self.low, remoteID: nil) == .wait)
        // Ours failed meanwhile: theirs is the session.
        #expect(ConnectionCollision.resolve(ours: .active, localID: Self.high, remoteID: Self.low) == .keepTheirs)
    }

    @Test func anAcceptedConnectionDependsOnOurs() {
        #expect(ConnectionCollision.accept(ours: .active, oursHasPeer: nil, localID: Self.low, besideAlready: false) == .adopt)
        // Idle after a lost session takes the peer's connection (a restarted peer is back at once);
        // stopped by the operator, or held down after too many prefixes, it does not.
        #expect(ConnectionCollision.accept(ours: .idle, oursHasPeer: nil, localID: Self.low, besideAlready: false) == .adoptFromIdle)
        if case .refuse = ConnectionCollision.accept(ours: .idle, oursHasPeer: nil, localID: Self.low, besideAlready: false, administrativelyDown: true) {} else {
            Issue.record("a connection while administratively down was not refused")
        }
        #expect(ConnectionCollision.accept(ours: .openConfirm, oursHasPeer: Self.high, localID: Self.low, besideAlready: false) == .replaceOurs)
        if case .refuse = ConnectionCollision.accept(ours: .openConfirm, oursHasPeer: Self.low, localID: Self.high, besideAlready: false) {} else { Issue.record("kept the lower identifier's connection") }
        #expect(ConnectionCollision.accept(ours: .connect, oursHasPeer: nil, localID: Self.low, besideAlready: false) == .runBeside)
        #expect(ConnectionCollision.accept(ours: .openSent, oursHasPeer: nil, localID: Self.low, besideAlready: false) == .runBeside)
        if case .refuse = ConnectionCollision.accept(ours: .openSent, oursHasPeer: nil, localID: Self.low, besideAlready: true) {} else { Issue.record("a third connection was not refused") }
        if case .refuse = ConnectionCollision.accept(ours: .established, oursHasPeer: Self.high, localID: Self.low, besideAlready: false) {} else { Issue.record("a connection beside an established session was not refused") }
    }
}
