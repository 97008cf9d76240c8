import HashTreeCollections
import NeutronModel

/// Every resource of the controller, with the indexes the API rules and the host views need. A
/// value: a write works on a copy and replaces the state only once the database has committed it,
/// so a failed write leaves nothing behind (the copy is made once per write, when it first changes
/// a table). `changed` lists what a write touched, for the store and the watch.
public struct ControllerState: Sendable {
    public internal(set) var networks: TreeDictionary<String, Network> = [:]
    public internal(set) var subnets: TreeDictionary<String, Subnet> = [:]
    public internal(set) var ports: TreeDictionary<String, Port> = [:]
    public internal(set) var routers: TreeDictionary<String, Router> = [:]
    public internal(set) var bgpvpns: TreeDictionary<String, BGPVPN> = [:]
    public internal(set) var networkAssociations: TreeDictionary<String, NetworkAssociation> = [:]
    public internal(set) var routerAssociations: TreeDictionary<String, RouterAssociation> = [:]
    public internal(set) var portAssociations: TreeDictionary<String, PortAssociation> = [:]

    /// Indexes: parent id → child ids.
    public internal(set) var subnetsByNetwork: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var portsByNetwork: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var portsByHost: TreeDictionary<String, Set<String>> = [:]
    /// Router interface ports by router (`device_id`), and by network.
    public internal(set) var interfacesByRouter: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var interfacesByNetwork: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var networkAssociationsByNetwork: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var networkAssociationsByBGPVPN: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var routerAssociationsByRouter: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var routerAssociationsByBGPVPN: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var portAssociationsByPort: TreeDictionary<String, Set<String>> = [:]
    public internal(set) var portAssociationsByBGPVPN: TreeDictionary<String, Set<String>> = [:]
    /// VNI → network id.
    public internal(set) var networksByVNI: TreeDictionary<Int, String> = [:]

    /// The version of the last change applied (the change log's sequence).
    public internal(set) var version: Int64 = 0
    /// What the current write touched, in order, without repeats.
    public internal(set) var changed: [ResourceKey] = []
    private var changedSet: Set<ResourceKey> = []

    public init() {}

    /// The state with these resources, as loaded from the store.
    public init(loading resources: [AnyResource], version: Int64) {
        for r in resources { put(r) }
        self.version = version
        clearChanges()
    }

    public mutating func clearChanges() {
        changed = []
        changedSet = []
    }

    mutating func touch(_ key: ResourceKey) {
        if changedSet.insert(key).inserted { changed.append(key) }
    }

    /// The resource stored under `key`, if any.
    public func resource(_ key: ResourceKey) -> AnyResource? {
        switch key.kind {
        case .network: networks[key.id].map(AnyResource.network)
        case .subnet: subnets[key.id].map(AnyResource.subnet)
        case .port: ports[key.id].map(AnyResource.port)
        case .router: routers[key.id].map(AnyResource.router)
        case .bgpvpn: bgpvpns[key.id].map(AnyResource.bgpvpn)
        case .networkAssociation: networkAssociations[key.id].map(AnyResource.networkAssociation)
        case .routerAssociation: routerAssociations[key.id].map(AnyResource.routerAssociation)
        case .portAssociation: portAssociations[key.id].map(AnyResource.portAssociation)
        }
    }

    /// Adds or replaces a resource, keeping the indexes.
    public mutating func put(_ r: AnyResource) {
        remove(r.key, touching: false)
        touch(r.key)
        switch r {
        case .network(let n):
            networks[n.id] = n
            networksByVNI[n.segmentationID] = n.id
        case .subnet(let s):
            subnets[s.id] = s
            subnetsByNetwork[s.networkID, default: []].insert(s.id)
        case .port(let p):
            ports[p.id] = p
            portsByNetwork[p.networkID, default: []].insert(p.id)
            if !p.hostID.isEmpty { portsByHost[p.hostID, default: []].insert(p.id) }
            if p.deviceOwner == Port.routerInterfaceOwner {
                if !p.deviceID.isEmpty { interfacesByRouter[p.deviceID, default: []].insert(p.id) }
                interfacesByNetwork[p.networkID, default: []].insert(p.id)
            }
        case .router(let r): routers[r.id] = r
        case .bgpvpn(let b): bgpvpns[b.id] = b
        case .networkAssociation(let a):
            networkAssociations[a.id] = a
            networkAssociationsByNetwork[a.networkID, default: []].insert(a.id)
            networkAssociationsByBGPVPN[a.bgpvpnID, default: []].insert(a.id)
        case .routerAssociation(let a):
            routerAssociations[a.id] = a
            routerAssociationsByRouter[a.routerID, default: []].insert(a.id)
            routerAssociationsByBGPVPN[a.bgpvpnID, default: []].insert(a.id)
        case .portAssociation(let a):
            portAssociations[a.id] = a
            portAssociationsByPort[a.portID, default: []].insert(a.id)
            portAssociationsByBGPVPN[a.bgpvpnID, default: []].insert(a.id)
        }
    }

