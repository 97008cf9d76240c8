import BGPWire

/// The dummy drivers (reference §9.2): they install nothing but keep what they were asked, which
/// the looking glass shows and the tests read.
public final class DummyDriver: DataplaneDriver {
    public let vpnType: VPNType
    public let encapsulations: [TunnelType]
    public let supportsECMP: Bool
    public let localAddress: IPv4Address
    public let needsCleanupAssist: Bool
    public private(set) var instances: [UInt32: DummyInstance] = [:]
    public private(set) var gatewayLinks: Set<GatewayLink> = []
    public private(set) var initialized = 0, resets = 0

    /// Directions it forwards (the original's dummies: `both` only).
    public let directions: Set<Direction>

    /// `ecmp`, `directions`, `cleanupAssist`: behave as a driver that has them (as the IP VPN `ovs`
    /// driver does).
    public init(vpnType: VPNType, localAddress: IPv4Address, ecmp: Bool = false, directions: Set<Direction> = [.both], cleanupAssist: Bool = false) {
        self.vpnType = vpnType
        self.localAddress = localAddress
        supportsECMP = ecmp
        self.directions = directions
        needsCleanupAssist = cleanupAssist
        // As the original: E-VPN over VXLAN only; IP VPN default and MPLS.
        encapsulations = vpnType == .evpn ? [.vxlan] : [.default, .mpls]
    }

    public var neverBlocks: Bool { true }

    public func resetState() throws { resets += 1 }
    public func initialize() throws { initialized += 1 }

    public func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        let instance = DummyInstance(id: id, externalID: externalID, label: label, options: options)
        instances[id] = instance
        return instance
    }

    public func createGatewayLink(_ link: GatewayLink) throws { gatewayLinks.insert(link) }
    public func deleteGatewayLink(_ link: GatewayLink) { gatewayLinks.remove(link) }

    public var lookingGlass: JSONValue { .object(commonLookingGlass + [("gateway_links", .array(gatewayLinks.map { .string("\($0.eviSide) \($0.vrfSide)") }.sorted { $0.serialized() < $1.serialized() }))]) }
}

public final class DummyInstance: DataplaneInstance {
    public let id: UInt32
    public let externalID: String
    public let label: UInt32
    public let options: InstanceOptions
    public private(set) var plugged: [Endpoint] = []
    public private(set) var remotes: Set<RemoteEndpoint> = []
    public private(set) var floodList: Set<FloodEndpoint> = []
    public private(set) var classifiers: [TrafficClassifier: UInt32] = [:]
    public private(set) var gatewayPorts: [String: IPAddress] = [:]
    public private(set) var fallback: Fallback?
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

    public func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws {
        classifiers[classifier] = instance
        calls.append("redirect \(classifier) to \(instance)")
    }

    public func removeTrafficClassifier(_ classifier: TrafficClassifier) throws {
        classifiers[classifier] = nil
        calls.append("stop redirect \(classifier)")
    }

    public func setGatewayPort(_ linuxif: String, gateway: IPAddress) throws {
        gatewayPorts[linuxif] = gateway
        calls.append("gateway port \(linuxif) \(gateway)")
    }

    public func gatewayPortDown(_ linuxif: String) throws {
        gatewayPorts[linuxif] = nil
        calls.append("gateway port down \(linuxif)")
    }

    public func updateFallback(_ fallback: Fallback?) { self.fallback = fallback }

    /// Everything goes, as with a real driver that removes its instance's objects wholesale.
    public func cleanup() {
        cleanedUp = true
        (plugged, remotes, floodList, classifiers, gatewayPorts) = ([], [], [], [:], [:])
        calls.append("cleanup")
    }

    public var lookingGlass: JSONValue {
        func sorted(_ items: [String]) -> JSONValue { .array(items.sorted().map { .string($0) }) }
        return .object([
            ("label", JSONValue(label)),
            ("plugged", sorted(plugged.map { "\($0.mac) \($0.ip.map { "\($0)" } ?? "")" })),
            ("remotes", sorted(remotes.map { "\($0.destination) via \($0.remotePE) label \($0.label)" })),
            ("flood_list", sorted(floodList.map { "\($0.remotePE) vni \($0.vni)" })),
            ("classifiers", sorted(classifiers.map { "\($0.key) -> \($0.value)" })),
            ("gateway_ports", sorted(gatewayPorts.map { "\($0.key) \($0.value)" })),
        ])
    }
}
