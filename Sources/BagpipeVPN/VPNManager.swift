import BGPEngine
import BGPSession
import BGPWire
import Dataplane
import Logging

/// The VPN instances of this host, by external id, and the attach/detach rules of the original's
/// API (reference §1.5-1.8): instances are created on their first attach and stopped after their
/// last detach; endpoints obey one IP ↔ one MAC and one MAC ↔ one local port; a repeated attach
/// refreshes the route; a MAC-only E-VPN endpoint gives way to the same MAC with an IP.
/// Every refused request changes nothing. It also owns the redirect VRFs (§8.3) and the E-VPN to
/// VRF links (§8.6). Lives on the engine's event loop.
public final class VPNManager {
    public struct Configuration: Sendable {
        /// Our BGP address: route distinguishers `<address>:<n>`, type-3 originating router.
        public var bgpAddress: IPv4Address
        /// Salts the tie-break between equal routes (the host name in the original).
        public var salt: String
        /// IP VPN endpoints with IPv6 addresses (VPNv6) are accepted only when the sessions carry
        /// the family (`[BGP] enable_ipv6_vpn`).
        public var ipv6VPN: Bool

        public init(bgpAddress: IPv4Address, salt: String, ipv6VPN: Bool = true) {
            self.bgpAddress = bgpAddress
            self.salt = salt
            self.ipv6VPN = ipv6VPN
        }
    }

    /// An endpoint as attached: the key is (MAC, IP as parsed).
    struct EndpointKey: Hashable {
        var mac: MACAddress
        var ip: String?
    }

    struct EndpointRecord {
        var endpoint: Endpoint
        /// `ip_address` as the last attach gave it ("10.0.0.1" or "10.0.0.1/24"): the looking glass shows it so.
        var ipText: String?
        /// What is advertised: the host route, or the prefix as given with `advertise_subnet`.
        var prefix: IPPrefix?
        /// The endpoint's own RD (allocated), for IP VPN endpoints that forward to the port.
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
        var fallback: JSONValue?
        var endpoints: [EndpointKey: EndpointRecord] = [:]
        var portOfMAC: [MACAddress: LocalPort] = [:]
        var labelOfMAC: [MACAddress: UInt32] = [:]
        var macOfIP: [String: MACAddress] = [:]
        /// A VRF's link to an E-VPN instance, and that instance's external id.
        var gatewayLink: (link: GatewayLink, evi: String)?
        /// A redirect VRF: the route target it imports.
        var redirectTarget: ExtendedCommunity?

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
    var initializedDrivers: Set<VPNType> = []
    var failingReconciles: Set<VPNType> = []
    var labels = IdentifierAllocator.labels()
    var routeDistinguishers = IdentifierAllocator.routeDistinguishers()
    var instanceIDs = IdentifierAllocator.instanceIDs()
    /// Identifiers the run before a restart used (VPNManager+Identifiers.swift), reused when free.
    public var identifierHints: [String: UInt32] = [:]
    var instances: [String: Managed] = [:]
    var byWorker: [WorkerID: Managed] = [:]
    /// Redirect VRFs by route target, with the instance ids of the VRFs redirecting to them.
    var redirects = SharedObjects<ExtendedCommunity, UInt32, Managed>()
    let logger = Logger(label: "bagpipe.vpn.manager")

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
    public var instanceCount: Int { instances.count }
    /// Endpoints attached, every instance.
    public var endpointCount: Int { instances.values.reduce(0) { $0 + $1.endpoints.count } }

    /// Delivers an engine event to the instance whose worker it is for.
    public func deliver(_ worker: WorkerID, _ event: RouteEngine.LocalEvent) { byWorker[worker]?.instance.handle(event) }


    // MARK: Attach

