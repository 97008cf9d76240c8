import NeutronModel

extension ControllerState {
    public mutating func createPort(_ body: inout RequestAttributes, _ c: WriteContext) throws -> Port {
        try body.forbid(["id", "status", "created_at", "updated_at", "revision_number", "binding:vif_type", "binding:vif_details"])
        guard let networkID = try body.uuid("network_id") else { throw NeutronError.badRequest("Failed to parse request. Required attribute 'network_id' not specified") }
        let network = try network(networkID, for: c.caller)
        let project = try c.caller.project(for: body.project())
        var standard = StandardAttributes(at: c.now)
        try readStandard(&body, into: &standard)
        let deviceOwner = try body.string("device_owner")?.flatMap { $0 } ?? ""
        if deviceOwner.hasPrefix("network:") && !c.caller.owns(network.projectID) { throw NeutronError.policy("create_port:device_owner") }
        let mac = try body.string("mac_address")?.flatMap { $0 }.map { try Self.macAddress($0) } ?? allocateMAC(on: networkID, base: c.settings.baseMAC)
        if ports(of: networkID).contains(where: { $0.macAddress == mac }) {
            throw NeutronError.conflict("MacAddressInUse", "Unable to complete operation for network \(networkID). The mac address \(mac) is in use.")
        }
        let requested = body.raw("fixed_ips")
        let fixedIPs = try allocateFixedIPs(requested, on: networkID, for: c.caller)
        let host = try body.string("binding:host_id")?.flatMap { $0 } ?? ""
        if !host.isEmpty && !c.caller.isAdmin { throw NeutronError.policy("create_port:binding:host_id") }
        let port = Port(
            id: Identifiers.newUUID(), projectID: project, standard: standard, networkID: networkID, macAddress: mac, fixedIPs: fixedIPs,
            deviceID: try body.string("device_id")?.flatMap { $0 } ?? "", deviceOwner: deviceOwner, adminStateUp: try body.bool("admin_state_up") ?? true,
            hostID: host, portSecurityEnabled: try body.bool("port_security_enabled") ?? network.portSecurityEnabled)
        try readIgnoredPortAttributes(&body)
        try body.finish()
        put(port)
        return port
    }

    public mutating func updatePort(_ id: String, _ body: inout RequestAttributes, _ c: WriteContext) throws -> Port {
        var p = try port(id, for: c.caller)
        guard c.caller.owns(p.projectID) else { throw NeutronError.policy("update_port") }
        try body.forbid(["id", "network_id", "tenant_id", "project_id", "status", "binding:vif_type", "binding:vif_details"], reason: "PUT")
        try readStandard(&body, into: &p.standard)
        if let v = try body.bool("admin_state_up") { p.adminStateUp = v }
        if let v = try body.string("device_id") { p.deviceID = v ?? "" }
        if let v = try body.string("device_owner") {
            if p.deviceOwner == Port.routerInterfaceOwner || v == Port.routerInterfaceOwner {
                throw NeutronError.conflict("PortInUse", "Port \(id) is a router interface: use add_router_interface and remove_router_interface")
            }
            p.deviceOwner = v ?? ""
        }
        if let v = try body.string("mac_address") {
            guard c.caller.isAdmin else { throw NeutronError.policy("update_port:mac_address") }
            let mac = try Self.macAddress(v ?? "")
            if ports(of: p.networkID).contains(where: { $0.macAddress == mac && $0.id != id }) {
                throw NeutronError.conflict("MacAddressInUse", "Unable to complete operation for network \(p.networkID). The mac address \(mac) is in use.")
            }
            p.macAddress = mac
        }
        if let requested = body.raw("fixed_ips") {
            remove(ResourceKey(.port, id))  // its own addresses are free to be asked again
            p.fixedIPs = try allocateFixedIPs(requested, on: p.networkID, for: c.caller)
        }
        if let host = try body.string("binding:host_id") {
            guard c.caller.isAdmin else { throw NeutronError.policy("update_port:binding:host_id") }
            if host ?? "" != p.hostID { p.status = "DOWN" }
            p.hostID = host ?? ""
        }
        if let v = try body.bool("port_security_enabled") { p.portSecurityEnabled = v }
        try readIgnoredPortAttributes(&body)
        try body.finish()
        bump(&p.standard, c)
        put(p)
        return p
    }

    public mutating func deletePort(_ id: String, _ c: WriteContext) throws {
        let p = try port(id, for: c.caller)
        guard c.caller.owns(p.projectID) else { throw NeutronError.policy("delete_port") }
        if p.deviceOwner == Port.routerInterfaceOwner {
            throw NeutronError.conflict("PortInUse", "Port \(id) cannot be deleted directly via the port API: has device owner \(Port.routerInterfaceOwner).")
        }
        deletePortCascading(id)
    }

    /// The port and its port associations.
    mutating func deletePortCascading(_ id: String) {
        for a in portAssociationsByPort[id] ?? [] { remove(ResourceKey(.portAssociation, a)) }
        remove(ResourceKey(.port, id))
    }

