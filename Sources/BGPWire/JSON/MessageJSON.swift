// The JSON form of decoded messages printed by `bagpipe-bgp-decode` and used by the looking glass.
// The schema is documented in docs/decode-json.md; keep the two in step.

extension NLRIElement {
    public var json: JSONValue {
        var fields = nlri.jsonFields
        if let pathID { fields.insert(("path_id", JSONValue(pathID)), at: 0) }
        return .object(fields)
    }
}

extension NLRI {
    var jsonFields: [(String, JSONValue)] {
        switch self {
        case .prefix(let p): return [("prefix", .string(p.description))]
        case .labeledPrefix(let p): return [("labels", labelsJSON(p.labels)), ("prefix", .string(p.prefix.description))]
        case .vpnPrefix(let p):
            return [("rd", .string(p.routeDistinguisher.description)), ("labels", labelsJSON(p.labels)), ("prefix", .string(p.prefix.description))]
        case .evpn(let r): return r.jsonFields
        case .routeTargetMembership(let m):
            if m.isDefault { return [("prefix_length", 0), ("default", true)] }
            var f: [(String, JSONValue)] = [("prefix_length", JSONValue(m.prefixLength)), ("origin_as", JSONValue(m.originAS))]
            if m.prefixLength > 32 { f.append(("route_target", .string(m.routeTarget.description))) }
            return f
        case .flowSpec(let rule):
            var f: [(String, JSONValue)] = []
            if let rd = rule.routeDistinguisher { f.append(("rd", .string(rd.description))) }
            f.append(("components", .array(rule.components.map(\.json))))
            return f
        }
    }

    public var json: JSONValue { .object(jsonFields) }
}

/// "next_hop" (the address, or hex for an unusual encoding) and "link_local_next_hop" when present.
func nextHopJSON(_ nextHop: NextHop) -> [(String, JSONValue)] {
    var f: [(String, JSONValue)] = []
    if let address = nextHop.address {
        f.append(("next_hop", .string(address.description)))
    } else if case .raw = nextHop {
        f.append(("next_hop", .string(nextHop.description)))
    }
    if let ll = nextHop.linkLocal { f.append(("link_local_next_hop", .string(ll.description))) }
    return f
}

func labelsJSON(_ stack: MPLSLabelStack) -> JSONValue { .array(stack.labels.map { JSONValue($0) }) }

extension EVPNRoute {
    static let typeNames: [UInt8: String] = [
        1: "ethernet-auto-discovery", 2: "mac-ip-advertisement", 3: "inclusive-multicast", 4: "ethernet-segment", 5: "ip-prefix",
    ]

    var jsonFields: [(String, JSONValue)] {
        var f: [(String, JSONValue)] = [("route_type", JSONValue(routeType)), ("route_type_name", .string(Self.typeNames[routeType] ?? "unknown"))]
        if let rd = routeDistinguisher { f.append(("rd", .string(rd.description))) }
        switch self {
        case .ethernetAutoDiscovery(let r):
            f += [("esi", .string(r.esi.description)), ("ethernet_tag", JSONValue(r.ethernetTag)), ("label_fields", [JSONValue(r.labelField)])]
        case .macIPAdvertisement(let r):
            f += [("esi", .string(r.esi.description)), ("ethernet_tag", JSONValue(r.ethernetTag)), ("mac", .string(r.mac.description))]
            if let ip = r.ip { f.append(("ip", .string(ip.description))) }
            var labels: [JSONValue] = [JSONValue(r.labelField1)]
            if let l2 = r.labelField2 { labels.append(JSONValue(l2)) }
            f.append(("label_fields", .array(labels)))
        case .inclusiveMulticast(let r):
            f += [("ethernet_tag", JSONValue(r.ethernetTag)), ("originating_ip", .string(r.originatingRouter.description))]
        case .ethernetSegment(let r):
            f += [("esi", .string(r.esi.description)), ("originating_ip", .string(r.originatingRouter.description))]
        case .ipPrefix(let r):
            f += [
                ("esi", .string(r.esi.description)), ("ethernet_tag", JSONValue(r.ethernetTag)), ("prefix", .string(r.prefix.description)),
                ("gateway", .string(r.gateway.description)), ("label_fields", [JSONValue(r.labelField)]),
            ]
        case .unknown(_, let value):
            f.append(("value", .string(Hex.encode(value))))
        }
        return f
    }
}

