/// Neutron's core resources as the controller stores them and the agent receives them (its host
/// view). Rendering to the API's JSON shapes is `NeutronRendering.swift`; validation of requests is
/// the controller's.
public protocol NeutronResource: Codable, Sendable, Equatable {
    static var kind: ResourceKind { get }
    var id: String { get }
    var projectID: String { get }
    var standard: StandardAttributes { get set }
}

/// The resource kinds, named as Neutron's collections' members.
public enum ResourceKind: String, Codable, Sendable, CaseIterable, Comparable {
    case network, subnet, port, router, bgpvpn
    case networkAssociation = "network_association"
    case routerAssociation = "router_association"
    case portAssociation = "port_association"

    /// The collection name in URLs and list bodies.
    public var collection: String {
        switch self {
        case .network: "networks"
        case .subnet: "subnets"
        case .port: "ports"
        case .router: "routers"
        case .bgpvpn: "bgpvpns"
        case .networkAssociation: "network_associations"
        case .routerAssociation: "router_associations"
        case .portAssociation: "port_associations"
        }
    }

    public static func < (a: ResourceKind, b: ResourceKind) -> Bool { a.rawValue < b.rawValue }
}

/// Neutron's standard attributes, on every resource.
public struct StandardAttributes: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var createdAt: String
    public var updatedAt: String
    public var revisionNumber: Int
    public var tags: [String]

    public init(name: String = "", description: String = "", at time: String) {
        self.name = name
        self.description = description
        createdAt = time
        updatedAt = time
        revisionNumber = 0
        tags = []
    }
}

public struct Network: NeutronResource {
    public static let kind = ResourceKind.network
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var adminStateUp: Bool
    public var shared: Bool
    public var external: Bool
    /// The VXLAN network identifier (`provider:segmentation_id`).
    public var segmentationID: Int
    public var mtu: Int
    public var portSecurityEnabled: Bool

    public init(id: String, projectID: String, standard: StandardAttributes, adminStateUp: Bool = true, shared: Bool = false, external: Bool = false, segmentationID: Int, mtu: Int = 1450, portSecurityEnabled: Bool = true) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.adminStateUp = adminStateUp
        self.shared = shared
        self.external = external
        self.segmentationID = segmentationID
        self.mtu = mtu
        self.portSecurityEnabled = portSecurityEnabled
    }
}

public struct AllocationPool: Codable, Sendable, Equatable, Hashable {
    public var start: String
    public var end: String
    public init(start: String, end: String) {
        self.start = start
        self.end = end
    }
}

public struct HostRoute: Codable, Sendable, Equatable, Hashable {
    public var destination: String
    public var nexthop: String
    public init(destination: String, nexthop: String) {
        self.destination = destination
        self.nexthop = nexthop
    }
}

public struct Subnet: NeutronResource {
    public static let kind = ResourceKind.subnet
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var networkID: String
    public var ipVersion: Int
    public var cidr: String
    public var gatewayIP: String?
    public var allocationPools: [AllocationPool]
    public var enableDHCP: Bool
    public var dnsNameservers: [String]
    public var hostRoutes: [HostRoute]
    public var ipv6RAMode: String?
    public var ipv6AddressMode: String?

    public init(
        id: String, projectID: String, standard: StandardAttributes, networkID: String, ipVersion: Int, cidr: String, gatewayIP: String?, allocationPools: [AllocationPool],
        enableDHCP: Bool = true, dnsNameservers: [String] = [], hostRoutes: [HostRoute] = [], ipv6RAMode: String? = nil, ipv6AddressMode: String? = nil
    ) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.networkID = networkID
        self.ipVersion = ipVersion
        self.cidr = cidr
        self.gatewayIP = gatewayIP
        self.allocationPools = allocationPools
        self.enableDHCP = enableDHCP
        self.dnsNameservers = dnsNameservers
        self.hostRoutes = hostRoutes
        self.ipv6RAMode = ipv6RAMode
        self.ipv6AddressMode = ipv6AddressMode
    }
}

public struct FixedIP: Codable, Sendable, Equatable, Hashable {
    public var subnetID: String
    public var ipAddress: String
    public init(subnetID: String, ipAddress: String) {
        self.subnetID = subnetID
        self.ipAddress = ipAddress
    }
}

public struct Port: NeutronResource {
    public static let kind = ResourceKind.port
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var networkID: String
    public var macAddress: String
    public var fixedIPs: [FixedIP]
    public var deviceID: String
    public var deviceOwner: String
    public var adminStateUp: Bool
    /// DOWN until the agent of `hostID` reports the port up.
    public var status: String
    public var hostID: String
    public var portSecurityEnabled: Bool

    public init(
        id: String, projectID: String, standard: StandardAttributes, networkID: String, macAddress: String, fixedIPs: [FixedIP], deviceID: String = "", deviceOwner: String = "",
        adminStateUp: Bool = true, status: String = "DOWN", hostID: String = "", portSecurityEnabled: Bool = true
    ) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.networkID = networkID
        self.macAddress = macAddress
        self.fixedIPs = fixedIPs
        self.deviceID = deviceID
        self.deviceOwner = deviceOwner
        self.adminStateUp = adminStateUp
        self.status = status
        self.hostID = hostID
        self.portSecurityEnabled = portSecurityEnabled
    }

    public static let routerInterfaceOwner = "network:router_interface"
    public static let routerGatewayOwner = "network:router_gateway"

    /// Ports that belong to the network itself (DHCP, router interfaces): never attached to a VPN.
    public var isNetworkOwned: Bool { deviceOwner.hasPrefix("network:") }
}

public struct Router: NeutronResource {
    public static let kind = ResourceKind.router
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var adminStateUp: Bool
    public var routes: [HostRoute]
    /// The route target of the router's distributed VRF (`<AS>:<n>`, allocated by the controller
    /// from `[distributed_routing] route_target_range`); nil when distributed routing is off.
    public var routeTarget: String?

    public init(id: String, projectID: String, standard: StandardAttributes, adminStateUp: Bool = true, routes: [HostRoute] = []) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.adminStateUp = adminStateUp
        self.routes = routes
    }
}
