import BGPWire

/// A local endpoint as the dataplane sees it.
public struct Endpoint: Sendable, Hashable {
    public var mac: MACAddress
    /// The address without its length (the original passes "ip-without-mask"); IPv4 or IPv6.
    public var ip: IPAddress?
    public var port: LocalPort
    public var label: UInt32
    public var direction: Direction

    public init(mac: MACAddress, ip: IPAddress?, port: LocalPort, label: UInt32, direction: Direction) {
        self.mac = mac
        self.ip = ip
        self.port = port
        self.label = label
        self.direction = direction
    }
}

/// A remote destination learned from a best route: a prefix (IP VPN) or a MAC (E-VPN).
public struct RemoteEndpoint: Sendable, Hashable {
    public enum Destination: Sendable, Hashable, CustomStringConvertible {
        case prefix(IPPrefix)
        case mac(MACAddress, ip: IPAddress?)

        public var description: String {
            switch self {
            case .prefix(let p): "\(p)"
            case .mac(let m, let ip): ip.map { "\(m) \($0)" } ?? "\(m)"
            }
        }
    }

    public var destination: Destination
    public var remotePE: IPv4Address
    /// A VNI (raw 24 bits) with VXLAN, else an MPLS label.
    public var label: UInt32
    public var encapsulations: [TunnelType]
    /// Consistent-hash sort order (load-balancing position), 0 when absent.
    public var loadBalancingOrder: UInt32

    public init(destination: Destination, remotePE: IPv4Address, label: UInt32, encapsulations: [TunnelType], loadBalancingOrder: UInt32) {
        self.destination = destination
        self.remotePE = remotePE
        self.label = label
        self.encapsulations = encapsulations
        self.loadBalancingOrder = loadBalancingOrder
    }
}

/// A remote VTEP of an E-VPN instance's flood list (from a type-3 route's PMSI tunnel).
public struct FloodEndpoint: Sendable, Hashable {
    public var remotePE: IPv4Address
    public var vni: UInt32
    public var encapsulations: [TunnelType]

    public init(remotePE: IPv4Address, vni: UInt32, encapsulations: [TunnelType]) {
        self.remotePE = remotePE
        self.vni = vni
        self.encapsulations = encapsulations
    }
}

/// What an attach may ask of the dataplane when it creates an instance.
public struct InstanceOptions: Sendable, Hashable {
    /// The `vni` the instance was created with, when forced.
    public var vni: UInt32?
    /// `linuxbr`: an existing Linux bridge for an E-VPN instance.
    public var linuxbr: String?
    /// A VRF's gateway address and subnet length (from its first attach).
    public var gateway: IPv4Address?
    public var prefixLength: UInt8?

    public init(vni: UInt32? = nil, linuxbr: String? = nil, gateway: IPv4Address? = nil, prefixLength: UInt8? = nil) {
        self.vni = vni
        self.linuxbr = linuxbr
        self.gateway = gateway
        self.prefixLength = prefixLength
    }
}

/// The veth pair that links an E-VPN instance into a VRF (reference §8.6): the E-VPN side joins the
/// EVI's bridge as its gateway port, the VRF side is plugged into the VRF like a VM port.
public struct GatewayLink: Sendable, Hashable {
    public var eviSide: String
    public var vrfSide: String

    /// `evpn<E>-ipvpn<V>` and `ipvpn<V>-evpn<E>`, as the original names them, while that fits the
    /// 15 characters of an interface name; beyond (the original then failed, quirk Q18) a fixed-width
    /// base-36 form: `e` or `v` and both ids in 7 characters each.
    public init(evi: UInt32, vrf: UInt32) {
        let (e, v) = ("evpn\(evi)-ipvpn\(vrf)", "ipvpn\(vrf)-evpn\(evi)")
        if e.utf8.count <= 15 {
            (eviSide, vrfSide) = (e, v)
        } else {
            func base36(_ n: UInt32) -> String {
                let s = String(n, radix: 36)
                return String(repeating: "0", count: 7 - s.count) + s
            }
            (eviSide, vrfSide) = ("e" + base36(evi) + base36(vrf), "v" + base36(vrf) + base36(evi))
        }
    }
}

/// What an instance needs from its dataplane (reference §9.1). A driver's instances are called on
/// the `DataplaneExecutor`; the VPN instances on the engine's loop call a `QueuedInstance`, which
/// turns each call into a `DataplaneRequest` (or, in unit tests, a driver directly).
public protocol DataplaneInstance: AnyObject {
    func plug(_ endpoint: Endpoint) throws
    /// Plugs, then calls `applied` once the dataplane has done it, with whether it succeeded: at
    /// once for a driver called directly, later (on the loop) for one behind the executor.
    func plug(_ endpoint: Endpoint, applied: @escaping (Bool) -> Void) throws
    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws
    func setUp(_ remote: RemoteEndpoint) throws
    func remove(_ remote: RemoteEndpoint) throws
    /// E-VPN flooding (type-3 routes).
    func addFlood(_ flood: FloodEndpoint) throws
    func removeFlood(_ flood: FloodEndpoint) throws
    /// IP VPN: steer traffic matching `classifier` into the VRF `redirectTo` (flowspec redirect).
    func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws
    func removeTrafficClassifier(_ classifier: TrafficClassifier) throws
    /// E-VPN: the instance's gateway port into a VRF (reference §8.6).
    func setGatewayPort(_ linuxif: String, gateway: IPAddress) throws
    func gatewayPortDown(_ linuxif: String) throws
    /// The `fallback` of an attach (only the IP VPN `ovs` driver acts on it).
    func updateFallback(_ fallback: JSONValue?)
    /// The instance stops: remove everything it installed.
    func cleanup()
    /// State for the looking glass.
    var lookingGlass: JSONValue { get }
}

