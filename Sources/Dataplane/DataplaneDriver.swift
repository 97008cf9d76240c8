import BGPWire

/// What an instance needs from its dataplane (reference §9.1). A driver's instances are called on
/// the `DataplaneExecutor`; the VPN instances on the engine's loop call a `QueuedInstance` (BagpipeVPN), which
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
    func updateFallback(_ fallback: Fallback?)
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
    public func updateFallback(_ fallback: Fallback?) {}
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
    /// Instead of `resetState`, after a restart that keeps forwarding (graceful restart): what the
    /// earlier run left stays in place, for the instances made again to take over without a
    /// packet lost; `sweepStale` later removes what none took over.
    func adoptState() throws
    /// Where the dataplane and the instances disagree: an entry the instances do not account for
    /// ("extra …", left by an earlier run or by a bug) or one they hold that is not there
    /// ("missing …"). Empty when consistent, or when the driver cannot tell.
    func differences() -> [String]
    /// Removes the extra entries `differences` finds; returns what it removed.
    func sweepStale() -> [String]
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
    /// Never blocks nor takes long (the dummy drivers): the executor may then run requests on the
    /// loop's thread instead of its own.
    var neverBlocks: Bool { get }
    /// Applies the changes the driver queued while routes were delivered (Open vSwitch: one
    /// `ovs-ofctl` bundle for a burst of routes, instead of a process per route).
    func flush()
}

extension DataplaneDriver {
    public var directions: Set<Direction> { [.both] }

    public func resetState() throws {}
    /// A driver that cannot take over an earlier run's state starts clean, as without a restart.
    public func adoptState() throws { try resetState() }
    public func differences() -> [String] { [] }
    public func sweepStale() -> [String] { [] }
    public func initialize() throws {}
    public func stop() {}
    public var needsCleanupAssist: Bool { false }
    public func createGatewayLink(_ link: GatewayLink) throws {}
    public func deleteGatewayLink(_ link: GatewayLink) {}
    public var reconcileInterval: Double? { nil }
    public var neverBlocks: Bool { false }
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
