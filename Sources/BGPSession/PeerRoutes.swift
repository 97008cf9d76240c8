import BGPRoutes
import BGPWire

/// What a session does with the routes it receives, as a value: the Adj-RIB-In, the maximum-prefix
/// limits (RFC 4486), graceful-restart helper mode (RFC 4724 §4.2: a peer that went away without a
/// NOTIFICATION keeps its routes, stale, until its End-of-RIB or its restart time), and when our
/// End-of-RIB and EoRR (RFC 7313) are due. `BGPPeer` feeds it events and carries out its actions; it
/// does no I/O and has no timer of its own (the stale timer is an action).
public struct PeerRoutes: Sendable {
    public enum Action: Equatable, Sendable {
        /// What changed in the Adj-RIB-In, for the owner.
        case report(AddressFamily, [RouteChange])
        /// The peer finished its initial advertisement of a family.
        case endOfRIBReceived(AddressFamily)
        /// Stop the session with this Cease (too many routes), restarting after the delay.
        case stop(NotificationMessage, restartAfter: Double?)
        case log(LogLevel, String)
        /// (Re)arm the stale timer: `staleTimerExpired()` when it fires.
        case armStaleTimer(seconds: Double)
        case cancelStaleTimer
        /// Without an Adj-RIB-In: the owner keeps the peer's routes of these families, stale.
        case keepStale(Set<AddressFamily>)
        /// Without an Adj-RIB-In: the owner drops the peer's routes of the family that are still stale.
        case sweepStale(AddressFamily)
    }

    public enum LogLevel: Sendable { case notice, warning, error }

    public private(set) var ribIn: AdjRIBIn
    /// False: keep no Adj-RIB-In (as BIRD without an import table): every announce and withdraw is
    /// reported as received, and the owner, which stores the routes, drops them itself when the
    /// session goes down. Helper mode is then the owner's (`keepStale`, `sweepStale`); the
    /// maximum-prefix limits need the Adj-RIB-In and are off.
    public var keepsAdjRIBIn = true
    public let maxPrefixes: [AddressFamily: Int]
    /// The fraction of a limit at which a warning is logged (once per session and family).
    public let maxPrefixWarning: Double
    public let maxPrefixRestartTime: Double
    private var warnedPrefixes: Set<AddressFamily> = []
    /// Families kept stale for a restarting peer, swept when the stale timer fires.
    public private(set) var staleFamilies: Set<AddressFamily> = []
    /// Our End-of-RIB markers due once the initial advertisement is sent, and EoRR markers once a
    /// refresh is.
    public private(set) var endOfRIBDue: Set<AddressFamily> = []
    public private(set) var endOfRefreshDue: Set<AddressFamily> = []
    /// The peer's End-of-RIBs received in this session.
    public private(set) var endOfRIBReceived: Set<AddressFamily> = []

    /// `interner`: the speaker's (see `AttributeInterner`).
    public init(maxPrefixes: [AddressFamily: Int] = [:], maxPrefixWarning: Double = 0.8, maxPrefixRestartTime: Double = 60, interner: AttributeInterner = AttributeInterner()) {
        ribIn = AdjRIBIn(interner: interner)
        self.maxPrefixes = maxPrefixes
        self.maxPrefixWarning = maxPrefixWarning
        self.maxPrefixRestartTime = maxPrefixRestartTime
    }

    public init(_ configuration: SessionConfiguration, interner: AttributeInterner = AttributeInterner()) {
        self.init(
            maxPrefixes: configuration.maxPrefixes, maxPrefixWarning: configuration.maxPrefixWarning, maxPrefixRestartTime: configuration.maxPrefixRestartTime, interner: interner)
    }

    /// An UPDATE received while Established. `wantsChanges` false: nobody reads the changes of a
    /// peer without an Adj-RIB-In, so they are not computed.
    public mutating func received(_ update: UpdateMessage, wantsChanges: Bool = true) -> [Action] {
        if let family = update.endOfRIBFamily {
            endOfRIBReceived.insert(family)
            guard keepsAdjRIBIn else {
                guard staleFamilies.remove(family) != nil else { return [.endOfRIBReceived(family)] }
                return [.sweepStale(family)] + (staleFamilies.isEmpty ? [.cancelStaleTimer] : []) + [.endOfRIBReceived(family)]
            }
            var actions = report(family, ribIn.sweepStale(family))
            if !ribIn.tables.values.contains(where: { $0.values.contains { $0.stale } }) {
                staleFamilies = []
                actions.append(.cancelStaleTimer)
            }
            return actions + [.endOfRIBReceived(family)]
        }
        guard keepsAdjRIBIn else { return wantsChanges ? reports(AdjRIBIn.changes(in: update)) : [] }
        let changes = ribIn.apply(update)
        var actions = reports(changes)
        for family in changes.keys.sorted() {
            guard let limit = maxPrefixes[family] else { continue }
            let count = ribIn.count(family)
            if count > limit {
                // RFC 4486 §4: the data is the AFI, the SAFI and the limit.
                let data = bigEndianBytes(family.afi.rawValue) + [family.safi.rawValue] + bigEndianBytes(UInt32(truncatingIfNeeded: limit))
                actions.append(.log(.error, "\(count) \(family) routes from the peer, above the limit of \(limit): stopping the session (Cease 6/1)"))
                actions.append(.stop(NotificationMessage(code: .cease, subcode: NotificationMessage.CeaseSubcode.maximumPrefixesReached, data: data), restartAfter: maxPrefixRestartTime))
                return actions
            } else if Double(count) >= maxPrefixWarning * Double(limit), warnedPrefixes.insert(family).inserted {
                actions.append(.log(.warning, "\(count) \(family) routes from the peer: \(Int(maxPrefixWarning * 100))% of the limit of \(limit)"))
            }
        }
        return actions
    }

