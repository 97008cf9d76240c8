import BGPRoutes
import BGPSession
import BGPWire
import NIOCore

extension RouteEngine {
    // MARK: Subscriptions (local workers)

    /// Subscribes a local worker; it gets every stored route of the match it does not already get.
    public func subscribe(_ worker: WorkerID, to match: Match) {
        guard subscriptions[worker, default: []].insert(match).inserted else { return }
        subscribers[match, default: []].insert(worker)
        if let rt = match.routeTarget, Self.constrainedFamilies.contains(match.family) { importerAdded(rt) }
        guard let table = tables[match.family] else { return }
        for slot in slots(of: table, matching: match) {
            guard let d = table[slot] else { continue }
            for path in d.paths where path.source != worker && !receivesElsewhere(worker, path, family: match.family, except: match) && matches(match, path) {
                localEvents.append((worker, .advertise(route(match.family, path), replaced: nil)))
            }
        }
    }

    /// Unsubscribes; routes no other subscription of the worker covers are withdrawn from it.
    public func unsubscribe(_ worker: WorkerID, from match: Match) {
        guard subscriptions[worker]?.remove(match) != nil else { return }
        if subscriptions[worker]?.isEmpty == true { subscriptions[worker] = nil }
        subscribers[match]?.remove(worker)
        if subscribers[match]?.isEmpty == true { subscribers[match] = nil }
        if let rt = match.routeTarget, Self.constrainedFamilies.contains(match.family) { importerRemoved(rt) }
        guard let table = tables[match.family] else { return }
        for slot in slots(of: table, matching: match) {
            guard let d = table[slot] else { continue }
            for path in d.paths where path.source != worker && matches(match, path) && !receivesElsewhere(worker, path, family: match.family, except: nil) {
                localEvents.append((worker, .withdraw(route(match.family, path))))
            }
        }
    }

    /// Families whose imports are announced with RT-Constraint routes (not flowspec: RFC 4684 is
    /// about VPN routes, and the original did the same).
    static let constrainedFamilies: Set<AddressFamily> = [.ipv4VPN, .ipv6VPN, .evpn]

    func slots(of table: FamilyTable, matching match: Match) -> [Int32] {
        if let rt = match.routeTarget { return Array(table.byRouteTarget[rt] ?? []) }
        return table.liveSlots
    }

    func matches(_ match: Match, _ path: Path) -> Bool {
        guard let rt = match.routeTarget else { return true }
        return path.attributes.routeTargetKeys.contains(rt)
    }

    /// Whether another subscription of the worker (than `except`) already covers the path.
    func receivesElsewhere(_ worker: WorkerID, _ path: Path, family: AddressFamily, except: Match?) -> Bool {
        guard let subs = subscriptions[worker] else { return false }
        for m in subs where m != except && m.family == family && matches(m, path) { return true }
        return false
    }

    func interested(in path: Path, family: AddressFamily) -> Set<WorkerID> {
        if subscribers.isEmpty { return [] }  // a reflector: no local workers
        var out = subscribers[Match(family: family, routeTarget: nil)] ?? []
        for rt in path.attributes.routeTargetKeys { out.formUnion(subscribers[Match(family: family, routeTarget: rt)] ?? []) }
        out.remove(path.source)
        return out
    }

    // MARK: RT-Constraint origination

    func importerAdded(_ rt: RouteTargetKey) {
        importers[rt, default: 0] += 1
        guard importers[rt] == 1, configuration.routeTargetConstraint else { return }
        let set = AttributeSet(attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))], nextHop: .ipv4(configuration.localAddress))
        // The imported route target, as subscribed: never an export one (RustyBGP #537).
        let nlri = NLRI.routeTargetMembership(RouteTargetMembership(originAS: configuration.localAS, routeTarget: rt.community))
        setPath(.routeTargetConstraint, RouteKey(NLRIElement(nlri)), source: routeTargetConstraintWorker, pathID: 0, to: (NLRIElement(nlri), set))
    }

    func importerRemoved(_ rt: RouteTargetKey) {
        guard let n = importers[rt] else { return }
        importers[rt] = n > 1 ? n - 1 : nil
        guard n == 1, configuration.routeTargetConstraint else { return }
        let nlri = NLRI.routeTargetMembership(RouteTargetMembership(originAS: configuration.localAS, routeTarget: rt.community))
        setPath(.routeTargetConstraint, RouteKey(NLRIElement(nlri)), source: routeTargetConstraintWorker, pathID: 0, to: nil)
    }
}