    /// An agent reports its port up or down (the L2 agent's `update_device_up`/`down`).
    public mutating func setPortStatus(_ id: String, up: Bool, _ c: WriteContext) throws -> Port {
        guard var p = ports[id] else { throw NeutronError.notFound(.port, id) }
        guard c.caller.isAdmin || (c.caller.isAgent && c.caller.host == p.hostID) else { throw NeutronError.policy("update_port:status") }
        let status = up ? "ACTIVE" : "DOWN"
        guard p.status != status else { return p }
        p.status = status
        bump(&p.standard, c)
        put(p)
        return p
    }

    mutating func readIgnoredPortAttributes(_ body: inout RequestAttributes) throws {
        // Accepted as clients send them; this controller has no security groups, DHCP options or QoS.
        for key in ["security_groups", "allowed_address_pairs", "extra_dhcp_opts", "binding:vnic_type", "binding:profile", "qos_policy_id", "dns_name", "propagate_uplink_status"] {
            _ = body.raw(key)
        }
    }

    // MARK: - Addresses

    static func macAddress(_ text: String) throws -> String {
        let octets = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6, octets.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }),
            let first = UInt8(octets[0], radix: 16), first & 1 == 0, text.lowercased() != "00:00:00:00:00:00"
        else { throw NeutronError.invalidInput("mac_address", "'\(text.prefix(40))' is not a valid MAC address") }
        return octets.joined(separator: ":")
    }

    /// A MAC of Neutron's base (`fa:16:3e`), free on the network.
    func allocateMAC(on network: String, base: String) -> String {
        let prefix = base.split(separator: ":").prefix(3).joined(separator: ":")
        let used = Set(ports(of: network).map(\.macAddress))
        while true {
            let tail = (0..<3).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }
            let mac = ([prefix] + tail).joined(separator: ":")
            if !used.contains(mac) { return mac }
        }
    }

    /// Addresses as requested (`[{subnet_id, ip_address}]`, either may be missing), or by default one
    /// from the first IPv4 subnet and one from the first IPv6 subnet of the network.
    func allocateFixedIPs(_ requested: JSON?, on network: String, for caller: Caller) throws -> [FixedIP] {
        let subnets = subnets(of: network)
        var used = Set<String>()
        for p in ports(of: network) { for f in p.fixedIPs { used.insert(f.ipAddress) } }
        var out: [FixedIP] = []
        func take(_ s: Subnet, _ address: String?) throws {
            guard let cidr = CIDR(s.cidr) else { throw NeutronError.badRequest("stored subnet \(s.id) has an unreadable cidr") }
            if let address {
                guard let a = IPAddressValue(address), cidr.contains(a) else {
                    throw NeutronError.badRequest("Invalid input for operation: IP address \(address) is not a valid IP for the specified subnet.")
                }
                let text = "\(a)"
                guard !used.contains(text), !out.contains(where: { $0.ipAddress == text }) else {
                    throw NeutronError.conflict("IpAddressAlreadyAllocated", "IP address \(text) already allocated in subnet \(s.id)")
                }
                out.append(FixedIP(subnetID: s.id, ipAddress: text))
                return
            }
            for pool in s.allocationPools {
                guard var a = IPAddressValue(pool.start), let end = IPAddressValue(pool.end) else { continue }
                while a <= end {
                    let text = "\(a)"
                    if !used.contains(text), !out.contains(where: { $0.ipAddress == text }), text != s.gatewayIP {
                        out.append(FixedIP(subnetID: s.id, ipAddress: text))
                        return
                    }
                    a = a.adding(1)
                }
            }
            throw NeutronError.conflict("IpAddressGenerationFailure", "No more IP addresses available on network \(network).")
        }
        guard let requested, !requested.isNull else {
            for version in [4, 6] {
                if let s = subnets.first(where: { $0.ipVersion == version }) { try take(s, nil) }
            }
            return out
        }
        guard case .array(let items) = requested else { throw NeutronError.invalidInput("fixed_ips", "'\(requested.serialized.prefix(60))' is not a list") }
        for item in items {
            guard case .object(let o) = item, o.keys.allSatisfy({ ["subnet_id", "ip_address"].contains($0) }) else {
                throw NeutronError.invalidInput("fixed_ips", "'\(item.serialized.prefix(60))' is not of the form {\"subnet_id\": …, \"ip_address\": …}")
            }
            let address = o["ip_address"]?.stringValue
            if o["ip_address"] != nil && address.flatMap(IPAddressValue.init) == nil { throw NeutronError.invalidInput("fixed_ips", "'\(o["ip_address"]?.serialized.prefix(60) ?? "")' is not a valid IP address") }
            let subnet: Subnet
            if let sid = o["subnet_id"] {
                guard let id = sid.stringValue, Identifiers.isUUID(id) else { throw NeutronError.invalidInput("fixed_ips", "'\(sid.serialized.prefix(60))' is not a valid UUID") }
                guard let s = self.subnets[id.lowercased()], s.networkID == network else {
                    throw NeutronError.badRequest("Invalid input for operation: Failed to create port on network \(network), because fixed_ips included invalid subnet \(id).")
                }
                subnet = s
            } else if let address, let a = IPAddressValue(address), let s = subnets.first(where: { CIDR($0.cidr)?.contains(a) ?? false }) {
                subnet = s
            } else {
                throw NeutronError.badRequest("Invalid input for operation: IP address \(address ?? "") is not a valid IP for any subnet of network \(network).")
            }
            try take(subnet, address)
        }
        return out
    }
}