extension FlowSpecComponent {
    public var json: JSONValue {
        let name = FlowSpecComponentType.names[type] ?? "type-\(type)"
        switch self {
        case .prefix(_, let prefix, let offset):
            var f: [(String, JSONValue)] = [("type", .string(name)), ("prefix", .string(prefix.description))]
            if offset != 0 { f.append(("offset", JSONValue(offset))) }
            return .object(f)
        case .match(let type, let matches):
            let bitmask = FlowSpecComponentType.isBitmask(type)
            return .object([("type", .string(name)), ("match", .string(matches.map { $0.text(bitmask: bitmask) }.joined(separator: " ")))])
        }
    }
}

extension ExtendedCommunity {
    public var json: JSONValue {
        .object([("value", .string(String(rawValue))), ("string", .string(description)), ("transitive", .bool(isTransitive))])
    }
}

extension PathAttribute {
    public func json(context: WireContext) -> JSONValue {
        let name = AttributeType.name(typeCode)
        var f: [(String, JSONValue)] = [("code", JSONValue(typeCode)), ("name", .string(name)), ("flags", JSONValue(flags.rawValue))]
        let value: JSONValue
        switch self.value {
        case .origin(let o): value = .string(o.description)
        case .asPath(let p), .as4Path(let p):
            value = .array(p.segments.map { s in
                .object([("type", .string(["", "set", "sequence", "confed-sequence", "confed-set"][Int(s.type.rawValue)])), ("asns", .array(s.asns.map { JSONValue($0) }))])
            })
        case .nextHop(let a), .originatorID(let a): value = .string(a.description)
        case .multiExitDiscriminator(let v), .localPreference(let v): value = JSONValue(v)
        case .atomicAggregate: value = .bool(true)
        case .aggregator(let a), .as4Aggregator(let a): value = .object([("asn", JSONValue(a.asn)), ("address", .string(a.address.description))])
        case .communities(let list): value = .array(list.map { .string($0.description) })
        case .clusterList(let list): value = .array(list.map { .string(IPv4Address($0).description) })
        case .mpReachNLRI(let r):
            var v: [(String, JSONValue)] = [("family", .string(r.family.description))]
            v += nextHopJSON(r.nextHop)
            v.append(("nlri_count", JSONValue(r.nlri.count)))
            if r.nlri.isOpaque { v.append(("nlri_hex", .string(Hex.encode(r.nlri.bytes)))) }
            value = .object(v)
        case .mpUnreachNLRI(let u):
            var v: [(String, JSONValue)] = [("family", .string(u.family.description)), ("nlri_count", JSONValue(u.nlri.count))]
            if u.nlri.isOpaque { v.append(("nlri_hex", .string(Hex.encode(u.nlri.bytes)))) }
            value = .object(v)
        case .extendedCommunities(let list): value = .array(list.map(\.json))
        case .pmsiTunnel(let p):
            var v: [(String, JSONValue)] = [("flags", JSONValue(p.flags)), ("tunnel_type", JSONValue(p.tunnelType.rawValue)), ("label_field", JSONValue(p.labelField))]
            if let endpoint = p.tunnelEndpoint { v.append(("tunnel_endpoint", .string(endpoint.description))) }
            v.append(("tunnel_id", .string(Hex.encode(p.tunnelIdentifier))))
            value = .object(v)
        case .largeCommunities(let list): value = .array(list.map { .string($0.description) })
        case .unknown(_, let bytes): value = .string(Hex.encode(bytes))
        }
        f.append(("value", value))
        return .object(f)
    }
}

extension NLRIBlock {
    /// `{family, next_hop?, nlri: [...]}` (or `opaque` hex for a family not modeled).
    public func json(nextHop: NextHop? = nil) -> JSONValue {
        var f: [(String, JSONValue)] = [("family", .string(family.description))]
        if let nextHop { f += nextHopJSON(nextHop) }
        if isOpaque {
            f.append(("opaque", .string(Hex.encode(bytes))))
        } else {
            f.append(("nlri", .array(map(\.json))))
        }
        return .object(f)
    }
}

