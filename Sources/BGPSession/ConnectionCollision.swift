import BGPWire

/// RFC 4271 §6.8 connection collisions, as decisions: which of two connections to the same peer
/// becomes the session. `BGPPeer` carries them out (closing, sending Cease 6/7, swapping machines).
public enum ConnectionCollision {
    /// What to do with a connection the peer opened, given the state of ours.
    public enum Accept: Equatable, Sendable {
        /// No connection of ours is in progress: the peer's is the session (§8.2.2, event 17).
        case adopt
        /// Idle between an automatic stop and the automatic restart: the peer's connection restarts
        /// the session now (a passive start, then event 17). Refusing it would keep a restarted peer
        /// out for the whole idle hold time, seconds in which its routes are stale or gone.
        case adoptFromIdle
        /// Ours is in OpenConfirm and the peer's identifier is higher: ours is dumped, the peer's kept.
        case replaceOurs
        /// Ours is being set up and the peer's identifier is not known yet: both run until an OPEN
        /// tells it (dropping ours now could drop the one the peer keeps).
        case runBeside
        /// Closed, for this reason.
        case refuse(String)
    }

    /// Which connection stays once the peer's identifier is known on either.
    public enum Resolution: Equatable, Sendable {
        /// No identifier yet: both run on.
        case wait
        /// Our identifier is higher: the peer's connection gets Cease 6/7.
        case keepOurs
        /// The peer's identifier is higher, or ours is gone: the peer's connection becomes the session.
        case keepTheirs
    }

    /// `administrativelyDown`: stopped by the operator, when Idle refuses every connection.
    public static func accept(
        ours: SessionStateMachine.State, oursHasPeer remoteID: IPv4Address?, localID: IPv4Address, besideAlready: Bool, administrativelyDown: Bool = false
    ) -> Accept {
        switch ours {
        case .active: return .adopt
        case .idle where !administrativelyDown: return .adoptFromIdle
        case .openConfirm:
            if let remoteID, !keepsOutgoing(localID: localID, remoteID: remoteID) { return .replaceOurs }
            return .refuse("connection collision: keeping our connection, closing the peer's")
        case .connect where !besideAlready, .openSent where !besideAlready: return .runBeside
        default: return .refuse("connection from the peer while \(ours.rawValue): closed")
        }
    }

    /// Ours in `ours`; the peer's identifier as either connection's OPEN told it.
    public static func resolve(ours: SessionStateMachine.State, localID: IPv4Address, remoteID: IPv4Address?) -> Resolution {
        guard ours == .openSent || ours == .openConfirm else { return .keepTheirs }
        guard let remoteID else { return .wait }
        return keepsOutgoing(localID: localID, remoteID: remoteID) ? .keepOurs : .keepTheirs
    }

    /// The connection opened by the speaker with the higher BGP identifier stays.
    public static func keepsOutgoing(localID: IPv4Address, remoteID: IPv4Address) -> Bool { localID.value > remoteID.value }
}
