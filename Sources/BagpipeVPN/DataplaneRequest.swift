import BGPWire
import Dataplane

/// A dataplane instance as the BGP side names it to the executor: its VPN type and a serial number
/// that is never reused (instance ids are, once an instance stops).
public struct DataplaneInstanceRef: Sendable, Hashable, CustomStringConvertible {
    public let type: VPNType
    public let serial: UInt64
    public let id: UInt32

    public var description: String { "\(type.rawValue) instance \(id)" }
}

/// One piece of dataplane work, as a value: what the VPN instances (on the BGP event loop) ask of
/// the drivers, which run on the `DataplaneExecutor`. Requests are applied in the order they were
/// made, so make-before-break and every other ordering of the direct calls is kept.
public enum DataplaneRequest: Sendable, CustomStringConvertible {
    case makeInstance(DataplaneInstanceRef, externalID: String, label: UInt32, options: InstanceOptions)
    case plug(DataplaneInstanceRef, Endpoint)
    case unplug(DataplaneInstanceRef, Endpoint, lastEndpointOfPort: Bool)
    case setUp(DataplaneInstanceRef, RemoteEndpoint)
    case remove(DataplaneInstanceRef, RemoteEndpoint)
    case addFlood(DataplaneInstanceRef, FloodEndpoint)
    case removeFlood(DataplaneInstanceRef, FloodEndpoint)
    case addTrafficClassifier(DataplaneInstanceRef, TrafficClassifier, redirectTo: UInt32)
    case removeTrafficClassifier(DataplaneInstanceRef, TrafficClassifier)
    case setGatewayPort(DataplaneInstanceRef, linuxif: String, gateway: IPAddress)
    case gatewayPortDown(DataplaneInstanceRef, linuxif: String)
    case updateFallback(DataplaneInstanceRef, Fallback?)
    case cleanup(DataplaneInstanceRef)
    case createGatewayLink(VPNType, GatewayLink)
    case deleteGatewayLink(VPNType, GatewayLink)
    /// Applies what the driver queued (one Open vSwitch bundle per burst).
    case flush(VPNType)
    /// Checks the dataplane and installs again what it lost.
    case reconcile(VPNType)
    /// The daemon stops, after its instances.
    case stop(VPNType)

    public var description: String {
        switch self {
        case .makeInstance(let i, let external, let label, _): "create \(i) (\(external), label \(label))"
        case .plug(let i, let e): "plug \(e.mac) \(e.ip.map { "\($0)" } ?? "-") into \(i)"
        case .unplug(let i, let e, _): "unplug \(e.mac) \(e.ip.map { "\($0)" } ?? "-") from \(i)"
        case .setUp(let i, let r): "set up \(r.destination) via \(r.remotePE) in \(i)"
        case .remove(let i, let r): "remove \(r.destination) via \(r.remotePE) from \(i)"
        case .addFlood(let i, let f): "flood to \(f.remotePE) in \(i)"
        case .removeFlood(let i, let f): "stop flooding to \(f.remotePE) in \(i)"
        case .addTrafficClassifier(let i, let c, let to): "redirect \(c) from \(i) to instance \(to)"
        case .removeTrafficClassifier(let i, let c): "stop redirecting \(c) from \(i)"
        case .setGatewayPort(let i, let port, _): "gateway port \(port) of \(i)"
        case .gatewayPortDown(let i, let port): "gateway port \(port) of \(i) down"
        case .updateFallback(let i, _): "fallback of \(i)"
        case .cleanup(let i): "clean up \(i)"
        case .createGatewayLink(_, let l): "create link \(l.eviSide)/\(l.vrfSide)"
        case .deleteGatewayLink(_, let l): "delete link \(l.eviSide)/\(l.vrfSide)"
        case .flush(let t): "flush \(t.rawValue) driver"
        case .reconcile(let t): "reconcile \(t.rawValue) driver"
        case .stop(let t): "stop \(t.rawValue) driver"
        }
    }

    /// The driver that carries the request out.
    var vpnType: VPNType {
        switch self {
        case .makeInstance(let i, _, _, _), .plug(let i, _), .unplug(let i, _, _), .setUp(let i, _), .remove(let i, _), .addFlood(let i, _),
            .removeFlood(let i, _), .addTrafficClassifier(let i, _, _), .removeTrafficClassifier(let i, _), .setGatewayPort(let i, _, _),
            .gatewayPortDown(let i, _), .updateFallback(let i, _), .cleanup(let i):
            i.type
        case .createGatewayLink(let t, _), .deleteGatewayLink(let t, _), .flush(let t), .reconcile(let t), .stop(let t): t
        }
    }
}

/// What a driver is, as the BGP side needs to know it without calling it: read once, when the
/// driver is made on the executor.
public struct DriverTraits: Sendable {
    public var vpnType: VPNType
    public var encapsulations: [TunnelType]
    public var supportsECMP: Bool
    public var localAddress: IPv4Address
    public var directions: Set<Direction>
    public var needsCleanupAssist: Bool
    public var reconcileInterval: Double?
    public var name: String

    init(_ d: any DataplaneDriver) {
        vpnType = d.vpnType
        encapsulations = d.encapsulations
        supportsECMP = d.supportsECMP
        localAddress = d.localAddress
        directions = d.directions
        needsCleanupAssist = d.needsCleanupAssist
        reconcileInterval = d.reconcileInterval
        name = String(describing: type(of: d))
    }
}