extension Capability {
    public var json: JSONValue {
        var f: [(String, JSONValue)] = [("code", JSONValue(code))]
        switch self {
        case .multiprotocol(let family): f += [("name", "multiprotocol"), ("family", .string(family.description))]
        case .routeRefresh: f.append(("name", "route-refresh"))
        case .extendedNextHop(let entries):
            f += [("name", "extended-next-hop"), ("entries", .array(entries.map { .object([("family", .string($0.family.description)), ("next_hop_afi", JSONValue($0.nextHopAFI.rawValue))]) }))]
        case .extendedMessage: f.append(("name", "extended-message"))
        case .gracefulRestart(let gr):
            f += [
                ("name", "graceful-restart"), ("flags", JSONValue(gr.flags)), ("restart_time", JSONValue(gr.restartTime)),
                ("families", .array(gr.families.map { .object([("family", .string($0.family.description)), ("flags", JSONValue($0.flags))]) })),
            ]
        case .fourOctetAS(let asn): f += [("name", "four-octet-as"), ("asn", JSONValue(asn))]
        case .addPath(let entries):
            f += [("name", "add-path"), ("families", .array(entries.map { .object([("family", .string($0.family.description)), ("mode", JSONValue($0.mode.rawValue))]) }))]
        case .enhancedRouteRefresh: f.append(("name", "enhanced-route-refresh"))
        case .unknown(_, let value): f += [("name", "unknown"), ("value", .string(Hex.encode(value)))]
        }
        return .object(f)
    }
}

extension NotificationMessage {
    public var json: JSONValue {
        var f: [(String, JSONValue)] = [
            ("code", JSONValue(code.rawValue)), ("subcode", JSONValue(subcode)), ("code_name", .string(code.description)),
            ("subcode_name", .string(subcodeName)), ("data", .string(Hex.encode(data))),
        ]
        if let text = shutdownCommunication { f.append(("shutdown_communication", .string(text))) }
        return .object(f)
    }
}

extension BGPMessage {
    /// One JSON object describing the message.
    public func json(context: WireContext = .standard) -> JSONValue {
        var f: [(String, JSONValue)] = [("type", .string(typeName))]
        switch self {
        case .open(let m):
            f += [
                ("version", JSONValue(m.version)), ("my_as", JSONValue(m.myAS)), ("asn", JSONValue(m.asn)), ("hold_time", JSONValue(m.holdTime)),
                ("bgp_id", .string(m.bgpIdentifier.description)), ("capabilities", .array(m.capabilities.map(\.json))),
            ]
            let unknown = m.optionalParameters.compactMap { p -> JSONValue? in
                if case .unknown(let type, let value) = p { return .object([("type", JSONValue(type)), ("value", .string(Hex.encode(value)))]) }
                return nil
            }
            if !unknown.isEmpty { f.append(("unknown_parameters", .array(unknown))) }
        case .update(let u):
            if let family = u.endOfRIBFamily { f.append(("end_of_rib", .string(family.description))) }
            var withdrawn: [JSONValue] = []
            if !u.withdrawnRoutes.isEmpty { withdrawn.append(u.withdrawnRoutes.json()) }
            if let unreach = u.attributes.mpUnreach, !unreach.nlri.isEmpty { withdrawn.append(unreach.nlri.json()) }
            var announced: [JSONValue] = []
            if !u.nlri.isEmpty { announced.append(u.nlri.json(nextHop: u.attributes.nextHop.map { .ipv4($0) })) }
            if let reach = u.attributes.mpReach, !reach.nlri.isEmpty { announced.append(reach.nlri.json(nextHop: reach.nextHop)) }
            f += [("withdrawn", .array(withdrawn)), ("announced", .array(announced)), ("attributes", .array(u.attributes.map { $0.json(context: context) }))]
            if !u.discardedAttributes.isEmpty {
                f.append(("discarded_attributes", .array(u.discardedAttributes.map { .object([("code", JSONValue($0.typeCode)), ("reason", .string($0.reason))]) })))
            }
        case .notification(let n): f.append(("notification", n.json))
        case .keepalive: break
        case .routeRefresh(let r):
            f += [("family", .string(r.family.description)), ("subtype", JSONValue(r.subtypeValue))]
            if !r.orfData.isEmpty { f.append(("orf", .string(Hex.encode(r.orfData)))) }
        }
        return .object(f)
    }
}

extension BGPDecodingError {
    /// The error as JSON: its RFC 7606 class, the reason, and what to send or withdraw.
    public var json: JSONValue {
        var f: [(String, JSONValue)] = [("error_class", .string(handling.name)), ("reason", .string(reason))]
        switch handling {
        case .sessionReset(let n): f.append(("notification", n.json))
        case .treatAsWithdraw(let blocks): f.append(("withdrawn", .array(blocks.map { $0.json() })))
        case .attributeDiscard(let code): f.append(("attribute", JSONValue(code)))
        }
        return .object(f)
    }
}
