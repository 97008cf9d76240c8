import BGPWire
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Received routes (decided by `PeerRoutes`) and sending: route refresh, the Adj-RIB-Out or the
/// engine's outbound routes, End-of-RIB and EoRR; on the peer's loop.
extension BGPPeer {
    /// Carries out what `PeerRoutes` decided.
    func apply(_ actions: [PeerRoutes.Action]) {
        for action in actions {
            switch action {
            case .report(let family, let changes): onRoutes?(family, changes)
            case .endOfRIBReceived(let family):
                onEndOfRIB(family)
                // The peer's memberships are all in: the VPN routes they let through, then their End-of-RIB.
                if family == .routeTargetConstraint { flush() }
            case .stop(let notification, let restartAfter): handle(.automaticStop(notification, restartAfter: restartAfter))
            case .log(.notice, let message): logger.notice("\(message)")
            case .log(.warning, let message): logger.warning("\(message)")
            case .log(.error, let message): logger.error("\(message)")
            case .armStaleTimer(let seconds):
                staleTimer?.cancel()
                staleTimer = eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [weak self] in
                    guard let self else { return }
                    self.staleTimer = nil
                    self.apply(self.routes.staleTimerExpired())
                }
            case .cancelStaleTimer:
                staleTimer?.cancel()
                staleTimer = nil
            case .keepStale(let families): onKeepStale(families)
            case .sweepStale(let family): onSweepStale(family)
            }
        }
    }

    /// RFC 2918 / RFC 7313: the peer wants a family again; with enhanced route refresh, between BoRR
    /// and EoRR.
    func answerRefresh(_ refresh: RouteRefreshMessage) {
        guard let session = machine.negotiated, session.families.contains(refresh.family), refresh.subtype == .request else {
            // A BoRR/EoRR from the peer brackets its own re-advertisement: stale marking is not needed
            // for correctness here, since replacements overwrite and its EoRR ends the refresh.
            return
        }
        if session.enhancedRouteRefresh {
            perform(.send(.routeRefresh(RouteRefreshMessage(family: refresh.family, subtype: .beginningOfRouteRefresh))))
            routes.refreshRequested(refresh.family, enhanced: true)
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
    func flush() {
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
            // No deadlock between two restarting speakers: RT-Constraint's End-of-RIB is never held.
            let waits = session.families.contains(.routeTargetConstraint) && session.peerGracefulRestart != nil
            let markers = routes.takeEndMarkers(waitForMemberships: waits, holdingVPN: holdsEndOfRIB)
            for family in markers.endOfRIB {
                channel.write(BGPMessage.update(.endOfRIB(family)).encoded(context: session.sendContext), promise: nil)
                sent += 1
            }
            for family in markers.endOfRefresh {
                let endOfRefresh = BGPMessage.routeRefresh(RouteRefreshMessage(family: family, subtype: .endOfRouteRefresh))
                channel.write(endOfRefresh.encoded(), promise: nil)
                statistics.messagesSent[endOfRefresh.typeName, default: 0] += 1
                endedRefreshes += 1
            }
        }
        if sent > 0 { statistics.messagesSent["update", default: 0] += sent }
        if sent + endedRefreshes > 0 { channel.flush() }
    }
}
