import NeutronModel

extension ControllerState {
    public mutating func createSubnet(_ body: inout RequestAttributes, _ c: WriteContext) throws -> Subnet {
        try body.forbid(["id", "created_at", "updated_at", "revision_number"])
        guard let networkID = try body.uuid("network_id") else { throw NeutronError.badRequest("Failed to parse request. Required attribute 'network_id' not specified") }
        let network = try network(networkID, for: c.caller)
        guard c.caller.owns(network.projectID) else { throw NeutronError.policy("create_subnet") }
        let project = try c.caller.project(for: body.project())
        var standard = StandardAttributes(at: c.now)
        try readStandard(&body, into: &standard)
        guard let cidrText = try body.string("cidr")?.flatMap({ $0 }) else { throw NeutronError.badRequest("Failed to parse request. Required attribute 'cidr' not specified") }
        guard let cidr = CIDR(cidrText) else { throw NeutronError.invalidInput("cidr", "'\(cidrText.prefix(60))' is not a valid IP subnet") }
        let version = try body.integer("ip_version", in: 4...6)?.flatMap { $0 } ?? Int64(cidr.version)
        guard version == 4 || version == 6 else { throw NeutronError.invalidInput("ip_version", "'\(version)' is not in [4, 6]") }
        guard cidr.version == Int(version) else { throw NeutronError.badRequest("Invalid input for operation: Cidr \(cidrText) does not match the IP version \(version).") }
        guard cidr.length <= cidr.network.bits - 2 || cidr.version == 6 else { throw NeutronError.badRequest("Invalid input for operation: Requested subnet \(cidr) is too small.") }
        if let other = subnets(of: networkID).first(where: { CIDR($0.cidr).map(cidr.overlaps) ?? false }) {
            throw NeutronError.badRequest("Invalid input for operation: Requested subnet with cidr: \(cidr) for network: \(networkID) overlaps with another subnet (\(other.id)).")
        }
        var gateway = cidr.defaultGateway
        if let g = try body.string("gateway_ip", allowNull: true) {
            if let g {
                guard let a = IPAddressValue(g), a.version == cidr.version else { throw NeutronError.invalidInput("gateway_ip", "'\(g.prefix(60))' is not a valid IP address") }
                guard cidr.contains(a), a != cidr.first, cidr.version == 6 || a != cidr.last else {
                    throw NeutronError.badRequest("Invalid input for operation: Gateway IP \(g) conflicts with the subnet \(cidr).")
                }
                gateway = a
            } else {
                gateway = nil
            }
        }
        var pools = cidr.defaultPools(gateway: gateway)
        if let raw = body.raw("allocation_pools"), !raw.isNull {
            pools = try Self.pools(raw, in: cidr, gateway: gateway)
        }
        let dhcp = try body.bool("enable_dhcp") ?? true
        let dns = try body.stringList("dns_nameservers", each: { IPAddressValue($0) != nil }, what: "nameserver") ?? []
        let routes = try Self.hostRoutes(body.raw("host_routes"), version: cidr.version)
        let raMode = try body.choice("ipv6_ra_mode", ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"])
        let addressMode = try body.choice("ipv6_address_mode", ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"])
        if (raMode != nil || addressMode != nil) && cidr.version == 4 { throw NeutronError.badRequest("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4") }
        if let pool = body.raw("subnetpool_id"), !pool.isNull { throw NeutronError.badRequest("Subnet pools are not supported: give a cidr") }
        _ = body.raw("use_default_subnetpool")
        _ = body.raw("service_types")
        _ = body.raw("segment_id")
        try body.finish()
        let subnet = Subnet(
            id: Identifiers.newUUID(), projectID: project, standard: standard, networkID: networkID, ipVersion: cidr.version, cidr: "\(cidr)", gatewayIP: gateway.map { "\($0)" },
            allocationPools: pools.map { AllocationPool(start: "\($0.0)", end: "\($0.1)") }, enableDHCP: dhcp, dnsNameservers: dns, hostRoutes: routes, ipv6RAMode: raMode,
            ipv6AddressMode: addressMode)
        put(subnet)
        return subnet
    }

    public mutating func updateSubnet(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> Subnet {
        var s = try subnet(id, for: c.caller)
        guard c.caller.owns(s.projectID) else { throw NeutronError.policy("update_subnet") }
        try body.forbid(["id", "network_id", "cidr", "ip_version", "tenant_id", "project_id", "ipv6_ra_mode", "ipv6_address_mode"], reason: "PUT")
        try readStandard(&body, into: &s.standard)
        guard let cidr = CIDR(s.cidr) else { throw NeutronError.badRequest("stored subnet \(id) has an unreadable cidr") }
        if let g = try body.string("gateway_ip", allowNull: true) {
            if let g {
                guard let a = IPAddressValue(g), cidr.contains(a), a != cidr.first else { throw NeutronError.invalidInput("gateway_ip", "'\(g.prefix(60))' is not an address of \(cidr)") }
                if routerInterfaces(on: s.networkID).contains(where: { $0.fixedIPs.contains { $0.subnetID == id } }) {
                    throw NeutronError.conflict("GatewayIpInUse", "Gateway ip \(s.gatewayIP ?? "") is in use by a router interface: remove the interface first.")
                }
                s.gatewayIP = "\(a)"
            } else {
                s.gatewayIP = nil
            }
        }
        if let raw = body.raw("allocation_pools") {
            s.allocationPools = try Self.pools(raw, in: cidr, gateway: s.gatewayIP.flatMap(IPAddressValue.init)).map { AllocationPool(start: "\($0.0)", end: "\($0.1)") }
        }
        if let v = try body.bool("enable_dhcp") { s.enableDHCP = v }
        if let v = try body.stringList("dns_nameservers", each: { IPAddressValue($0) != nil }, what: "nameserver") { s.dnsNameservers = v }
        if let raw = body.raw("host_routes") { s.hostRoutes = try Self.hostRoutes(raw, version: cidr.version) }
        _ = body.raw("service_types")
        try body.finish()
        bump(&s.standard, c)
        put(s)
        return s
    }

    public mutating func deleteSubnet(_ id: String, _ c: WriteContext) throws {
        let s = try subnet(id, for: c.caller)
        guard c.caller.owns(s.projectID) else { throw NeutronError.policy("delete_subnet") }
        let users = ports(of: s.networkID).filter { $0.fixedIPs.contains { $0.subnetID == id } }
        guard !users.contains(where: { !$0.isNetworkOwned || $0.deviceOwner == Port.routerInterfaceOwner }) else {
            throw NeutronError.conflict("SubnetInUse", "Unable to complete operation on subnet \(id): One or more ports have an IP allocation from this subnet.")
        }
        for p in users { deletePortCascading(p.id) }
        remove(ResourceKey(.subnet, id))
    }

    static func pools(_ raw: JSON, in cidr: CIDR, gateway: IPAddressValue?) throws -> [(IPAddressValue, IPAddressValue)] {
        guard case .array(let items) = raw else { throw NeutronError.invalidInput("allocation_pools", "'\(raw.serialized.prefix(60))' is not a list") }
        var pools: [(IPAddressValue, IPAddressValue)] = []
        for item in items {
            guard case .object(let o) = item, o.count == 2, let s = o["start"]?.stringValue, let e = o["end"]?.stringValue,
                let start = IPAddressValue(s), let end = IPAddressValue(e)
            else { throw NeutronError.invalidInput("allocation_pools", "'\(item.serialized.prefix(60))' is not a pool of the form {\"start\": …, \"end\": …}") }
            guard cidr.contains(start), cidr.contains(end), start <= end else {
                throw NeutronError.badRequest("Invalid input for operation: The allocation pool \(s)-\(e) spans beyond the subnet cidr \(cidr).")
            }
            if let gateway, gateway >= start, gateway <= end {
                throw NeutronError.conflict("GatewayConflictWithAllocationPools", "Gateway ip \(gateway) conflicts with allocation pool \(s)-\(e).")
            }
            if pools.contains(where: { start <= $0.1 && $0.0 <= end }) { throw NeutronError.badRequest("Invalid input for operation: Found overlapping allocation pools.") }
            pools.append((start, end))
        }
        return pools
    }

    static func hostRoutes(_ raw: JSON?, version: Int) throws -> [HostRoute] {
        guard let raw, !raw.isNull else { return [] }
        guard case .array(let items) = raw else { throw NeutronError.invalidInput("host_routes", "'\(raw.serialized.prefix(60))' is not a list") }
        return try items.map { item in
            guard case .object(let o) = item, o.count == 2, let d = o["destination"]?.stringValue, let n = o["nexthop"]?.stringValue,
                let cidr = CIDR(d, strict: false), cidr.version == version, IPAddressValue(n)?.version == version
            else { throw NeutronError.invalidInput("host_routes", "'\(item.serialized.prefix(60))' is not a route {\"destination\": CIDR, \"nexthop\": IP}") }
            return HostRoute(destination: "\(cidr)", nexthop: n)
        }
    }
}