/// A request a driver refuses because of what it asks (a port it cannot use, a VLAN that does not
/// match): the API answers 400 with the message, and the attach is undone.
public struct DataplaneRefusal: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a driver does not do.
public struct DataplaneNotSupported: Error, CustomStringConvertible {
    public var what: String
    public init(_ what: String) { self.what = what }
    public var description: String { "\(what) is not supported by this dataplane driver" }
}

extension DataplaneInstance {
    public func plug(_ endpoint: Endpoint, applied: @escaping (Bool) -> Void) throws {
        try plug(endpoint)
        applied(true)
    }
    public func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws { throw DataplaneNotSupported("traffic redirection") }
    public func removeTrafficClassifier(_ classifier: TrafficClassifier) throws { throw DataplaneNotSupported("traffic redirection") }
    public func addFlood(_ flood: FloodEndpoint) throws { throw DataplaneNotSupported("flooding") }
    public func removeFlood(_ flood: FloodEndpoint) throws { throw DataplaneNotSupported("flooding") }
    public func setGatewayPort(_ linuxif: String, gateway: IPAddress) throws {}
    public func gatewayPortDown(_ linuxif: String) throws {}
    public func updateFallback(_ fallback: JSONValue?) {}
}

/// A dataplane driver for one VPN type (reference §9.1). Called on the `DataplaneExecutor` only.
public protocol DataplaneDriver: AnyObject {
    var vpnType: VPNType { get }
    /// Encapsulations it can use, in order of preference.
    var encapsulations: [TunnelType] { get }
    /// Several best routes installed at once (ECMP); otherwise one best per destination.
    var supportsECMP: Bool { get }
    /// The tunnel endpoint advertised as next hop.
    var localAddress: IPv4Address { get }
    /// Directions it can forward (the original: only `both` except the IP VPN `ovs` driver).
    var directions: Set<Direction> { get }
    /// Wants a removal call per installed route when an instance stops (reference §7.3), instead of
    /// removing everything in `cleanup()`.
    var needsCleanupAssist: Bool { get }
    /// Removes leftovers of an earlier run (also `bagpipe-bgp-cleanup`). Errors are only logged.
    func resetState() throws
    /// Prepares the host, after `resetState`, before the first instance; an error fails that attach.
    func initialize() throws
    func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance
    /// The daemon stops, after its instances: what the driver shares between them goes.
    func stop()
    /// Creates (or recreates) the veth pair of an EVI-VRF link; `deleteGatewayLink` removes it.
    func createGatewayLink(_ link: GatewayLink) throws
    func deleteGatewayLink(_ link: GatewayLink)
    /// The driver's node of the looking glass (`/vpns/dataplane/drivers/<type>`).
    var lookingGlass: JSONValue { get }
    /// How often (seconds) `reconcile` runs once the driver is initialized; nil: never.
    var reconcileInterval: Double? { get }
    /// Installs again what the dataplane lost behind the driver's back (Open vSwitch forgets every
    /// rule when ovs-vswitchd restarts). Nil when nothing was missing, else what was done.
    func reconcile() throws -> String?
    /// Applies the changes the driver queued while routes were delivered (Open vSwitch: one
    /// `ovs-ofctl` bundle for a burst of routes, instead of a process per route).
    func flush()
}

extension DataplaneDriver {
    public var directions: Set<Direction> { [.both] }

    public func resetState() throws {}
    public func initialize() throws {}
    public func stop() {}
    public var needsCleanupAssist: Bool { false }
    public func createGatewayLink(_ link: GatewayLink) throws {}
    public func deleteGatewayLink(_ link: GatewayLink) {}
    public var reconcileInterval: Double? { nil }
    public func reconcile() throws -> String? { nil }
    public func flush() {}

    /// What every driver shows: its name, tunnel address and encapsulations.
    public var commonLookingGlass: [(String, JSONValue)] {
        [
            ("name", .string(String(describing: type(of: self)))), ("local_address", .string("\(localAddress)")),
            ("supported_encaps", .array(encapsulations.map { .string("\($0)") })), ("ecmp_support", .bool(supportsECMP)),
        ]
    }

    public var lookingGlass: JSONValue { .object(commonLookingGlass) }

    /// The encapsulations of a route that this driver can use: the route's (default when it names
    /// none) that the driver supports. Empty: the route cannot be used here.
    public func usableEncapsulations(_ communities: [ExtendedCommunity]) -> [TunnelType] {
        var advertised: [TunnelType] = communities.compactMap { if case .encapsulation(let t) = $0.kind { t } else { nil } }
        if advertised.isEmpty { advertised = [.default] }
        return encapsulations.filter { advertised.contains($0) }
    }
}
