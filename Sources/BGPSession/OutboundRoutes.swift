import BGPRoutes
import BGPWire
import NIOCore

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
