import BGPEngine
import BGPWire
import Dataplane

/// The VPN manager's part of the looking glass (reference §2.2 `vpns`, §2.3 instance nodes).
extension VPNManager {
    /// `/vpns/instances`: one entry per instance.
    public func instanceList(href: (String) -> JSONValue) -> JSONValue {
        .array(instances.keys.sorted().compactMap { id in
            guard let m = instances[id] else { return nil }
            var fields: [(String, JSONValue)] = [("id", .string(id)), ("name", .string(m.instance.name))]
            if let d = m.description { fields.append(("description", d)) }
            fields.append(("href", href(id)))
            return .object(fields)
        })
    }

    /// `/vpns/instances_per_vni`: instances with a forced VNI.
    public var instancesPerVNI: JSONValue {
        .object(instances.sorted { $0.key < $1.key }.compactMap { id, m in
            m.forcedVNI.map { ("\($0)", .object([("name", .string(m.instance.name)), ("external_instance_id", .string(id))])) }
        })
    }

    /// `/vpns/dataplane/drivers`: one entry per VPN type.
    public func driverList(href: (String) -> JSONValue) -> JSONValue {
        .array(drivers.keys.map(\.rawValue).sorted().map { .object([("id", .string($0)), ("href", href($0))]) })
    }

    /// `/vpns/dataplane/drivers/<type>`.
    public func driverNode(_ type: String) -> JSONValue? {
        guard let t = VPNType(rawValue: type), let driver = drivers[t] else { return nil }
        return driver.lookingGlass
    }

    /// `/vpns/dataplane/ids`: the label allocator, label → what it was allocated for.
    public var labelAllocations: JSONValue { .object(labels.allocations.map { ("\($0.value)", .string($0.description)) }) }

    /// `/vpns/instances/<id>` (reference §2.3). `instanceHref` makes the href of another instance,
    /// `driverHref` the one of a driver.
    public func instanceNode(_ externalID: String, instanceHref: (String) -> JSONValue, driverHref: (String) -> JSONValue) -> JSONValue? {
        guard let m = instances[externalID] else { return nil }
        let i = m.instance
        let targets: ([ExtendedCommunity]) -> JSONValue = { .array($0.map { .string("\($0)") }) }
        var fields: [(String, JSONValue)] = [
            ("instance_type", .string(m.type == .evpn ? "EVI" : "VRF")), ("external_instance_id", .string(externalID)),
            ("description", m.description ?? .null), ("name", .string(i.name)),
            ("route_targets", .object([("import", targets(i.importRTs)), ("export", targets(i.exportRTs))])),
            ("instance_dataplane_id", JSONValue(i.label)), ("instance_rd", .string("\(i.routeDistinguisher)")),
        ]
        var ports: [String: [JSONValue]] = [:]
        for record in m.endpoints.values.sorted(by: { "\($0.endpoint.mac)\($0.prefix.map { "\($0)" } ?? "")" < "\($1.endpoint.mac)\($1.prefix.map { "\($0)" } ?? "")" }) {
            let e = record.endpoint
            ports[e.port.linuxif ?? e.port.raw.serialized(), default: []].append(.object([
                ("label", JSONValue(e.label)), ("mac_address", .string("\(e.mac)")), ("ip_address", record.ipText.map { .string($0) } ?? .null),
                ("local_pref", record.localPref.map { JSONValue($0) } ?? .null), ("rd", .string("\(placement(record, m).routeDistinguisher)")),
                ("description", record.description ?? .null), ("direction", .string(e.direction.rawValue)),
            ]))
        }
        let dataplane: JSONValue
        if case .object(let f) = i.dataplane.lookingGlass {
            dataplane = .object([("driver", .object([("id", .string(m.type.rawValue)), ("href", driverHref(m.type.rawValue))]))] + f)
        } else {
            dataplane = i.dataplane.lookingGlass
        }
        fields += [("ports", .object(ports.keys.sorted().map { ($0, .object([("endpoints", .array(ports[$0] ?? []))])) }))]
        fields += i.lookingGlassFields(href: instanceHref)
        fields += [
            ("fallback", m.fallback ?? .null), ("dataplane", dataplane), ("received_routes", i.receivedRoutesLookingGlass),
            ("best_routes", i.bestRoutesLookingGlass), ("adv_routes", i.advertisedLookingGlass),
            ("internals", .object([("subscriptions", .array(engine.subscriptions(of: i.worker).map { .string("\($0)") }.sorted { $0.serialized() < $1.serialized() }))])),
        ]
        if let rt = m.redirectTarget { fields.append(("redirect_to", .string("\(rt)"))) }
        return .object(fields)
    }

    /// The workers the looking glass lists under `bgp/workers`: instances with subscriptions.
    public var instanceWorkers: [(name: String, externalID: String)] {
        instances.values.filter { !engine.subscriptions(of: $0.instance.worker).isEmpty }.map { ($0.instance.name, $0.instance.externalID) }.sorted { $0.name < $1.name }
    }
}