    public func attach(_ r: AttachRequest) throws(VPNError) {
        try check(r)
        let created = instances[r.vpnInstanceID] == nil
        let managed: Managed
        if let existing = instances[r.vpnInstanceID] { managed = existing } else { managed = try create(r) }
        guard managed.type == r.vpnType else {
            throw VPNError("VPN instance \(r.vpnInstanceID) exists with vpn_type \(managed.type.rawValue), not \(r.vpnType.rawValue)")
        }
        guard managed.redirectTarget == nil else { throw VPNError("\(r.vpnInstanceID) is a redirect VRF, which has no ports") }
        do throws(VPNError) {
            var request = r
            if let eviID = r.localPort.eviID { request.localPort = try link(managed, toEVI: eviID, request: r) }
            try plug(request, into: managed)
        } catch {
            if created { remove(managed) }
            throw error
        }
        managed.description = r.instanceDescription
        if let fallback = r.fallback, fallback != managed.fallback {
            managed.fallback = fallback
            managed.instance.dataplane.updateFallback(r.typedFallback)
        }
        managed.instance.updateRouteTargets(import: r.importRTs, export: r.exportRTs)
    }

    /// What can be refused before anything is looked up.
    private func check(_ r: AttachRequest) throws(VPNError) {
        if r.vpnType == .evpn, r.advertiseSubnet, let ip = r.ipAddress, ip.prefix.length != UInt8(ip.prefix.address.bitWidth) {
            throw VPNError("advertise_subnet with a prefix (\(ip.text)) is for IP VPN; an E-VPN endpoint has one address")
        }
        if r.vpnType == .ipvpn, let ip = r.ipAddress, !ip.prefix.isIPv4, !configuration.ipv6VPN {
            throw VPNError("IPv6 endpoints need the VPNv6 family: set [BGP] enable_ipv6_vpn = True")
        }
        if r.localPort.eviID != nil, r.vpnType != .ipvpn { throw VPNError("local_port.evpn links an E-VPN instance into an IP VPN: vpn_type must be ipvpn") }
    }

    private func driver(_ type: VPNType) throws(VPNError) -> any DataplaneDriver {
        guard let driver = drivers[type] else { throw VPNError.failed("no \(type.rawValue) dataplane driver") }
        // Reference §9.1: on the first instance of a type, leftovers of an earlier run go (errors
        // only logged), then the driver prepares the host (errors fail this attach).
        if !initializedDrivers.contains(type) {
            do { try driver.resetState() } catch { logger.warning("\(type.rawValue) dataplane driver: cleaning up an earlier run failed: \(error)") }
            do { try driver.initialize() } catch { throw VPNError.failed("the \(type.rawValue) dataplane driver could not initialize: \(error)") }
            initializedDrivers.insert(type)
        }
        return driver
    }

    private func create(_ r: AttachRequest) throws(VPNError) -> Managed {
        if r.vni > 0, instances.values.contains(where: { $0.forcedVNI == r.vni }) {
            throw VPNError("A VPN instance using vni \(r.vni) already exists.")
        }
        let options = InstanceOptions(vni: r.vni > 0 ? r.vni : nil, linuxbr: r.vpnType == .evpn ? r.linuxbr : nil)
        return try create(type: r.vpnType, externalID: r.vpnInstanceID, vni: r.vni, importRTs: r.importRTs, exportRTs: r.exportRTs, options: options) {
            (id, label, rd, driver) throws(VPNError) -> VPNInstance in
            switch r.vpnType {
            case .evpn:
                return try Self.dataplaneErrors {
                    try EVPNInstance(
                        id: id, externalID: r.vpnInstanceID, vni: label, routeDistinguisher: rd, importRTs: r.importRTs, exportRTs: r.exportRTs, engine: self.engine,
                        driver: driver, bgpAddress: self.configuration.bgpAddress, salt: self.configuration.salt, options: options)
                }
            case .ipvpn:
                guard let gateway = r.gatewayIP, let address = r.ipAddress else { throw VPNError.missing("gateway_ip") }
                return try Self.dataplaneErrors {
                    try IPVPNInstance(
                        id: id, externalID: r.vpnInstanceID, label: label, routeDistinguisher: rd, importRTs: r.importRTs, exportRTs: r.exportRTs, gateway: gateway,
                        prefixLength: address.prefix.length, engine: self.engine, driver: driver, bgpAddress: self.configuration.bgpAddress, salt: self.configuration.salt,
                        options: options, readvertise: r.readvertise, attract: r.attractTraffic, redirector: self)
                }
            }
        }
    }

