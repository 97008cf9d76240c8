import BGPEngine
import BGPSession
import BGPWire

/// The VPN instances of this host, by external id, and the attach/detach rules of the original's
/// API (reference §1.5-1.8): instances are created on their first attach and stopped after their
/// last detach; endpoints obey one IP ↔ one MAC and one MAC ↔ one local port; a repeated attach
/// refreshes the route; a MAC-only E-VPN endpoint gives way to the same MAC with an IP.
/// Every refused request changes nothing. Lives on the engine's event loop.
public final class VPNManager {
    public struct Configuration: Sendable {
        /// Our BGP address: route distinguishers `<address>:<n>`, type-3 originating router.
        public var bgpAddress: IPv4Address
        /// Salts the tie-break between equal routes (the host name in the original).
        public var salt: String

        public init(bgpAddress: IPv4Address, salt: String) {
            self.bgpAddress = bgpAddress
            self.salt = salt
        }
    }

    /// An endpoint as attached: the key is (MAC, IP as given).
    struct EndpointKey: Hashable {
        var mac: MACAddress
        var ip: String?
    }

    struct EndpointRecord {
        var endpoint: Endpoint
        /// What is advertised: the /32, or the prefix as given with `advertise_subnet`.
        var prefix: IPPrefix?
        /// A per-endpoint RD (allocated), when the instance RD is not used.
        var ownRD: UInt32?
        var localPref: UInt32?
        var loadBalancingOrder: UInt32
        var description: JSONValue?
    }

    /// An instance and what the manager keeps about it.
    final class Managed {
        let type: VPNType
        let instance: VPNInstance
        /// Forced by the `vni` of the first attach (not from the label allocator).
        let forcedVNI: UInt32?
        let rdNumber: UInt32
        var description: JSONValue?
        var endpoints: [EndpointKey: EndpointRecord] = [:]
        var portOfMAC: [MACAddress: LocalPort] = [:]
        var labelOfMAC: [MACAddress: UInt32] = [:]
        var macOfIP: [String: MACAddress] = [:]

        init(type: VPNType, instance: VPNInstance, forcedVNI: UInt32?, rdNumber: UInt32) {
            self.type = type
            self.instance = instance
            self.forcedVNI = forcedVNI
            self.rdNumber = rdNumber
        }
    }

    public let configuration: Configuration
    let engine: RouteEngine
    let drivers: [VPNType: any DataplaneDriver]
    var labels = IdentifierAllocator.labels()
    var routeDistinguishers = IdentifierAllocator.routeDistinguishers()
    var instanceIDs = IdentifierAllocator.instanceIDs()
    var instances: [String: Managed] = [:]
    var byWorker: [WorkerID: Managed] = [:]

    public init(configuration: Configuration, engine: RouteEngine, drivers: [VPNType: any DataplaneDriver]) {
        self.configuration = configuration
        self.engine = engine
        self.drivers = drivers
    }

    /// For tests: a manager whose instance ids start near the top of their range.
    convenience init(configuration: Configuration, engine: RouteEngine, drivers: [VPNType: any DataplaneDriver], instanceIDs: IdentifierAllocator) {
        self.init(configuration: configuration, engine: engine, drivers: drivers)
        self.instanceIDs = instanceIDs
    }

    public func instance(_ externalID: String) -> VPNInstance? { instances[externalID]?.instance }
    public var externalIDs: [String] { instances.keys.sorted() }

    /// Delivers an engine event to the instance whose worker it is for.
    public func deliver(_ worker: WorkerID, _ event: RouteEngine.LocalEvent) { byWorker[worker]?.instance.handle(event) }

    // MARK: Attach

    public func attach(_ r: AttachRequest) throws(APIError) {
        let created = instances[r.vpnInstanceID] == nil
        let managed: Managed
        if let existing = instances[r.vpnInstanceID] { managed = existing } else { managed = try create(r) }
        guard managed.type == r.vpnType else {
            throw APIError("VPN instance \(r.vpnInstanceID) exists with vpn_type \(managed.type.rawValue), not \(r.vpnType.rawValue)")
        }
        do throws(APIError) {
            try plug(r, into: managed)
        } catch {
            if created { remove(managed, externalID: r.vpnInstanceID) }
            throw error
        }
        managed.description = r.instanceDescription
        managed.instance.updateRouteTargets(import: r.importRTs, export: r.exportRTs)
    }

