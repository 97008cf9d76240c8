import BGPWire

/// A change to what a peer holds.
public enum RouteChange: Hashable, Sendable {
    case announce(RouteKey, NLRIElement, AttributeSet)
    case withdraw(RouteKey)

    public var key: RouteKey {
        switch self {
        case .announce(let k, _, _), .withdraw(let k): k
        }
    }
}