    public mutating func put(_ r: some NeutronResource) { put(AnyResource(r)) }

    public mutating func remove(_ key: ResourceKey) { remove(key, touching: true) }

    private mutating func remove(_ key: ResourceKey, touching: Bool) {
        let id = key.id
        var found = true
        switch key.kind {
        case .network:
            if let n = networks.removeValue(forKey: id) { networksByVNI[n.segmentationID] = nil } else { found = false }
        case .subnet:
            if let s = subnets.removeValue(forKey: id) { Self.unindex(&subnetsByNetwork, s.networkID, id) } else { found = false }
        case .port:
            if let p = ports.removeValue(forKey: id) {
                Self.unindex(&portsByNetwork, p.networkID, id)
                Self.unindex(&portsByHost, p.hostID, id)
                Self.unindex(&interfacesByRouter, p.deviceID, id)
                Self.unindex(&interfacesByNetwork, p.networkID, id)
            } else {
                found = false
            }
        case .router: found = routers.removeValue(forKey: id) != nil
        case .bgpvpn: found = bgpvpns.removeValue(forKey: id) != nil
        case .networkAssociation:
            if let a = networkAssociations.removeValue(forKey: id) {
                Self.unindex(&networkAssociationsByNetwork, a.networkID, id)
                Self.unindex(&networkAssociationsByBGPVPN, a.bgpvpnID, id)
            } else {
                found = false
            }
        case .routerAssociation:
            if let a = routerAssociations.removeValue(forKey: id) {
                Self.unindex(&routerAssociationsByRouter, a.routerID, id)
                Self.unindex(&routerAssociationsByBGPVPN, a.bgpvpnID, id)
            } else {
                found = false
            }
        case .portAssociation:
            if let a = portAssociations.removeValue(forKey: id) {
                Self.unindex(&portAssociationsByPort, a.portID, id)
                Self.unindex(&portAssociationsByBGPVPN, a.bgpvpnID, id)
            } else {
                found = false
            }
        }
        if touching && found { touch(key) }
    }

    private static func unindex(_ index: inout TreeDictionary<String, Set<String>>, _ parent: String, _ child: String) {
        guard !parent.isEmpty, var set = index.removeValue(forKey: parent) else { return }
        set.remove(child)
        if !set.isEmpty { index[parent] = set }
    }

    /// Applies a committed change: the resources as they are now (nil: deleted).
    public mutating func apply(_ change: [(ResourceKey, AnyResource?)], version: Int64) {
        for (key, resource) in change {
            if let resource { put(resource) } else { remove(key) }
        }
        self.version = version
        clearChanges()
    }

    // MARK: - Relations the rules and views use

    public func subnets(of network: String) -> [Subnet] { (subnetsByNetwork[network] ?? []).compactMap { subnets[$0] }.sorted { $0.id < $1.id } }
    public func ports(of network: String) -> [Port] { (portsByNetwork[network] ?? []).compactMap { ports[$0] } }

    /// The router interface ports on a network.
    public func routerInterfaces(on network: String) -> [Port] { (interfacesByNetwork[network] ?? []).compactMap { ports[$0] } }

    /// The routers with an interface on a network.
    public func routers(on network: String) -> Set<String> { Set(routerInterfaces(on: network).map(\.deviceID)) }

    /// The networks a router has interfaces on.
    public func networks(of router: String) -> Set<String> { Set((interfacesByRouter[router] ?? []).compactMap { ports[$0]?.networkID }) }
}
