import NeutronModel

/// The host's view as last listed plus the watch events applied since, and the version it is at.
/// Applying an event is idempotent (ADDED and MODIFIED both set the object, DELETED removes it), so
/// an event seen twice after a reconnect changes nothing.
public struct ViewCache: Sendable, Equatable {
    public private(set) var objects: [ResourceKey: JSONObject] = [:]
    public private(set) var version: Int64 = 0

    public init() {}

    /// The view document of `GET …/view`: `{"resource_version": N, "objects": [{"kind", "id", "object"}]}`.
    public mutating func load(view: JSON) throws(ViewError) {
        guard case .int(let v)? = view["resource_version"], let items = view["objects"]?.arrayValue else {
            throw ViewError("the view has no resource_version or objects")
        }
        var objects: [ResourceKey: JSONObject] = [:]
        for item in items {
            guard let key = Self.key(item), let o = item["object"]?.objectValue else { throw ViewError("a view item without kind, id and object: \(item.serialized.prefix(200))") }
            objects[key] = o
        }
        self.objects = objects
        version = v
    }

    public enum Applied: Sendable, Equatable {
        /// This object changed (or went: its object is nil).
        case changed(ResourceKey, JSONObject?)
        /// A bookmark or a repeat: nothing to do.
        case unchanged
    }

    /// One line of the watch stream.
    public mutating func apply(event: JSON) throws(ViewError) -> Applied {
        guard let type = event["type"]?.stringValue, case .int(let v)? = event["resource_version"] else {
            throw ViewError("a watch event without type or resource_version: \(event.serialized.prefix(200))")
        }
        if type == "BOOKMARK" {
            version = max(version, v)
            return .unchanged
        }
        guard let key = Self.key(event) else { throw ViewError("a \(type) event without kind and id") }
        let before = objects[key]
        switch type {
        case "ADDED", "MODIFIED":
            guard let o = event["object"]?.objectValue else { throw ViewError("a \(type) event without object") }
            objects[key] = o
        case "DELETED":
            objects[key] = nil
        default:
            throw ViewError("unknown watch event type \(type)")
        }
        version = max(version, v)
        return before == objects[key] ? .unchanged : .changed(key, objects[key])
    }

    static func key(_ item: JSON) -> ResourceKey? {
        guard let kind = item["kind"]?.stringValue.flatMap(ResourceKind.init(rawValue:)), let id = item["id"]?.stringValue else { return nil }
        return ResourceKey(kind, id)
    }

    /// The typed view; an object that does not read is left out and named in `skipped`.
    public func model() -> (model: HostViewModel, skipped: [String]) {
        var m = HostViewModel()
        var skipped: [String] = []
        for (key, o) in objects {
            do {
                try m.set(key, o)
            } catch {
                skipped.append("\(key): \(error.description)")
            }
        }
        return (m, skipped.sorted())
    }
}

extension HostViewModel {
    /// One object of the view set (nil: removed); true when the typed view changed. Fields the agent
    /// does not read (a port's status, say) change nothing. An object that does not read is removed
    /// and the error thrown.
    @discardableResult
    public mutating func set(_ key: ResourceKey, _ o: JSONObject?) throws(ViewError) -> Bool {
        func update<V: Equatable>(_ table: inout [String: V], _ read: (JSONObject) throws(ViewError) -> V) throws(ViewError) -> Bool {
            let before = table[key.id]
            guard let o else {
                table[key.id] = nil
                return before != nil
            }
            do {
                table[key.id] = try read(o)
            } catch {
                table[key.id] = nil
                throw error
            }
            return before != table[key.id]
        }
        switch key.kind {
        case .port: return try update(&ports) { o throws(ViewError) in try ViewReader.port(key.id, o) }
        case .network: return try update(&networks) { o throws(ViewError) in try ViewReader.network(key.id, o) }
        case .networkAssociation: return try update(&networkAssociations) { o throws(ViewError) in try ViewReader.networkAssociation(key.id, o) }
        case .routerAssociation: return try update(&routerAssociations) { o throws(ViewError) in try ViewReader.routerAssociation(key.id, o) }
        case .portAssociation: return try update(&portAssociations) { o throws(ViewError) in try ViewReader.portAssociation(key.id, o) }
        // A router: its distributed VRF, in the shape of a router association.
        case .router: return try update(&routers) { o throws(ViewError) in try ViewReader.routerAssociation(key.id, o) }
        // Subnets reach the agent inside the associations (with their gateway's MAC); BGPVPNs likewise.
        case .subnet, .bgpvpn: return false
        }
    }
}

public struct ViewError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads the controller's shapes.
enum ViewReader {
    static func string(_ o: JSONObject, _ key: String) throws(ViewError) -> String {
        guard let s = o[key]?.stringValue else { throw ViewError("\(key) is not a string") }
        return s
    }

    static func optionalString(_ o: JSONObject, _ key: String) -> String? { o[key]?.stringValue }