    static func dataplaneErrors<T>(_ body: () throws -> T) throws(VPNError) -> T {
        do {
            return try body()
        } catch {
            throw .dataplane(error, "the dataplane could not create the instance")
        }
    }

    /// Allocates the instance's identifiers, builds it, and registers it; nothing is kept when a step fails.
    private func create(
        type: VPNType, externalID: String, vni: UInt32, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity], options: InstanceOptions,
        build: (UInt32, UInt32, RouteDistinguisher, any DataplaneDriver) throws(VPNError) -> VPNInstance
    ) throws(VPNError) -> Managed {
        let driver = try driver(type)
        var ids = instanceIDs, labelAllocator = labels, rds = routeDistinguishers
        let id: UInt32, label: UInt32, rdNumber: UInt32
        do {
            id = try ids.allocate(for: externalID, hint: identifierHints[Self.hintKey("id", externalID)])
            label = vni > 0 ? vni : try labelAllocator.allocate(for: externalID, hint: identifierHints[Self.hintKey("label", externalID)])
            rdNumber = try rds.allocate(for: externalID, hint: identifierHints[Self.hintKey("rd", externalID)])
        } catch {
            throw VPNError.failed("\(error)")
        }
        let instance = try build(id, label, .ipv4(configuration.bgpAddress, UInt16(rdNumber)), driver)
        (instanceIDs, labels, routeDistinguishers) = (ids, labelAllocator, rds)
        let managed = Managed(type: type, instance: instance, forcedVNI: vni > 0 ? vni : nil, rdNumber: rdNumber)
        instances[externalID] = managed
        byWorker[instance.worker] = managed
        logger.info("created \(instance.name) for \(externalID)")
        return managed
    }

    private func plug(_ r: AttachRequest, into m: Managed) throws(VPNError) {
        // Keyed by the parsed prefix: "10.0.0.1" and "10.0.0.1/32" are one endpoint (the original kept
        // the string and counted two, quirk Q6).
        let key = EndpointKey(mac: r.mac, ip: r.ipAddress.map { "\($0.prefix)" })
        if let ip = key.ip, let bound = m.macOfIP[ip], bound != r.mac {
            throw VPNError("Inconsistent endpoint info: IP \(ip) already bound to a MAC address different from \(r.mac) (\(bound))")
        }
        if let port = m.portOfMAC[r.mac], port != r.localPort {
            throw VPNError("Port information is not consistent. MAC address cannot be bound to two different ports. Previous plug for port \(port.raw.serialized()) (current plug for port \(r.localPort.raw.serialized()))")
        }
        let prefix = r.ipAddress.map { r.advertiseSubnet ? $0.prefix : IPPrefix($0.prefix.address, length: UInt8($0.prefix.address.bitWidth)) }
        if var existing = m.endpoints[key] {
            // The same endpoint again: the route is refreshed (LOCAL_PREF may change), not the dataplane.
            existing.localPref = r.localPref
            existing.ipText = r.ipAddress?.text
            existing.loadBalancingOrder = r.lbConsistentHashOrder
            existing.description = r.description
            m.endpoints[key] = existing
            m.instance.advertise(existing.endpoint, placement(existing, m))
            return
        }
        var rds = routeDistinguishers, labelAllocator = labels
        let label: UInt32
        var ownRD: UInt32?
        do {
            label =
                m.type == .evpn
                ? m.instance.label
                : try m.labelOfMAC[r.mac] ?? labelAllocator.allocate(for: "\(r.vpnInstanceID) \(r.mac)", hint: identifierHints[Self.hintKey("label", r.vpnInstanceID, "\(r.mac)")])
            // Every IP VPN endpoint that forwards to its port has an RD of its own: its subnet route
            // and what the VRF re-advertises through it use it (reference §8.1).
            if m.type == .ipvpn, r.direction != .fromPort {
                ownRD = try rds.allocate(for: "\(r.vpnInstanceID) \(key.mac) \(key.ip ?? "")", hint: identifierHints[Self.hintKey("rd", r.vpnInstanceID, "\(key.mac)", key.ip ?? "")])
            }
        } catch {
            throw VPNError.failed("\(error)")
        }
        let record = EndpointRecord(
            endpoint: Endpoint(mac: r.mac, ip: r.ipAddress?.prefix.address, port: r.localPort, label: label, direction: r.direction), ipText: r.ipAddress?.text, prefix: prefix, ownRD: ownRD,
            localPref: r.localPref, loadBalancingOrder: r.lbConsistentHashOrder, description: r.description)
        do {
            try m.instance.plug(record.endpoint, placement(record, m))
        } catch {
            throw .dataplane(error, "the dataplane could not plug the endpoint")
        }
        (routeDistinguishers, labels) = (rds, labelAllocator)
        m.endpoints[key] = record
        m.portOfMAC[r.mac] = r.localPort
        if m.type == .ipvpn { m.labelOfMAC[r.mac] = label }
        if let ip = key.ip { m.macOfIP[ip] = r.mac }
        // The MAC-only E-VPN endpoint gives way to the same MAC with an address.
        if key.ip != nil, let wildcard = m.endpoints[EndpointKey(mac: r.mac, ip: nil)] { unplug(wildcard, key: EndpointKey(mac: r.mac, ip: nil), from: m) }
    }

