/// networking-bgpvpn's resources (reference neutron-side §3.3-§3.6).
public enum BGPVPNType: String, Codable, Sendable, CaseIterable {
    case l2, l3
}

public struct BGPVPN: NeutronResource {
    public static let kind = ResourceKind.bgpvpn
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var type: BGPVPNType
    public var routeTargets: [String]
    public var importTargets: [String]
    public var exportTargets: [String]
    public var routeDistinguishers: [String]
    public var localPref: Int64?
    public var vni: Int?

    public init(
        id: String, projectID: String, standard: StandardAttributes, type: BGPVPNType = .l3, routeTargets: [String] = [], importTargets: [String] = [], exportTargets: [String] = [],
        routeDistinguishers: [String] = [], localPref: Int64? = nil, vni: Int? = nil
    ) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.type = type
        self.routeTargets = routeTargets
        self.importTargets = importTargets
        self.exportTargets = exportTargets
        self.routeDistinguishers = routeDistinguishers
        self.localPref = localPref
        self.vni = vni
    }

    /// `route_targets` ∪ `import_targets`, in order, without repeats.
    public var importSet: [String] { Self.union(routeTargets, importTargets) }
    /// `route_targets` ∪ `export_targets`.
    public var exportSet: [String] { Self.union(routeTargets, exportTargets) }

    static func union(_ a: [String], _ b: [String]) -> [String] {
        var seen = Set<String>()
        return (a + b).filter { seen.insert($0).inserted }
    }
}

public struct NetworkAssociation: NeutronResource {
    public static let kind = ResourceKind.networkAssociation
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var bgpvpnID: String
    public var networkID: String

    public init(id: String, projectID: String, standard: StandardAttributes, bgpvpnID: String, networkID: String) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.bgpvpnID = bgpvpnID
        self.networkID = networkID
    }
}

public struct RouterAssociation: NeutronResource {
    public static let kind = ResourceKind.routerAssociation
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var bgpvpnID: String
    public var routerID: String
    public var advertiseExtraRoutes: Bool

    public init(id: String, projectID: String, standard: StandardAttributes, bgpvpnID: String, routerID: String, advertiseExtraRoutes: Bool = true) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.bgpvpnID = bgpvpnID
        self.routerID = routerID
        self.advertiseExtraRoutes = advertiseExtraRoutes
    }
}

/// A route of a port association (§3.6): a prefix reachable through the port, or the routes of
/// another BGPVPN leaked with the port as next hop.
public struct PortRoute: Codable, Sendable, Equatable, Hashable {
    public enum Kind: String, Codable, Sendable { case prefix, bgpvpn }
    public var type: Kind
    public var prefix: String?
    public var bgpvpnID: String?
    public var localPref: Int64?

    public init(type: Kind, prefix: String? = nil, bgpvpnID: String? = nil, localPref: Int64? = nil) {
        self.type = type
        self.prefix = prefix
        self.bgpvpnID = bgpvpnID
        self.localPref = localPref
    }
}

public struct PortAssociation: NeutronResource {
    public static let kind = ResourceKind.portAssociation
    public var id: String
    public var projectID: String
    public var standard: StandardAttributes
    public var bgpvpnID: String
    public var portID: String
    public var routes: [PortRoute]
    public var advertiseFixedIPs: Bool

    public init(id: String, projectID: String, standard: StandardAttributes, bgpvpnID: String, portID: String, routes: [PortRoute] = [], advertiseFixedIPs: Bool = true) {
        self.id = id
        self.projectID = projectID
        self.standard = standard
        self.bgpvpnID = bgpvpnID
        self.portID = portID
        self.routes = routes
        self.advertiseFixedIPs = advertiseFixedIPs
    }
}

/// Route target and route distinguisher strings as networking-bgpvpn accepts them (§3.3):
/// `<0..65535>:<0..4294967295>`, `<IPv4>:<0..65535>`, `<0..4294967295>:<0..65535>`, numbers without
/// leading zeros.
public enum RouteTargetSyntax {
    public static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = number(parts[1]) else { return false }
        let admin = parts[0]
        if admin.contains(".") { return isIPv4(admin) && local <= 65535 }
        guard let global = number(admin) else { return false }
        return (global <= 65535 && local <= 4_294_967_295) || (global <= 4_294_967_295 && local <= 65535)
    }

    static func number(_ s: Substring) -> UInt64? {
        guard !s.isEmpty, s.count <= 10, s.allSatisfy({ $0.isASCII && $0.isNumber }), s == "0" || s.first != "0" else { return nil }
        return UInt64(s)
    }

    static func isIPv4(_ s: Substring) -> Bool {
        let octets = s.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { o in number(o).map { $0 <= 255 } ?? false }
    }
}
