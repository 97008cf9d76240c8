import BGPWire

/// What one BGP session is configured with (one peer).
public struct SessionConfiguration: Hashable, Sendable {
    public var localAS: UInt32
    public var peerAS: UInt32
    public var routerID: IPv4Address
    /// Families to negotiate (multiprotocol capabilities sent).
    public var families: [AddressFamily]
    /// Proposed hold time in seconds; 0 disables keepalives. RFC 4271 §4.2: 0 or at least 3.
    public var holdTime: UInt16
    /// Connect to the peer (true), or only wait for it to connect (false).
    public var active: Bool
    /// RFC 4271 §8.1.1 DelayOpen: seconds to wait for the peer's OPEN before sending ours (0: off).
    public var delayOpenTime: UInt16
    /// First connect-retry interval; doubles after each failure up to `connectRetryMaximum`.
    public var connectRetryTime: UInt16
    public var connectRetryMaximum: UInt16
    /// RFC 4724 graceful restart: restart time advertised (nil: capability not sent).
    public var gracefulRestartTime: UInt16?
    /// We are restarting (R bit): set in the OPENs of a daemon that started again with state to
    /// recover, until its restart is over. Implies `gracefulRestartPreservesForwarding`.
    public var gracefulRestartRestarting: Bool
    /// Our forwarding state survives the session going down and our restart (F bit per family):
    /// helpers keep our routes, stale, until our End-of-RIB instead of dropping them when the new
    /// session comes up (RFC 4724 §4.2).
    public var gracefulRestartPreservesForwarding = false
    /// RFC 8538 (N bit, with graceful restart): when the peer sets it too, a session ended by a
    /// NOTIFICATION other than Hard Reset is a restart like a lost connection (both sides keep
    /// the other's routes, stale), and an operator's stop says Hard Reset.
    public var gracefulRestartNotification = true
    /// Families for which we accept RFC 7911 path identifiers.
    public var addPathReceive: Set<AddressFamily>
    /// Offer RFC 8654 extended messages.
    public var extendedMessages: Bool
    /// Offer RFC 2918 / RFC 7313 route refresh.
    public var routeRefresh: Bool
    /// Per-family limits on the routes accepted from the peer: warn at `maxPrefixWarning` of the limit,
    /// stop with Cease 6/1 above it, restart after `maxPrefixRestartTime` seconds.
    public var maxPrefixes: [AddressFamily: Int] = [:]
    public var maxPrefixWarning: Double = 0.8
    public var maxPrefixRestartTime: Double = 60
    /// TCP MD5 signature password and GTSM (RFC 2385, RFC 5082).
    public var security = TransportSecurity()

    public init(
        localAS: UInt32, peerAS: UInt32, routerID: IPv4Address, families: [AddressFamily], holdTime: UInt16 = 90,
        active: Bool = true, delayOpenTime: UInt16 = 0, connectRetryTime: UInt16 = 5, connectRetryMaximum: UInt16 = 120,
        gracefulRestartTime: UInt16? = nil, gracefulRestartRestarting: Bool = false, addPathReceive: Set<AddressFamily> = [],
        extendedMessages: Bool = true, routeRefresh: Bool = true
    ) {
        self.localAS = localAS
        self.peerAS = peerAS
        self.routerID = routerID
        self.families = families
        self.holdTime = holdTime
        self.active = active
        self.delayOpenTime = delayOpenTime
        self.connectRetryTime = connectRetryTime
        self.connectRetryMaximum = connectRetryMaximum
        self.gracefulRestartTime = gracefulRestartTime
        self.gracefulRestartRestarting = gracefulRestartRestarting
        self.addPathReceive = addPathReceive
        self.extendedMessages = extendedMessages
        self.routeRefresh = routeRefresh
    }

    public var isInternal: Bool { localAS == peerAS }

    /// The OPEN this configuration sends.
    public var openMessage: OpenMessage {
        var capabilities: [Capability] = families.map { .multiprotocol($0) }
        if routeRefresh { capabilities += [.routeRefresh, .enhancedRouteRefresh] }
        capabilities.append(.fourOctetAS(localAS))
        if let time = gracefulRestartTime {
            capabilities.append(
                .gracefulRestart(
                    GracefulRestartCapability(
                        flags: (gracefulRestartRestarting ? 0x8 : 0) | (gracefulRestartNotification ? 0x4 : 0), restartTime: time,
                        // After a restart the dataplane has kept forwarding: say so per family (F bit),
                        // or helpers drop our stale routes at once (RFC 4724 §4.2).
                        families: families.map { .init(family: $0, flags: gracefulRestartRestarting || gracefulRestartPreservesForwarding ? 0x80 : 0) })))
        }
        if !addPathReceive.isEmpty {
            capabilities.append(.addPath(families.filter { addPathReceive.contains($0) }.map { AddPathEntry(family: $0, mode: .receive) }))
        }
        if extendedMessages { capabilities.append(.extendedMessage) }
        return OpenMessage(asn: localAS, holdTime: holdTime, bgpIdentifier: routerID, capabilities: capabilities)
    }
}
