import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeVPN

/// The "whole path" of the dataplane benchmarks: routes from a reflector peer into an engine, the
/// instance's best-route tracking, its driver.
struct RoutePath {
    let engine: RouteEngine
    let peer: WorkerID
    let family: AddressFamily

    init(local: IPv4Address, family: AddressFamily) {
        engine = RouteEngine(configuration: .init(localAS: 64512, routerID: local))
        peer = engine.addPeer(name: "rr", source: PathSource(kind: .peer(external: false, client: false), routerID: IPv4Address(192, 0, 2, 254), address: IPv6Address(high: 0, low: 254)))
        engine.peerEstablished(peer, families: [family])
        self.family = family
    }

    /// The usual attributes of such a route, with its route target and encapsulation.
    static func attributes(_ routeTarget: ExtendedCommunity, _ encapsulation: TunnelType, nextHop: IPv4Address) -> AttributeSet {
        AttributeSet(
            attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100)), PathAttribute(.extendedCommunities([routeTarget, .encapsulation(encapsulation)]))],
            nextHop: .ipv4(nextHop))
    }

    /// The routes arrive from the peer; the instance gets what they cause.
    func receive(_ changes: [RouteChange], into instance: VPNInstance) {
        _ = engine.takeLocalEvents()
        engine.receive(from: peer, family: family, changes)
        for (w, event) in engine.takeLocalEvents() where w == instance.worker { instance.handle(event) }
    }
}
