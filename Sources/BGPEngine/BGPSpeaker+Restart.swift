import BGPSession
import BGPWire
import NIOCore

/// Our own graceful restart (RFC 4724 §4.1): a speaker that starts again with state to recover
/// (forwarding kept in its dataplane, or routes its helpers keep for it) waits until every peer
/// has sent its routes — its End-of-RIB for each family of the session — before it treats what it
/// did not receive again as gone. A reflector also holds its own End-of-RIB until then, so that
/// its clients do not sweep routes of other clients it has not learnt again yet. The selection
/// deferral time bounds the wait: a peer that never comes back does not hold the restart forever.
final class RestartProgress {
    let holdsEndOfRIB: Bool
    let promise: EventLoopPromise<Void>
    var done = false
    /// Families of the peers' sessions since the restart began, and their End-of-RIBs received.
    var families: [WorkerID: Set<AddressFamily>] = [:]
    var received: [WorkerID: Set<AddressFamily>] = [:]
    var timer: Scheduled<Void>?

    init(holdsEndOfRIB: Bool, promise: EventLoopPromise<Void>) {
        self.holdsEndOfRIB = holdsEndOfRIB
        self.promise = promise
    }

    /// A peer without graceful restart sends no End-of-RIB: its session being up is all there is.
    func established(_ peer: WorkerID, families: Set<AddressFamily>, sendsEndOfRIB: Bool) {
        self.families[peer] = families
        received[peer] = sendsEndOfRIB ? [] : families
    }
}

extension BGPSpeaker {
    /// Begins our restart, before the peers are added; the future completes (on the loop) once
    /// every configured peer has sent End-of-RIB for each family of its session, or after
    /// `deferral` seconds. `holdEndOfRIB` (a reflector): our VPN End-of-RIBs wait until then, and
    /// the default membership asks the clients for everything meanwhile.
    public func beginRestart(deferral: Double, holdEndOfRIB: Bool) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let progress = RestartProgress(holdsEndOfRIB: holdEndOfRIB, promise: self.eventLoop.makePromise())
            self.restart = progress
            for peer in self.peersOnLoop { peer.peer.holdsEndOfRIB = holdEndOfRIB }
            if holdEndOfRIB { self.onLoop { $0.restartingMembership = true } }
            progress.timer = self.eventLoop.scheduleTask(in: .nanoseconds(Int64(deferral * 1e9))) { [weak self] in
                self?.finishRestart("not every peer sent End-of-RIB within \(deferral) s")
            }
            return progress.promise.futureResult
        }
    }

    func endOfRIBReceived(from peer: WorkerID, family: AddressFamily) {
        guard let restart, !restart.done else { return }
        restart.received[peer, default: []].insert(family)
        checkRestart()
    }

    func checkRestart() {
        guard let restart, !restart.done else { return }
        let complete = peersOnLoop.allSatisfy { p in restart.families[p.worker].map { $0.isSubset(of: restart.received[p.worker] ?? []) } ?? false }
        if complete { finishRestart("End-of-RIB from every peer") }
    }

    func finishRestart(_ why: String) {
        guard let restart, !restart.done else { return }
        restart.done = true
        restart.timer?.cancel()
        for p in peersOnLoop {
            p.peer.restartFinished()
            p.peer.holdsEndOfRIB = false
        }
        if restart.holdsEndOfRIB { onLoop { $0.restartingMembership = false } }
        logger.notice("restart over: \(why)")
        restart.promise.succeed()
    }
}