    static func optionalInt(_ o: JSONObject, _ key: String) throws(ViewError) -> Int64? {
        switch o[key] {
        case nil, .null?: return nil
        case .int(let i)?: return i
        default: throw ViewError("\(key) is not an integer")
        }
    }

    static func strings(_ o: JSONObject, _ key: String) throws(ViewError) -> [String] {
        guard let a = o[key]?.arrayValue else { return [] }
        var out: [String] = []
        for v in a {
            guard let s = v.stringValue else { throw ViewError("\(key) holds a non-string") }
            out.append(s)
        }
        return out
    }

    static func object(_ v: JSON?, _ what: String) throws(ViewError) -> JSONObject {
        guard let o = v?.objectValue else { throw ViewError("\(what) is not an object") }
        return o
    }

    static func port(_ id: String, _ o: JSONObject) throws(ViewError) -> ViewPort {
        var ips: [String] = []
        for f in o["fixed_ips"]?.arrayValue ?? [] { if let ip = f["ip_address"]?.stringValue { ips.append(ip) } }
        return ViewPort(
            id: id, networkID: try string(o, "network_id"), macAddress: try string(o, "mac_address"), fixedIPs: ips, deviceOwner: optionalString(o, "device_owner") ?? "",
            adminStateUp: o["admin_state_up"]?.boolValue ?? true)
    }

    static func network(_ id: String, _ o: JSONObject) throws(ViewError) -> ViewNetwork {
        ViewNetwork(id: id, networkType: optionalString(o, "provider:network_type") ?? "vxlan", segmentationID: try optionalInt(o, "provider:segmentation_id").map { Int($0) })
    }

    static func subnet(_ v: JSON) throws(ViewError) -> SubnetInfo {
        let o = try object(v, "a subnet")
        return SubnetInfo(
            id: try string(o, "id"), ipVersion: Int(try optionalInt(o, "ip_version") ?? 4), cidr: try string(o, "cidr"), gatewayIP: optionalString(o, "gateway_ip"),
            gatewayMAC: optionalString(o, "gateway_mac"))
    }

    static func subnets(_ v: JSON?) throws(ViewError) -> [SubnetInfo] {
        var out: [SubnetInfo] = []
        for s in v?.arrayValue ?? [] { out.append(try subnet(s)) }
        return out
    }

    static func bgpvpn(_ v: JSON?) throws(ViewError) -> BGPVPNInfo {
        let o = try object(v, "bgpvpn")
        guard let type = BGPVPNType(rawValue: try string(o, "type")) else { throw ViewError("bgpvpn type is neither l2 nor l3") }
        return BGPVPNInfo(
            id: try string(o, "id"), type: type, routeTargets: try strings(o, "route_targets"), importTargets: try strings(o, "import_targets"),
            exportTargets: try strings(o, "export_targets"), localPref: try optionalInt(o, "local_pref"), vni: try optionalInt(o, "vni").map { Int($0) })
    }

    static func networkAssociation(_ id: String, _ o: JSONObject) throws(ViewError) -> NetworkAssociationInfo {
        NetworkAssociationInfo(id: id, bgpvpn: try bgpvpn(o["bgpvpn"]), networkID: try string(o, "network_id"), subnets: try subnets(o["subnets"]))
    }

    static func routerAssociation(_ id: String, _ o: JSONObject) throws(ViewError) -> RouterAssociationInfo {
        var connected: [String: [SubnetInfo]] = [:]
        for c in o["connected_networks"]?.arrayValue ?? [] {
            let co = try object(c, "a connected network")
            connected[try string(co, "network_id")] = try subnets(co["subnets"])
        }
        return RouterAssociationInfo(id: id, bgpvpn: try bgpvpn(o["bgpvpn"]), routerID: try string(o, "router_id"), connectedNetworks: connected)
    }

    static func portAssociation(_ id: String, _ o: JSONObject) throws(ViewError) -> PortAssociationInfo {
        var routes: [PortRouteInfo] = []
        for r in o["routes"]?.arrayValue ?? [] {
            let ro = try object(r, "a route")
            guard let kind = PortRouteInfo.Kind(rawValue: try string(ro, "type")) else { throw ViewError("a route type is neither prefix nor bgpvpn") }
            // A prefix route's `bgpvpn` is null.
            let leaked: JSON? = if case .object? = ro["bgpvpn"] { ro["bgpvpn"] } else { nil }
            var route = PortRouteInfo(type: kind, prefix: optionalString(ro, "prefix"), localPref: try optionalInt(ro, "local_pref"), bgpvpn: try leaked.map { v throws(ViewError) in try bgpvpn(v) })
            if route.bgpvpnID == nil { route.bgpvpnID = optionalString(ro, "bgpvpn_id") }
            routes.append(route)
        }
        return PortAssociationInfo(
            id: id, bgpvpn: try bgpvpn(o["bgpvpn"]), portID: try string(o, "port_id"), subnets: try subnets(o["subnets"]), routes: routes,
            advertiseFixedIPs: o["advertise_fixed_ips"]?.boolValue ?? true)
    }
}
