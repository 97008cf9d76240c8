import NeutronModel

/// What a write needs besides the state: who asks, the time, the configuration.
public struct WriteContext: Sendable {
    public var caller: Caller
    public var now: String
    public var settings: ControllerSettings

    public init(caller: Caller, now: String = Identifiers.timestamp(), settings: ControllerSettings) {
        self.caller = caller
        self.now = now
        self.settings = settings
    }
}

/// The options of controller.conf that change what the API does.
public struct ControllerSettings: Sendable, Equatable {
    /// `[ml2_type_vxlan] vni_ranges`.
    public var vniRanges: [ClosedRange<Int>]
    /// Neutron's `base_mac`: the first three octets are kept.
    public var baseMAC: String
    /// `[distributed_routing]`: each router's own route target, from this range; nil: off.
    public var routerRouteTargets: RouterRouteTargets?

    public init(vniRanges: [ClosedRange<Int>] = [1000...1999], baseMAC: String = "fa:16:3e:00:00:00", routerRouteTargets: RouterRouteTargets? = RouterRouteTargets()) {
        self.vniRanges = vniRanges
        self.baseMAC = baseMAC
        self.routerRouteTargets = routerRouteTargets
    }
}

extension ControllerState {
    /// A resource the caller may see, or 404.
    func visible<R: NeutronResource>(_ r: R?, _ kind: ResourceKind, _ id: String, _ caller: Caller) throws -> R {
        guard let r, caller.sees(r) else { throw NeutronError.notFound(kind, id) }
        return r
    }

    public func network(_ id: String, for caller: Caller) throws -> Network { try visible(networks[id], .network, id, caller) }
    public func subnet(_ id: String, for caller: Caller) throws -> Subnet { try visible(subnets[id], .subnet, id, caller) }
    public func port(_ id: String, for caller: Caller) throws -> Port { try visible(ports[id], .port, id, caller) }
    public func router(_ id: String, for caller: Caller) throws -> Router { try visible(routers[id], .router, id, caller) }

    // MARK: - Networks

    public mutating func createNetwork(_ body: inout RequestAttributes, _ c: WriteContext) throws -> Network {
        try body.forbid(["id", "status", "subnets", "created_at", "updated_at", "revision_number"])
        let project = try c.caller.project(for: body.project())
        var standard = StandardAttributes(at: c.now)
        try readStandard(&body, into: &standard)
        let adminUp = try body.bool("admin_state_up") ?? true
        let shared = try body.bool("shared") ?? false
        let external = try body.bool("router:external") ?? false
        let mtu = try body.integer("mtu", in: 68...9000)?.flatMap { $0 }
        let portSecurity = try body.bool("port_security_enabled") ?? true
        if let type = try body.string("provider:network_type", allowNull: true)?.flatMap({ $0 }), type != "vxlan" {
            throw NeutronError.invalidInput("provider:network_type", "network type \(type) is not supported: this controller realizes vxlan networks")
        }
        _ = try body.string("provider:physical_network", allowNull: true)
        let requestedVNI = try body.integer("provider:segmentation_id", in: 1...16_777_215, allowNull: true)?.flatMap { $0 }
        _ = body.raw("availability_zone_hints")
        _ = body.raw("is_default")
        _ = body.raw("qos_policy_id")
        _ = body.raw("dns_domain")
        try body.finish()
        if (shared || external || requestedVNI != nil || body.has("provider:network_type")) && !c.caller.isAdmin {
            throw NeutronError.policy(shared ? "create_network:shared" : external ? "create_network:router:external" : "create_network:provider:network_type")
        }
        let vni: Int
        if let requestedVNI {
            vni = Int(requestedVNI)
            if let other = networksByVNI[vni] {
                throw NeutronError.conflict("TunnelIdInUse", "Unable to create the network. The tunnel ID \(vni) is in use (network \(other)).")
            }
        } else {
            guard let free = c.settings.vniRanges.lazy.flatMap({ $0 }).first(where: { networksByVNI[$0] == nil }) else {
                throw NeutronError(.conflict, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
            }
            vni = free
        }
        let network = Network(
            id: Identifiers.newUUID(), projectID: project, standard: standard, adminStateUp: adminUp, shared: shared, external: external, segmentationID: vni,
            mtu: mtu.map(Int.init) ?? 1450, portSecurityEnabled: portSecurity)
        put(network)
        return network
    }

    public mutating func updateNetwork(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> Network {
        var n = try network(id, for: c.caller)
        guard c.caller.owns(n.projectID) else { throw NeutronError.policy("update_network") }
        try body.forbid(["id", "tenant_id", "project_id", "provider:network_type", "provider:segmentation_id", "provider:physical_network", "status", "subnets"], reason: "PUT")
        try readStandard(&body, into: &n.standard)
        if let v = try body.bool("admin_state_up") { n.adminStateUp = v }
        if let v = try body.bool("shared") {
            guard c.caller.isAdmin else { throw NeutronError.policy("update_network:shared") }
            n.shared = v
        }
        if let v = try body.bool("router:external") {
            guard c.caller.isAdmin else { throw NeutronError.policy("update_network:router:external") }
            n.external = v
        }
        if let v = try body.integer("mtu", in: 68...9000)?.flatMap({ $0 }) { n.mtu = Int(v) }
        if let v = try body.bool("port_security_enabled") { n.portSecurityEnabled = v }
        _ = body.raw("qos_policy_id")
        _ = body.raw("dns_domain")
        try body.finish()
        bump(&n.standard, c)
        put(n)
        return n
    }

    /// Deletes a network with its subnets and network-owned ports; ports of VMs keep it in use (409).
    public mutating func deleteNetwork(_ id: String, _ c: WriteContext) throws {
        let n = try network(id, for: c.caller)
        guard c.caller.owns(n.projectID) else { throw NeutronError.policy("delete_network") }
        let used = ports(of: id).filter { !$0.isNetworkOwned || $0.deviceOwner == Port.routerInterfaceOwner }
        guard used.isEmpty else {
            throw NeutronError.conflict("NetworkInUse", "Unable to complete operation on network \(id). There are one or more ports still in use on the network.")
        }
        for p in ports(of: id) { deletePortCascading(p.id) }
        for s in subnets(of: id) { remove(ResourceKey(.subnet, s.id)) }
        for a in networkAssociationsByNetwork[id] ?? [] { remove(ResourceKey(.networkAssociation, a)) }
        remove(ResourceKey(.network, id))
    }

    // MARK: - Shared helpers

    mutating func readStandard(_ body: inout RequestAttributes, into s: inout StandardAttributes) throws {
        if let v = try body.string("name") { s.name = v ?? "" }
        if let v = try body.string("description") { s.description = v ?? "" }
    }

    func bump(_ s: inout StandardAttributes, _ c: WriteContext) {
        s.revisionNumber += 1
        s.updatedAt = c.now
    }
}
