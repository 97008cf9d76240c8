import BGPWire

/// What an established session agreed on, from both OPENs.
public struct NegotiatedSession: Hashable, Sendable {
    public var peerAS: UInt32
    public var peerRouterID: IPv4Address
    /// min(ours, theirs); 0 means no keepalives and no hold timer.
    public var holdTime: UInt16
    public var keepaliveInterval: UInt16 { holdTime / 3 }
    /// Families both sides announced.
    public var families: [AddressFamily]
    /// How to read what the peer sends, and how to write what we send.
    public var receiveContext: WireContext
    public var sendContext: WireContext
    public var routeRefresh: Bool
    public var enhancedRouteRefresh: Bool
    /// The peer's graceful restart capability, if it sent one.
    public var peerGracefulRestart: GracefulRestartCapability?
    /// Both sent the N bit (RFC 8538): NOTIFICATIONs other than Hard Reset restart gracefully.
    public var notificationRestart = false
    public var peerOpen: OpenMessage
}

/// Why a peer's OPEN was refused: the NOTIFICATION that says so.
public struct OpenRejection: Error, Hashable, Sendable {
    public var notification: NotificationMessage
}

/// OPEN checks (RFC 4271 §6.2, RFC 5492, RFC 6286) and capability negotiation, as pure functions.
public enum Negotiation {
    /// Validates the peer's OPEN against the configuration: the NOTIFICATION to send when it is not
    /// acceptable, else what was negotiated.
    public static func negotiate(local configuration: SessionConfiguration, peer open: OpenMessage) -> Result<NegotiatedSession, OpenRejection> {
        // RFC 6793 §4.1: the AS is the 4-octet capability's when present.
        if open.asn != configuration.peerAS {
            return .failure(OpenRejection(notification: NotificationMessage(code: .openMessageError, subcode: ErrorSubcode.badPeerAS, data: bigEndianBytes(UInt16(truncatingIfNeeded: open.myAS)))))
        }
        // RFC 6286 §2.2: a zero identifier, or ours on an internal session, is bad.
        if open.bgpIdentifier.value == 0 || (configuration.isInternal && open.bgpIdentifier == configuration.routerID) {
            return .failure(OpenRejection(notification: NotificationMessage(code: .openMessageError, subcode: ErrorSubcode.badBGPIdentifier, data: bigEndianBytes(open.bgpIdentifier.value))))
        }
        // RFC 4271 §6.2: hold time 1 or 2 is unacceptable.
        if open.holdTime == 1 || open.holdTime == 2 {
            return .failure(OpenRejection(notification: NotificationMessage(code: .openMessageError, subcode: ErrorSubcode.unacceptableHoldTime)))
        }
        for case .unknown(let type, _) in open.optionalParameters {
            return .failure(OpenRejection(notification: NotificationMessage(code: .openMessageError, subcode: ErrorSubcode.unsupportedOptionalParameter, data: [type])))
        }
        let theirs = open.capabilities
        let peerFamilies = Set(theirs.compactMap { c -> AddressFamily? in if case .multiprotocol(let f) = c { return f } else { return nil } })
        // RFC 4760 §8: without multiprotocol capabilities a speaker does IPv4 unicast only.
        let offered = peerFamilies.isEmpty ? [AddressFamily.ipv4Unicast] : peerFamilies
        let families = configuration.families.filter { offered.contains($0) }
        if families.isEmpty {
            // RFC 5492 §5: nothing in common; tell the peer which families we need.
            let data = configuration.families.flatMap { Capability.multiprotocol($0).encodedBytes }
            return .failure(OpenRejection(notification: NotificationMessage(code: .openMessageError, subcode: ErrorSubcode.unsupportedCapability, data: data)))
        }
        let ours = configuration.openMessage.capabilities
        let receive = WireContext(sender: open, receiver: configuration.openMessage)
        let send = WireContext(sender: configuration.openMessage, receiver: open)
        var gracefulRestart: GracefulRestartCapability? = nil
        for case .gracefulRestart(let gr) in theirs { gracefulRestart = gr }
        var session =
            NegotiatedSession(
                peerAS: open.asn, peerRouterID: open.bgpIdentifier,
                holdTime: min(configuration.holdTime, open.holdTime), families: families, receiveContext: receive, sendContext: send,
                routeRefresh: ours.contains(.routeRefresh) && theirs.contains { $0 == .routeRefresh || $0.code == 128 },
                enhancedRouteRefresh: ours.contains(.enhancedRouteRefresh) && theirs.contains(.enhancedRouteRefresh),
                peerGracefulRestart: gracefulRestart, peerOpen: open)
        session.notificationRestart = configuration.gracefulRestartTime != nil && configuration.gracefulRestartNotification && gracefulRestart?.notificationSupport == true
        return .success(session)
    }
}