    private func create(_ r: AttachRequest) throws(APIError) -> Managed {
        guard let driver = drivers[r.vpnType] else { throw APIError(status: 500, title: "Internal Server Error", "no \(r.vpnType.rawValue) dataplane driver") }
        if r.vni > 0, instances.values.contains(where: { $0.forcedVNI == r.vni }) {
            throw APIError("A VPN instance using vni \(r.vni) already exists.")
        }
        var ids = instanceIDs, labelAllocator = labels, rds = routeDistinguishers
        let id: UInt32, label: UInt32, rdNumber: UInt32
        do {
            id = try ids.allocate(for: r.vpnInstanceID)
            label = r.vni > 0 ? r.vni : try labelAllocator.allocate(for: r.vpnInstanceID)
            rdNumber = try rds.allocate(for: r.vpnInstanceID)
        } catch {
            throw APIError(status: 500, title: "Internal Server Error", "\(error)")
        }
        let rd = RouteDistinguisher.ipv4(configuration.bgpAddress, UInt16(rdNumber))
        let instance: VPNInstance
        let options = InstanceOptions(vni: r.vni > 0 ? r.vni : nil, linuxbr: r.vpnType == .evpn ? r.linuxbr : nil)
        do {
            switch r.vpnType {
            case .evpn:
                instance = try EVPNInstance(
                    id: id, externalID: r.vpnInstanceID, vni: label, routeDistinguisher: rd, importRTs: r.importRTs, exportRTs: r.exportRTs, engine: engine,
                    driver: driver, bgpAddress: configuration.bgpAddress, salt: configuration.salt, options: options)
            case .ipvpn:
                guard let gateway = r.gatewayIP, let address = r.ipAddress else { throw APIError.missing("gateway_ip") }
                instance = try IPVPNInstance(
                    id: id, externalID: r.vpnInstanceID, label: label, routeDistinguisher: rd, importRTs: r.importRTs, exportRTs: r.exportRTs, gateway: gateway,
                    prefixLength: address.prefix.length, engine: engine, driver: driver, bgpAddress: configuration.bgpAddress, salt: configuration.salt,
                    options: options)
            }
        } catch let e as APIError {
            throw e
        } catch {
            throw APIError(status: 500, title: "Internal Server Error", "the dataplane could not create the instance: \(error)")
        }
        (instanceIDs, labels, routeDistinguishers) = (ids, labelAllocator, rds)
        let managed = Managed(type: r.vpnType, instance: instance, forcedVNI: r.vni > 0 ? r.vni : nil, rdNumber: rdNumber)
        instances[r.vpnInstanceID] = managed
        byWorker[instance.worker] = managed
        return managed
    }

