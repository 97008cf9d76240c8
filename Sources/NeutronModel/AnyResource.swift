/// Identifies one resource across kinds.
public struct ResourceKey: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public var kind: ResourceKind
    public var id: String

    public init(_ kind: ResourceKind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public static func < (a: ResourceKey, b: ResourceKey) -> Bool { (a.kind, a.id) < (b.kind, b.id) }
    public var description: String { "\(kind.rawValue) \(id)" }
}

/// Any resource, for the change log, the store's rows and the watch.
public enum AnyResource: Codable, Sendable, Equatable {
    case network(Network)
    case subnet(Subnet)
    case port(Port)
    case router(Router)
    case bgpvpn(BGPVPN)
    case networkAssociation(NetworkAssociation)
    case routerAssociation(RouterAssociation)
    case portAssociation(PortAssociation)

    public init(_ r: any NeutronResource) {
        switch r {
        case let r as Network: self = .network(r)
        case let r as Subnet: self = .subnet(r)
        case let r as Port: self = .port(r)
        case let r as Router: self = .router(r)
        case let r as BGPVPN: self = .bgpvpn(r)
        case let r as NetworkAssociation: self = .networkAssociation(r)
        case let r as RouterAssociation: self = .routerAssociation(r)
        case let r as PortAssociation: self = .portAssociation(r)
        default: preconditionFailure("a resource kind AnyResource does not know: \(type(of: r))")
        }
    }

    public var resource: any NeutronResource {
        switch self {
        case .network(let r): r
        case .subnet(let r): r
        case .port(let r): r
        case .router(let r): r
        case .bgpvpn(let r): r
        case .networkAssociation(let r): r
        case .routerAssociation(let r): r
        case .portAssociation(let r): r
        }
    }

    public var key: ResourceKey { ResourceKey(type(of: resource).kind, resource.id) }
}