    func placement(_ record: EndpointRecord, _ m: Managed) -> VPNInstance.Placement {
        let own = record.ownRD.map { RouteDistinguisher.ipv4(configuration.bgpAddress, UInt16($0)) }
        let isHost = record.prefix.map { Int($0.length) == $0.address.bitWidth } ?? true
        return VPNInstance.Placement(
            prefix: record.prefix, routeDistinguisher: isHost ? m.instance.routeDistinguisher : own ?? m.instance.routeDistinguisher, endpointRD: own,
            localPref: record.localPref, loadBalancingOrder: record.loadBalancingOrder)
    }

    // MARK: Detach

    public func detach(_ r: DetachRequest) throws(VPNError) {
        guard let m = instances[r.vpnInstanceID] else { throw VPNError("VPN \(r.vpnInstanceID) could not be found") }
        var keys: [EndpointKey]
        if let ip = r.ipAddress.map({ "\($0.prefix)" }) {
            if let bound = m.macOfIP[ip], bound != r.mac {
                throw VPNError("Inconsistent endpoint info: IP \(ip) bound to \(bound), not to \(r.mac)")
            }
            let key = EndpointKey(mac: r.mac, ip: ip)
            guard m.endpoints[key] != nil else { throw VPNError("Endpoint (\(r.mac), \(ip)) not plugged yet, can't unplug") }
            keys = [key]
        } else {
            // E-VPN without an address: every address of the MAC, then the MAC-only endpoint.
            keys = m.endpoints.keys.filter { $0.mac == r.mac && $0.ip != nil }.sorted { ($0.ip ?? "") < ($1.ip ?? "") }
            if m.endpoints[EndpointKey(mac: r.mac, ip: nil)] != nil { keys.append(EndpointKey(mac: r.mac, ip: nil)) }
        }
        for key in keys { if let record = m.endpoints[key] { unplug(record, key: key, from: m) } }
        if let (link, eviID) = m.gatewayLink, !m.endpoints.values.contains(where: { $0.endpoint.port.linuxif == link.vrfSide }) { unlink(m, link: link, eviID: eviID) }
        if m.endpoints.isEmpty { remove(m) }
    }

