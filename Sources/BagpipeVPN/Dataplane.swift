import BGPWire

/// A local endpoint as the dataplane sees it.
public struct Endpoint: Sendable, Hashable {
    public var mac: MACAddress
    /// The address without its length (the original passes "ip-without-mask").
    public var ip: IPv4Address?
    public var port: LocalPort
    public var label: UInt32
    public var direction: Direction

    public init(mac: MACAddress, ip: IPv4Address?, port: LocalPort, label: UInt32, direction: Direction) {
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

    public init(vni: UInt32? = nil, linuxbr: String? = nil) {
        self.vni = vni
        self.linuxbr = linuxbr
    }
}

/// What an instance needs from its dataplane (reference §9.1). Called on the engine's loop.
public protocol DataplaneInstance: AnyObject {
    func plug(_ endpoint: Endpoint) throws
    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws
    func setUp(_ remote: RemoteEndpoint) throws
    func remove(_ remote: RemoteEndpoint) throws
    /// E-VPN flooding (type-3 routes).
    func addFlood(_ flood: FloodEndpoint) throws
    func removeFlood(_ flood: FloodEndpoint) throws
    /// The instance stops: remove everything it installed.
    func cleanup()
    /// State for the looking glass.
    var lookingGlass: JSONValue { get }
}

/// A dataplane driver for one VPN type (reference §9.1).
public protocol DataplaneDriver: AnyObject {
    var vpnType: VPNType { get }
    /// Encapsulations it can use, in order of preference.
    var encapsulations: [TunnelType] { get }
    /// Several best routes installed at once (ECMP); otherwise one best per destination.
    var supportsECMP: Bool { get }
    /// The tunnel endpoint advertised as next hop.
    var localAddress: IPv4Address { get }
    /// Directions it can forward (the original: only `both` except the IP VPN `ovs` driver).
    func validate(_ direction: Direction) throws(APIError)
    /// Removes leftovers of an earlier run (also `bagpipe-bgp-cleanup`).
    func resetState() throws
    func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance
}

extension DataplaneDriver {
    public func validate(_ direction: Direction) throws(APIError) {
        guard direction == .both else { throw APIError("Unsupported direction: \(direction.rawValue)") }
    }

    public func resetState() throws {}

    /// The encapsulations of a route that this driver can use: the route's (default when it names
    /// none) that the driver supports. Empty: the route cannot be used here.
    public func usableEncapsulations(_ communities: [ExtendedCommunity]) -> [TunnelType] {
        var advertised: [TunnelType] = communities.compactMap { if case .encapsulation(let t) = $0.kind { t } else { nil } }
        if advertised.isEmpty { advertised = [.default] }
        return encapsulations.filter { advertised.contains($0) }
    }
}

/// The dummy drivers (reference §9.2): they install nothing but keep what they were asked, which
/// the looking glass shows and the tests read.
public final class DummyDriver: DataplaneDriver {
    public let vpnType: VPNType
    public let encapsulations: [TunnelType]
    public let supportsECMP: Bool
    public let localAddress: IPv4Address
    public private(set) var instances: [UInt32: DummyInstance] = [:]

    /// Directions it forwards (the original's dummies: `both` only).
    public let directions: Set<Direction>

    /// `ecmp` and `directions`: behave as a driver that has them (as the IP VPN `ovs` driver does).
    public init(vpnType: VPNType, localAddress: IPv4Address, ecmp: Bool = false, directions: Set<Direction> = [.both]) {
        self.vpnType = vpnType
        self.localAddress = localAddress
        supportsECMP = ecmp
        self.directions = directions
        // As the original: E-VPN over VXLAN only; IP VPN default and MPLS.
        encapsulations = vpnType == .evpn ? [.vxlan] : [.default, .mpls]
    }

    public func validate(_ direction: Direction) throws(APIError) {
        guard directions.contains(direction) else { throw APIError("Unsupported direction: \(direction.rawValue)") }
    }

    public func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        let instance = DummyInstance(id: id, externalID: externalID, label: label, options: options)
        instances[id] = instance
        return instance
    }
}

public final class DummyInstance: DataplaneInstance {
    public let id: UInt32
    public let externalID: String
    public let label: UInt32
    public let options: InstanceOptions
    public private(set) var plugged: [Endpoint] = []
    public private(set) var remotes: Set<RemoteEndpoint> = []
    public private(set) var floodList: Set<FloodEndpoint> = []
    public private(set) var cleanedUp = false
    /// Every call, in order (tests check sequences such as make-before-break).
    public private(set) var calls: [String] = []

    init(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) {
        self.id = id
        self.externalID = externalID
        self.label = label
        self.options = options
    }

    public func plug(_ endpoint: Endpoint) throws {
        plugged.append(endpoint)
        calls.append("plug \(endpoint.mac) \(endpoint.ip.map { "\($0)" } ?? "-")")
    }

    public func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws {
        if let i = plugged.firstIndex(where: { $0.mac == endpoint.mac && $0.ip == endpoint.ip }) { plugged.remove(at: i) }
        calls.append("unplug \(endpoint.mac) \(endpoint.ip.map { "\($0)" } ?? "-") last=\(lastEndpointOfPort)")
    }

    public func setUp(_ remote: RemoteEndpoint) throws {
        remotes.insert(remote)
        calls.append("setup \(remote.destination) via \(remote.remotePE) label \(remote.label)")
    }

    public func remove(_ remote: RemoteEndpoint) throws {
        remotes.remove(remote)
        calls.append("remove \(remote.destination) via \(remote.remotePE) label \(remote.label)")
    }

    public func addFlood(_ flood: FloodEndpoint) throws {
        floodList.insert(flood)
        calls.append("flood add \(flood.remotePE) vni \(flood.vni)")
    }

    public func removeFlood(_ flood: FloodEndpoint) throws {
        floodList.remove(flood)
        calls.append("flood remove \(flood.remotePE) vni \(flood.vni)")
    }

    public func cleanup() {
        cleanedUp = true
        calls.append("cleanup")
    }

    public var lookingGlass: JSONValue {
        .object([
            ("driver", "dummy"), ("label", JSONValue(label)),
            ("plugged", .array(plugged.map { .string("\($0.mac) \($0.ip.map { "\($0)" } ?? "")") })),
            ("remotes", .array(remotes.map { .string("\($0.destination) via \($0.remotePE) label \($0.label)") }.sorted { $0.serialized() < $1.serialized() })),
            ("flood_list", .array(floodList.map { .string("\($0.remotePE) vni \($0.vni)") }.sorted { $0.serialized() < $1.serialized() })),
        ])
    }
}
