import BGPSession
import BGPWire

/// What the decision process needs to know about where a path came from.
public struct PathSource: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Originated here (a VPN instance, the RT-Constraint originator).
        case local
        /// Learned from a BGP peer.
        case peer(external: Bool, client: Bool)
    }

    public var kind: Kind
    /// The peer's BGP identifier (ours for local routes).
    public var routerID: IPv4Address
    /// The peer's address, as 16 bytes for the last tie-break (RFC 4271 §9.1.2.2 g).
    public var address: IPv6Address

    public init(kind: Kind, routerID: IPv4Address, address: IPv6Address) {
        self.kind = kind
        self.routerID = routerID
        self.address = address
    }

    var isLocal: Bool { kind == .local }
}

/// The RFC 4271 §9.1.2.2 decision process, with the RFC 4456 §9 changes: ORIGINATOR_ID stands in
/// for the BGP identifier, and a shorter CLUSTER_LIST wins before the peer address.
/// Locally originated paths win first (as a weight would), so a host prefers its own routes.
enum DecisionProcess {
    /// True when `a` is better than `b`.
    static func prefers(_ a: Path, _ sa: PathSource, over b: Path, _ sb: PathSource) -> Bool {
        if sa.isLocal != sb.isLocal { return sa.isLocal }
        let (x, y) = (a.attributes.attributes, b.attributes.attributes)
        let lpa = x.localPreference ?? 100, lpb = y.localPreference ?? 100
        if lpa != lpb { return lpa > lpb }
        let asa = x.asPath?.pathLength ?? 0, asb = y.asPath?.pathLength ?? 0
        if asa != asb { return asa < asb }
        let oa = x.origin?.rawValue ?? 2, ob = y.origin?.rawValue ?? 2
        if oa != ob { return oa < ob }
        // MED only between paths from the same neighbouring AS (RFC 4271 §9.1.2.2 c).
        if neighbourAS(x) == neighbourAS(y) {
            let ma = x.multiExitDiscriminator ?? 0, mb = y.multiExitDiscriminator ?? 0
            if ma != mb { return ma < mb }
        }
        let ea = sa.kind == .peer(external: true, client: false) || sa.kind == .peer(external: true, client: true)
        let eb = sb.kind == .peer(external: true, client: false) || sb.kind == .peer(external: true, client: true)
        if ea != eb { return ea }
        let ida = x.originatorID ?? sa.routerID, idb = y.originatorID ?? sb.routerID
        if ida != idb { return ida.value < idb.value }
        let ca = x.clusterList.count, cb = y.clusterList.count
        if ca != cb { return ca < cb }
        if sa.address != sb.address { return (sa.address.high, sa.address.low) < (sb.address.high, sb.address.low) }
        // Same peer, several paths (add-path): lowest path identifier, so the choice is stable.
        return a.pathID < b.pathID
    }

    static func neighbourAS(_ attributes: [PathAttribute]) -> UInt32? {
        attributes.asPath?.segments.first(where: { $0.type == .sequence })?.asns.first
    }

    /// Index of the best path among those `eligible` accepts, or -1.
    static func best(of paths: PathList, sources: (WorkerID) -> PathSource, eligible: (Path) -> Bool = { _ in true }) -> Int {
        var best = -1
        var bestSource: PathSource?
        for (i, p) in paths.enumerated() where eligible(p) {
            let s = sources(p.source)
            if let bs = bestSource, best >= 0, !prefers(p, s, over: paths[best], bs) { continue }
            best = i
            bestSource = s
        }
        return best
    }
}