    /// Undoes an attach whose dataplane work failed after it was accepted (the drivers run on the
    /// `DataplaneExecutor`, so their errors come back later): its endpoint goes, and the instance
    /// with it when that was its only endpoint, as if the attach had been refused.
    public func rollBack(_ r: AttachRequest) {
        guard let m = instances[r.vpnInstanceID] else { return }
        let key = EndpointKey(mac: r.mac, ip: r.ipAddress.map { "\($0.prefix)" })
        if let record = m.endpoints[key] { unplug(record, key: key, from: m) }
        if let (link, eviID) = m.gatewayLink, !m.endpoints.values.contains(where: { $0.endpoint.port.linuxif == link.vrfSide }) { unlink(m, link: link, eviID: eviID) }
        if m.endpoints.isEmpty { remove(m) }
        logger.warning("attach of \(r.mac) to \(r.vpnInstanceID) undone: the dataplane refused it")
    }

    private func unplug(_ record: EndpointRecord, key: EndpointKey, from m: Managed) {
        m.endpoints[key] = nil
        let port = record.endpoint.port
        let lastOfPort = !m.endpoints.values.contains { $0.endpoint.port.linuxif == port.linuxif }
        do {
            try m.instance.unplug(record.endpoint, placement(record, m), lastEndpointOfPort: lastOfPort)
        } catch {
            logger.warning("\(m.instance.name): the dataplane could not unplug \(record.endpoint.mac): \(error)")
        }
        if let n = record.ownRD { routeDistinguishers.release(n) }
        if let ip = key.ip { m.macOfIP[ip] = nil }
        if !m.endpoints.keys.contains(where: { $0.mac == key.mac }) {
            m.portOfMAC[key.mac] = nil
            if let label = m.labelOfMAC.removeValue(forKey: key.mac) { labels.release(label) }
        }
    }

    /// Stops an instance and forgets it; its label (unless forced) and RD go back to the allocators.
    private func remove(_ m: Managed) {
        let externalID = m.instance.externalID
        guard instances[externalID] === m else { return }
        instances[externalID] = nil
        byWorker[m.instance.worker] = nil
        if let (link, eviID) = m.gatewayLink { unlink(m, link: link, eviID: eviID) }
        if let evi = m.instance as? EVPNInstance { evi.gatewayPortDown() }
        m.instance.stop()
        for record in m.endpoints.values { if let n = record.ownRD { routeDistinguishers.release(n) } }
        for label in m.labelOfMAC.values { labels.release(label) }
        if m.forcedVNI == nil { labels.release(m.instance.label) }
        routeDistinguishers.release(m.rdNumber)
        instanceIDs.release(m.instance.id)
        logger.info("stopped \(m.instance.name) (\(externalID))")
    }

    /// The shortest reconcile interval of the drivers (nil: none asks for it).
    public var reconcileInterval: Double? { drivers.values.compactMap(\.reconcileInterval).filter { $0 > 0 }.min() }