    /// An UPDATE that RFC 7606 treats as a withdraw of these NLRI.
    public mutating func treatedAsWithdraw(_ blocks: [NLRIBlock]) -> [Action] {
        reports(keepsAdjRIBIn ? ribIn.withdraw(blocks) : AdjRIBIn.withdrawals(blocks))
    }

    /// The session is up: a restarted peer that no longer preserves a family's forwarding state
    /// (RFC 4724 §4.2) has its stale routes of that family dropped now; End-of-RIB is due for each family.
    public mutating func established(_ session: NegotiatedSession) -> [Action] {
        warnedPrefixes = []
        let kept = Set(session.peerGracefulRestart?.families.filter(\.forwardingStatePreserved).map(\.family) ?? [])
        var actions: [Action] = []
        for family in ribIn.tables.keys.sorted() where !kept.contains(family) { actions += report(family, ribIn.sweepStale(family)) }
        if !keepsAdjRIBIn, !staleFamilies.isEmpty {
            for family in staleFamilies.subtracting(kept).sorted() {
                staleFamilies.remove(family)
                actions.append(.sweepStale(family))
            }
            if staleFamilies.isEmpty { actions.append(.cancelStaleTimer) }
        }
        endOfRIBDue = Set(session.families)
        endOfRefreshDue = []
        endOfRIBReceived = []
        return actions
    }

    /// The session went down. Without a NOTIFICATION from a peer that negotiated graceful restart,
    /// its routes stay, stale, for its restart time; otherwise they go.
    public mutating func down(graceful: Bool, gracefulRestart: GracefulRestartCapability?) -> [Action] {
        endOfRIBDue = []
        endOfRefreshDue = []
        if graceful, let gr = gracefulRestart, !gr.families.isEmpty, !keepsAdjRIBIn {
            staleFamilies = Set(gr.families.map(\.family))
            return [
                .log(.notice, "peer may be restarting: keeping its routes stale for \(gr.restartTime) s"), .keepStale(staleFamilies), .armStaleTimer(seconds: Double(gr.restartTime)),
            ]
        }
        guard keepsAdjRIBIn else {
            staleFamilies = []
            return []
        }
        if graceful, let gr = gracefulRestart, !gr.families.isEmpty {
            staleFamilies = Set(gr.families.map(\.family))
            ribIn.markStale(staleFamilies)
            return [.log(.notice, "peer may be restarting: keeping its routes stale for \(gr.restartTime) s"), .armStaleTimer(seconds: Double(gr.restartTime))]
        }
        staleFamilies = []
        return reports(ribIn.clear())
    }

    /// The restart time passed without the peer's End-of-RIB: its stale routes go.
    public mutating func staleTimerExpired() -> [Action] {
        let families = staleFamilies
        staleFamilies = []
        guard keepsAdjRIBIn else { return families.sorted().map { .sweepStale($0) } }
        return families.sorted().flatMap { report($0, ribIn.sweepStale($0)) }
    }

    /// The peer asked for a family again; with enhanced route refresh our answer ends with EoRR.
    public mutating func refreshRequested(_ family: AddressFamily, enhanced: Bool) {
        if enhanced { endOfRefreshDue.insert(family) }
    }

    /// Everything pending was sent: the End-of-RIB and EoRR markers due now, each once.
    /// `waitForMemberships`: the VPN families' End-of-RIB waits for the peer's RT-Constraint
    /// End-of-RIB (RFC 4684 §6): until the peer has said which route targets it wants, the VPN
    /// routes it wants are not sent yet, and an End-of-RIB would tell a restarting peer (or a
    /// helper) that routes it is about to receive are gone.
    /// `holdingVPN`: a restarting speaker holds the VPN families' End-of-RIB until it has its peers'
    /// routes; RT-Constraint's is never held (the peer's waits for it).
    public mutating func takeEndMarkers(waitForMemberships: Bool = false, holdingVPN: Bool = false) -> (endOfRIB: [AddressFamily], endOfRefresh: [AddressFamily]) {
        let held = holdingVPN || (waitForMemberships && !endOfRIBReceived.contains(.routeTargetConstraint))
        let ended = held ? endOfRIBDue.filter { $0 == .routeTargetConstraint } : endOfRIBDue
        endOfRIBDue.subtract(ended)
        defer { endOfRefreshDue = [] }
        return (ended.sorted(), endOfRefreshDue.sorted())
    }

    private func report(_ family: AddressFamily, _ changes: [RouteChange]) -> [Action] { changes.isEmpty ? [] : [.report(family, changes)] }
    private func reports(_ changes: [AddressFamily: [RouteChange]]) -> [Action] { changes.keys.sorted().flatMap { report($0, changes[$0] ?? []) } }
}
