import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeAPI
import Dataplane
import Foundation
@testable import BagpipeVPN

/// A VPN manager on a real engine (no sockets), with the dummy drivers and one simulated peer that
/// receives everything and can send routes in. What the peer is sent is logged in order, so tests
/// can count advertisements and withdrawals as the original's tests count `_advertise_route` calls
/// (here after the engine has dropped identical re-advertisements, as it does on the wire).
final class ManagerHost {
    static let local = IPv4Address(192, 0, 2, 1), pe2 = IPv4Address(192, 0, 2, 2)

    enum Sent: CustomStringConvertible {
        case announce(AddressFamily, NLRIElement, AttributeSet)
        case withdraw(AddressFamily, NLRIElement)

        var description: String {
            switch self {
            case .announce(let f, let e, let a): "+\(f) \(VPNInstance.nlriText(e.nlri)) \(a.attributes.extendedCommunities)"
            case .withdraw(let f, let e): "-\(f) \(VPNInstance.nlriText(e.nlri))"
            }
        }
    }

    let engine = RouteEngine(configuration: .init(localAS: 64512, routerID: ManagerHost.local))
    let evpnDriver: DummyDriver
    let ipvpnDriver: DummyDriver
    let manager: VPNManager
    let peer: WorkerID
    /// Everything sent to the peer since `reset()`.
    var log: [Sent] = []
    /// What the peer holds.
    var held: [AddressFamily: [RouteKey: (NLRIElement, AttributeSet)]] = [:]

    init(cleanupAssist: Bool = false, ipv6VPN: Bool = true) {
        evpnDriver = DummyDriver(vpnType: .evpn, localAddress: Self.local, cleanupAssist: cleanupAssist)
        ipvpnDriver = DummyDriver(vpnType: .ipvpn, localAddress: Self.local, directions: [.both, .toPort, .fromPort], cleanupAssist: cleanupAssist)
        manager = VPNManager(configuration: .init(bgpAddress: Self.local, salt: "host-a", ipv6VPN: ipv6VPN), engine: engine, drivers: [.evpn: evpnDriver, .ipvpn: ipvpnDriver])
        peer = engine.addPeer(name: "192.0.2.100", source: PathSource(kind: .peer(external: false, client: false), routerID: IPv4Address(192, 0, 2, 100), address: IPv6Address(high: 0, low: 100)))
        engine.peerEstablished(peer, families: [.evpn, .ipv4VPN, .ipv6VPN, .ipv4FlowSpecVPN])
    }

    static func json(_ fields: [String: Any]) throws -> JSONValue {
        try JSONValue(parsing: Array(JSONSerialization.data(withJSONObject: fields)))
    }

    func attach(_ fields: [String: Any]) throws {
        try manager.attach(try AttachRequest(json: try Self.json(fields)))
        drain()
    }

    func detach(_ fields: [String: Any]) throws {
        try manager.detach(try DetachRequest(json: try Self.json(fields)))
        drain()
    }

    func drain() {
        var events = engine.takeLocalEvents()
        while !events.isEmpty {
            for (w, e) in events { manager.deliver(w, e) }
            events = engine.takeLocalEvents()
        }
        while let b = engine.takePending(peer: peer, limit: 100) {
            for (set, elements) in b.announce {
                for e in elements {
                    held[b.family, default: [:]][RouteKey(e)] = (e, set)
                    log.append(.announce(b.family, e, set))
                }
            }
            for e in b.withdraw {
                held[b.family]?[RouteKey(e)] = nil
                log.append(.withdraw(b.family, e))
            }
        }
    }

    func reset() { log = [] }

    /// Routes the peer sends us.
    func receive(_ family: AddressFamily, _ changes: [RouteChange]) {
        engine.receive(from: peer, family: family, changes)
        drain()
    }

    var announced: [(AddressFamily, NLRIElement, AttributeSet)] { log.compactMap { if case .announce(let f, let e, let a) = $0 { (f, e, a) } else { nil } } }
    var withdrawn: [(AddressFamily, NLRIElement)] { log.compactMap { if case .withdraw(let f, let e) = $0 { (f, e) } else { nil } } }

    func dummy(_ id: String) -> DummyInstance? {
        guard let i = manager.instance(id) else { return nil }
        return (i is EVPNInstance ? evpnDriver : ipvpnDriver).instances[i.id]
    }

    // MARK: Routes from the peer

    static func vpnRoute(
        _ prefix: String, rd: UInt16 = 1, label: UInt32 = 100, pe: IPv4Address = pe2, targets: [ExtendedCommunity], records: [ExtendedCommunity] = [], localPref: UInt32 = 100
    ) -> (AddressFamily, RouteChange) {
        guard let p = IPPrefix(prefix) else { fatalError("bad prefix \(prefix)") }
        let e = NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [label]), routeDistinguisher: .ipv4(pe, rd), prefix: p)))
        let attrs = [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(localPref)),
            PathAttribute(.extendedCommunities(targets + records.map(\.asRouteTargetRecord))),
        ]
        let nextHop: NextHop = p.isIPv4 ? .vpnIPv4(RouteDistinguisher(rawValue: 0), pe) : .vpnIPv6(RouteDistinguisher(rawValue: 0), IPv6Address(mapping: pe), linkLocal: nil)
        return (p.isIPv4 ? .ipv4VPN : .ipv6VPN, .announce(RouteKey(e), e, AttributeSet(attributes: attrs, nextHop: nextHop)))
    }

    static func flowRoute(_ classifier: TrafficClassifier, rd: UInt16 = 1, pe: IPv4Address = pe2, targets: [ExtendedCommunity], extra: [ExtendedCommunity] = []) -> (AddressFamily, RouteChange) {
        let e = NLRIElement(.flowSpec(FlowSpecRule(routeDistinguisher: .ipv4(pe, rd), components: classifier.flowSpecComponents)))
        let attrs = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.extendedCommunities(targets + extra))]
        return (.ipv4FlowSpecVPN, .announce(RouteKey(e), e, AttributeSet(attributes: attrs, nextHop: .none)))
    }

    func receive(_ route: (AddressFamily, RouteChange)) { receive(route.0, [route.1]) }
    func withdraw(_ route: (AddressFamily, RouteChange)) { receive(route.0, [.withdraw(route.1.key)]) }
}

extension AttributeSet {
    var targets: Set<ExtendedCommunity> { Set(attributes.extendedCommunities.filter(\.isRouteTarget)) }
    var records: Set<ExtendedCommunity> { Set(attributes.extendedCommunities.filter { $0.subtype == ExtendedCommunity.Subtype.routeTargetRecord }) }
}