    /// Runs `reconcile` of the initialized drivers (a driver not used yet has nothing to lose). A
    /// failure is logged once until the driver succeeds again (ovs-vswitchd may be down a while).
    public func reconcileDrivers() {
        for type in initializedDrivers.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let driver = drivers[type], driver.reconcileInterval != nil else { continue }
            do {
                if let repaired = try driver.reconcile() { logger.warning("\(type.rawValue) dataplane driver: \(repaired)", metadata: ["lg": "driver-\(type.rawValue)"]) }
                failingReconciles.remove(type)
            } catch {
                if failingReconciles.insert(type).inserted { logger.warning("\(type.rawValue) dataplane driver: cannot check the dataplane (will retry): \(error)") }
            }
        }
    }

    /// The drivers apply what they queued.
    public func flushDrivers() {
        for type in initializedDrivers.sorted(by: { $0.rawValue < $1.rawValue }) { drivers[type]?.flush() }
    }

    /// Every instance stops (daemon shutdown), then the drivers.
    public func stopAll() {
        for m in instances.values { remove(m) }
        for driver in drivers.values { driver.stop() }
    }

    // MARK: E-VPN to VRF links (reference §8.6)

    /// Links the E-VPN instance `eviID` into the VRF of `m` (or reuses the link); the endpoint is then
    /// plugged on the VRF side of the veth pair.
    private func link(_ m: Managed, toEVI eviID: String, request r: AttachRequest) throws(VPNError) -> LocalPort {
        guard let eviManaged = instances[eviID], let evi = eviManaged.instance as? EVPNInstance else {
            throw VPNError("local_port.evpn.id: no E-VPN instance \(eviID)")
        }
        guard let vrf = m.instance as? IPVPNInstance else { throw VPNError("local_port.evpn is for IP VPN instances") }
        if let (link, linked) = m.gatewayLink {
            guard linked == eviID else { throw VPNError("\(r.vpnInstanceID) is already linked to the E-VPN instance \(linked)") }
            return LocalPort(linuxif: link.vrfSide, eviID: eviID, raw: r.localPort.raw)
        }
        if let port = evi.gatewayPort { throw VPNError("the E-VPN instance \(eviID) is already linked to \(port.vrf.externalID)") }
        let link = GatewayLink(evi: evi.id, vrf: vrf.id)
        guard let driver = drivers[.ipvpn] else { throw VPNError.failed("no ipvpn dataplane driver") }
        do {
            try driver.createGatewayLink(link)
            try evi.setGatewayPort(link.eviSide, vrf: vrf)
        } catch {
            driver.deleteGatewayLink(link)
            throw VPNError.failed("could not link \(eviID) into \(r.vpnInstanceID): \(error)")
        }
        m.gatewayLink = (link, eviID)
        logger.info("linked \(evi.name) into \(vrf.name) through \(link.eviSide)/\(link.vrfSide)")
        return LocalPort(linuxif: link.vrfSide, eviID: eviID, raw: r.localPort.raw)
    }

    private func unlink(_ m: Managed, link: GatewayLink, eviID: String) {
        m.gatewayLink = nil
        if let evi = instances[eviID]?.instance as? EVPNInstance { evi.gatewayPortDown() }
        drivers[.ipvpn]?.deleteGatewayLink(link)
    }
}

// MARK: Redirect VRFs (reference §8.3)

extension VPNManager: TrafficRedirector {
    /// `redirect-to-ipvpn-<asn>_<number>`: one per route target, shared by the VRFs redirecting to it.
    public static func redirectInstanceID(_ routeTarget: ExtendedCommunity) -> String {
        "redirect-to-ipvpn-\(routeTarget.value >> 32)_\(routeTarget.value & 0xFFFF_FFFF)"
    }

    public func redirectInstance(for routeTarget: ExtendedCommunity, user: IPVPNInstance) throws -> IPVPNInstance {
        let managed = try redirects.acquire(routeTarget, by: user.id) { () throws -> Managed in
            let externalID = Self.redirectInstanceID(routeTarget)
            let managed = try create(type: .ipvpn, externalID: externalID, vni: 0, importRTs: [routeTarget], exportRTs: [], options: InstanceOptions()) {
                (id, label, rd, driver) throws(VPNError) -> VPNInstance in
                try Self.dataplaneErrors {
                    try IPVPNInstance(
                        id: id, externalID: externalID, label: label, routeDistinguisher: rd, importRTs: [routeTarget], exportRTs: [],
                        gateway: IPv4Address(127, 0, 0, 1), prefixLength: 32, engine: self.engine, driver: driver, bgpAddress: self.configuration.bgpAddress,
                        salt: self.configuration.salt, redirector: self)
                }
            }
            managed.redirectTarget = routeTarget
            return managed
        }
        guard let vrf = managed.instance as? IPVPNInstance else { throw VPNError.failed("redirect instance is not a VRF") }
        return vrf
    }

    public func stopRedirect(to routeTarget: ExtendedCommunity, user: IPVPNInstance) {
        if let managed = redirects.release(routeTarget, by: user.id) { remove(managed) }
    }
}