    private func plug(_ r: AttachRequest, into m: Managed) throws(APIError) {
        // Keyed by the parsed prefix: "10.0.0.1" and "10.0.0.1/32" are one endpoint (the original kept
        // the string and counted two, quirk Q6).
        let key = EndpointKey(mac: r.mac, ip: r.ipAddress.map { "\($0.prefix)" })
        if let ip = key.ip, let bound = m.macOfIP[ip], bound != r.mac {
            throw APIError("Inconsistent endpoint info: IP \(ip) already bound to a MAC address different from \(r.mac) (\(bound))")
        }
        if let port = m.portOfMAC[r.mac], port != r.localPort {
            throw APIError("Port information is not consistent. MAC address cannot be bound to two different ports. Previous plug for port \(port.raw.serialized()) (current plug for port \(r.localPort.raw.serialized()))")
        }
        let prefix = r.ipAddress.map { r.advertiseSubnet ? $0.prefix : IPPrefix($0.prefix.address, length: 32) }
        if var existing = m.endpoints[key] {
            // The same endpoint again: the route is refreshed (LOCAL_PREF may change), not the dataplane.
            existing.localPref = r.localPref
            existing.loadBalancingOrder = r.lbConsistentHashOrder
            existing.description = r.description
            m.endpoints[key] = existing
            m.instance.advertise(existing.endpoint, placement(existing, m))
            return
        }
        var rds = routeDistinguishers, labelAllocator = labels
        let label: UInt32
        do {
            label = m.type == .evpn ? m.instance.label : try m.labelOfMAC[r.mac] ?? labelAllocator.allocate(for: "\(r.vpnInstanceID) \(r.mac)")
        } catch {
            throw APIError(status: 500, title: "Internal Server Error", "\(error)")
        }
        var ownRD: UInt32?
        if m.type == .ipvpn, let prefix, prefix.length != 32 {
            do { ownRD = try rds.allocate(for: "\(r.vpnInstanceID) \(prefix)") } catch { throw APIError(status: 500, title: "Internal Server Error", "\(error)") }
        }
        var address: IPv4Address?
        if case .v4(let a)? = r.ipAddress?.prefix.address { address = a }
        let record = EndpointRecord(
            endpoint: Endpoint(mac: r.mac, ip: address, port: r.localPort, label: label, direction: r.direction), prefix: prefix, ownRD: ownRD,
            localPref: r.localPref, loadBalancingOrder: r.lbConsistentHashOrder, description: r.description)
        do {
            try m.instance.plug(record.endpoint, placement(record, m))
        } catch let e as APIError {
            throw e
        } catch {
            throw APIError(status: 500, title: "Internal Server Error", "the dataplane could not plug the endpoint: \(error)")
        }
        (routeDistinguishers, labels) = (rds, labelAllocator)
        m.endpoints[key] = record
        m.portOfMAC[r.mac] = r.localPort
        if m.type == .ipvpn { m.labelOfMAC[r.mac] = label }
        if let ip = key.ip { m.macOfIP[ip] = r.mac }
        // The MAC-only E-VPN endpoint gives way to the same MAC with an address.
        if key.ip != nil, let wildcard = m.endpoints[EndpointKey(mac: r.mac, ip: nil)] { unplug(wildcard, key: EndpointKey(mac: r.mac, ip: nil), from: m) }
    }

    private func rd(_ record: EndpointRecord, _ m: Managed) -> RouteDistinguisher {
        record.ownRD.map { .ipv4(configuration.bgpAddress, UInt16($0)) } ?? m.instance.routeDistinguisher
    }

    private func placement(_ record: EndpointRecord, _ m: Managed) -> VPNInstance.Placement {
        VPNInstance.Placement(prefix: record.prefix, routeDistinguisher: rd(record, m), localPref: record.localPref, loadBalancingOrder: record.loadBalancingOrder)
    }

    // MARK: Detach

    public func detach(_ r: DetachRequest) throws(APIError) {
        guard let m = instances[r.vpnInstanceID] else { throw APIError("VPN \(r.vpnInstanceID) could not be found") }
        var keys: [EndpointKey]
        if let ip = r.ipAddress.map({ "\($0.prefix)" }) {
            if let bound = m.macOfIP[ip], bound != r.mac {
                throw APIError("Inconsistent endpoint info: IP \(ip) bound to \(bound), not to \(r.mac)")
            }
            let key = EndpointKey(mac: r.mac, ip: ip)
            guard m.endpoints[key] != nil else { throw APIError("Endpoint (\(r.mac), \(ip)) not plugged yet, can't unplug") }
            keys = [key]
        } else {
            // E-VPN without an address: every address of the MAC, then the MAC-only endpoint.
            keys = m.endpoints.keys.filter { $0.mac == r.mac && $0.ip != nil }.sorted { ($0.ip ?? "") < ($1.ip ?? "") }
            if m.endpoints[EndpointKey(mac: r.mac, ip: nil)] != nil { keys.append(EndpointKey(mac: r.mac, ip: nil)) }
        }
        for key in keys { if let record = m.endpoints[key] { unplug(record, key: key, from: m) } }
        if m.endpoints.isEmpty { remove(m, externalID: r.vpnInstanceID) }
    }

