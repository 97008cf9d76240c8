import NeutronModel

// What the agent reads of its host's view (bagpipe-controller's `GET /v2.0/agent/hosts/<host>/view`
// and the watch events after it), as typed values. The shapes are the controller's: ports and
// networks as the Neutron API renders them, subnets with their gateway's MAC, associations as
// networking-bgpvpn's driver pushes them (reference neutron-side §4.2). Fields the agent does not
// use are not read.

public struct ViewPort: Sendable, Equatable {
    public var id: String
    public var networkID: String
    public var macAddress: String
    /// `fixed_ips[].ip_address`, in the API's order.
    public var fixedIPs: [String]
    public var deviceOwner: String
    public var adminStateUp: Bool

    public init(id: String, networkID: String, macAddress: String, fixedIPs: [String], deviceOwner: String = "compute:nova", adminStateUp: Bool = true) {
        self.id = id
        self.networkID = networkID
        self.macAddress = macAddress
        self.fixedIPs = fixedIPs
        self.deviceOwner = deviceOwner
        self.adminStateUp = adminStateUp
    }

    /// Router interfaces, DHCP ports and the like (`network:*`) are never attached (§2.3, §4.5).
    public var isNetworkOwned: Bool { deviceOwner.hasPrefix("network:") }
    public var firstIPv4: String? { fixedIPs.first { !$0.contains(":") } }
}

public struct ViewNetwork: Sendable, Equatable {
    public var id: String
    public var networkType: String
    public var segmentationID: Int?
    public init(id: String, networkType: String = "vxlan", segmentationID: Int?) {
        self.id = id
        self.networkType = networkType
        self.segmentationID = segmentationID
    }
}

/// A subnet as associations carry it (`subnets[]`, `connected_networks[].subnets[]`) and as the view
/// lists it.
public struct SubnetInfo: Sendable, Equatable {
    public var id: String
    public var ipVersion: Int
    public var cidr: String
    public var gatewayIP: String?
    public var gatewayMAC: String?
    public init(id: String, ipVersion: Int = 4, cidr: String, gatewayIP: String?, gatewayMAC: String? = nil) {
        self.id = id
        self.ipVersion = ipVersion
        self.cidr = cidr
        self.gatewayIP = gatewayIP
        self.gatewayMAC = gatewayMAC
    }
}

/// A BGPVPN as associations embed it.
public struct BGPVPNInfo: Sendable, Equatable {
    public var id: String
    public var type: BGPVPNType
    public var routeTargets: [String]
    public var importTargets: [String]
    public var exportTargets: [String]
    public var localPref: Int64?
    public var vni: Int?

    public init(id: String, type: BGPVPNType, routeTargets: [String] = [], importTargets: [String] = [], exportTargets: [String] = [], localPref: Int64? = nil, vni: Int? = nil) {
        self.id = id
        self.type = type
        self.routeTargets = routeTargets
        self.importTargets = importTargets
        self.exportTargets = exportTargets
        self.localPref = localPref
        self.vni = vni
    }

    /// `route_targets` ∪ `import_targets` (§4.4).
    public var importSet: [String] { orderedUnion(routeTargets, importTargets) }
    /// `route_targets` ∪ `export_targets`.
    public var exportSet: [String] { orderedUnion(routeTargets, exportTargets) }
}

public struct NetworkAssociationInfo: Sendable, Equatable {
    public var id: String
    public var bgpvpn: BGPVPNInfo
    public var networkID: String
    public var subnets: [SubnetInfo]
    public init(id: String, bgpvpn: BGPVPNInfo, networkID: String, subnets: [SubnetInfo]) {
        self.id = id
        self.bgpvpn = bgpvpn
        self.networkID = networkID
        self.subnets = subnets
    }
}

public struct RouterAssociationInfo: Sendable, Equatable {
    public var id: String
    public var bgpvpn: BGPVPNInfo
    public var routerID: String
    /// `connected_networks`: network id → its subnets (the router's gateway network excluded).
    public var connectedNetworks: [String: [SubnetInfo]]
    public init(id: String, bgpvpn: BGPVPNInfo, routerID: String, connectedNetworks: [String: [SubnetInfo]]) {
        self.id = id
        self.bgpvpn = bgpvpn
        self.routerID = routerID
        self.connectedNetworks = connectedNetworks
    }
}

/// A port association's route. Equality compares every field, `local_pref` included: a view whose only
/// change is a route's LOCAL_PREF has changed, and the agent attaches again with the new one.
public struct PortRouteInfo: Sendable, Equatable {
    public enum Kind: String, Sendable { case prefix, bgpvpn }
    public var type: Kind
    public var prefix: String?
    public var localPref: Int64?
    public var bgpvpnID: String?
    public var bgpvpn: BGPVPNInfo?

    public init(type: Kind, prefix: String? = nil, localPref: Int64? = nil, bgpvpn: BGPVPNInfo? = nil) {
        self.type = type
        self.prefix = prefix
        self.localPref = localPref
        self.bgpvpnID = bgpvpn?.id
        self.bgpvpn = bgpvpn
    }
}

public struct PortAssociationInfo: Sendable, Equatable {
    public var id: String
    public var bgpvpn: BGPVPNInfo
    public var portID: String
    public var subnets: [SubnetInfo]
    public var routes: [PortRouteInfo]
    public var advertiseFixedIPs: Bool
    public init(id: String, bgpvpn: BGPVPNInfo, portID: String, subnets: [SubnetInfo], routes: [PortRouteInfo] = [], advertiseFixedIPs: Bool = true) {
        self.id = id
        self.bgpvpn = bgpvpn
        self.portID = portID
        self.subnets = subnets
        self.routes = routes
        self.advertiseFixedIPs = advertiseFixedIPs
    }
}

/// A host's view, typed.
public struct HostViewModel: Sendable, Equatable {
    public var ports: [String: ViewPort] = [:]
    public var networks: [String: ViewNetwork] = [:]
    public var networkAssociations: [String: NetworkAssociationInfo] = [:]
    public var routerAssociations: [String: RouterAssociationInfo] = [:]
    public var portAssociations: [String: PortAssociationInfo] = [:]
    /// The routers of the host's networks, each as a router association of its implicit BGPVPN
    /// (distributed routing: the router's own route target).
    public var routers: [String: RouterAssociationInfo] = [:]
    public init() {}
}

/// Route targets in first-seen order, without repeats.
func orderedUnion(_ lists: [String]...) -> [String] {
    var seen = Set<String>()
    var out: [String] = []
    for list in lists { for rt in list where seen.insert(rt).inserted { out.append(rt) } }
    return out
}
