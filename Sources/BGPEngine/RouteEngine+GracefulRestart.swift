import BGPRoutes
import BGPWire

/// Graceful-restart helper mode (RFC 4724 §4.2) for peers whose routes live in the Loc-RIB only
/// (a reflector keeps no Adj-RIB-In): when such a peer goes away without a NOTIFICATION, its paths
/// stay in place, marked stale, and go only if it does not send them again before its End-of-RIB
/// (or its restart time). The peer's session decides when (`PeerRoutes`); the engine keeps the marks.
extension RouteEngine {
    struct StalePath: Hashable {
        var key: RouteKey
        var pathID: UInt32
    }

    /// The peer's paths of `families` are stale from now on (call before `peerDown`, which then keeps them).
    public func markStale(_ peer: WorkerID, families: Set<AddressFamily>) {
        staleOnDown.insert(peer)
        stalePaths[peer] = [:]
        for family in families {
            var marked = Set<StalePath>()
            if let table = tables[family] {
                for slot in 0..<Int32(table.slotCount) {
                    guard let d = table[slot] else { continue }
                    for path in d.paths where path.source == peer { marked.insert(StalePath(key: d.key, pathID: path.pathID)) }
                }
            }
            stalePaths[peer, default: [:]][family] = marked
        }
    }

    /// The peer's paths of `family` it has not sent again go; returns how many.
    @discardableResult
    public func sweepStale(_ peer: WorkerID, family: AddressFamily) -> Int {
        guard let marked = stalePaths[peer]?.removeValue(forKey: family) else { return 0 }
        if stalePaths[peer]?.isEmpty == true { stalePaths[peer] = nil }
        for path in marked { setPath(family, path.key, source: peer, pathID: path.pathID, to: nil) }
        return marked.count
    }

    /// Stale paths per peer and family (the looking glass, tests).
    public func staleCount(_ peer: WorkerID) -> Int { stalePaths[peer]?.values.reduce(0) { $0 + $1.count } ?? 0 }

    /// A path the peer sent again (or withdrew) is no longer stale.
    func refreshed(_ peer: WorkerID, _ family: AddressFamily, _ key: RouteKey, _ pathID: UInt32) {
        stalePaths[peer]?[family]?.remove(StalePath(key: key, pathID: pathID))
    }
}