    private func unplug(_ record: EndpointRecord, key: EndpointKey, from m: Managed) {
        m.endpoints[key] = nil
        let port = record.endpoint.port
        let lastOfPort = !m.endpoints.values.contains { $0.endpoint.port.linuxif == port.linuxif }
        try? m.instance.unplug(record.endpoint, placement(record, m), lastEndpointOfPort: lastOfPort)
        if let n = record.ownRD { routeDistinguishers.release(n) }
        if let ip = key.ip { m.macOfIP[ip] = nil }
        if !m.endpoints.keys.contains(where: { $0.mac == key.mac }) {
            m.portOfMAC[key.mac] = nil
            if let label = m.labelOfMAC.removeValue(forKey: key.mac) { labels.release(label) }
        }
    }

    /// Stops an instance and forgets it; its label (unless forced) and RD go back to the allocators.
    private func remove(_ m: Managed, externalID: String) {
        m.instance.stop()
        if m.forcedVNI == nil { labels.release(m.instance.label) }
        routeDistinguishers.release(m.rdNumber)
        instanceIDs.release(m.instance.id)
        instances[externalID] = nil
        byWorker[m.instance.worker] = nil
    }

    /// Every instance stops (daemon shutdown).
    public func stopAll() {
        for (id, m) in instances { remove(m, externalID: id) }
    }

    /// `/vpns/instances`: one entry per instance (reference §2.2).
    public func instanceList(href: (String) -> JSONValue) -> JSONValue {
        .array(instances.keys.sorted().compactMap { id in
            guard let m = instances[id] else { return nil }
            var fields: [(String, JSONValue)] = [("id", .string(id)), ("name", .string(name(m)))]
            if let d = m.description { fields.append(("description", d)) }
            fields.append(("href", href(id)))
            return .object(fields)
        })
    }

    func name(_ m: Managed) -> String { "\(m.type == .evpn ? "EVI" : "VRF")-\(m.instance.id)" }

    /// `/vpns/instances_per_vni`: instances with a forced VNI.
    public var instancesPerVNI: JSONValue {
        .object(instances.sorted { $0.key < $1.key }.compactMap { id, m in
            m.forcedVNI.map { ("\($0)", .object([("name", .string(name(m))), ("external_instance_id", .string(id))])) }
        })
    }

    /// `/vpns/instances/<id>` (reference §2.3), the parts this version has.
    public func instanceNode(_ externalID: String) -> JSONValue? {
        guard let m = instances[externalID] else { return nil }
        let i = m.instance
        var fields: [(String, JSONValue)] = [
            ("instance_type", .string(m.type == .evpn ? "EVI" : "VRF")), ("external_instance_id", .string(externalID)),
            ("description", m.description ?? .null), ("name", .string(name(m))),
            ("route_targets", .object([("import", .array(i.importRTs.map { .string("\($0)") })), ("export", .array(i.exportRTs.map { .string("\($0)") }))])),
            ("instance_dataplane_id", JSONValue(i.label)),
        ]
        if let vrf = i as? IPVPNInstance {
            fields += [("gateway_ip", .string("\(vrf.gateway)")), ("subnet_prefix_length", JSONValue(vrf.prefixLength))]
        }
        var ports: [String: [JSONValue]] = [:]
        for record in m.endpoints.values.sorted(by: { "\($0.endpoint.mac)\($0.prefix.map { "\($0)" } ?? "")" < "\($1.endpoint.mac)\($1.prefix.map { "\($0)" } ?? "")" }) {
            let e = record.endpoint
            ports[e.port.linuxif ?? e.port.raw.serialized(), default: []].append(.object([
                ("label", JSONValue(e.label)), ("mac_address", .string("\(e.mac)")), ("ip_address", record.prefix.map { .string("\($0)") } ?? .null),
                ("local_pref", record.localPref.map { JSONValue($0) } ?? .null), ("rd", .string("\(rd(record, m))")),
                ("description", record.description ?? .null), ("direction", .string(e.direction.rawValue)),
            ]))
        }
        fields += [
            ("ports", .object(ports.keys.sorted().map { ($0, .object([("endpoints", .array(ports[$0] ?? []))])) })),
            ("readvertise", .object([])), ("attract_traffic", .object([])), ("fallback", .null),
            ("dataplane", i.dataplane.lookingGlass), ("best_routes", i.bestRoutesLookingGlass), ("adv_routes", i.advertisedLookingGlass),
        ]
        return .object(fields)
    }

    public var instanceCount: Int { instances.count }
}
