import BGPWire
import BagpipeVPN
import Dataplane

// The API's JSON requests (reference §1.3, §1.8) parsed into the VPN layer's values, with the
// original's messages: a request that does not parse changes nothing.

extension AttachRequest {
    /// Parses and validates a request; nothing is changed until one parses.
    public init(json: JSONValue) throws(VPNError) {
        let r = try RequestReader(json)
        let (vpnType, vpnInstanceID, mac, localPort) = try r.endpointIdentity()
        self.init(vpnType: vpnType, vpnInstanceID: vpnInstanceID, mac: mac, localPort: localPort, importRTs: try r.routeTargets("import_rt"), exportRTs: try r.routeTargets("export_rt"), raw: json)
        if vpnType == .ipvpn {
            guard r.has("ip_address") else { throw .missing("ip_address") }
            guard r.has("gateway_ip") else { throw .missing("gateway_ip") }
        }
        ipAddress = try r.ipAddress()
        if let text = try r.optionalString("gateway_ip") {
            guard let a = IPAddress(text) else { throw VPNError("IP address \(text) is not valid") }
            gatewayIP = a
        }
        if let v = r.json["advertise_subnet"], v != .null {
            guard case .bool(let b) = v else { throw VPNError("'advertise_subnet' must be a boolean") }
            advertiseSubnet = b
        }
        if let v = r.json["direction"], v != .null {
            guard let text = v.stringValue, let d = Direction(rawValue: text) else {
                throw VPNError("direction should be one of: both, to-port, from-port")
            }
            direction = d
        }
        localPref = try r.unsigned("local_pref", max: UInt64(UInt32.max)).map { UInt32($0) }
        lbConsistentHashOrder = try r.unsigned("lb_consistent_hash_order", max: UInt64(UInt32.max)).map { UInt32($0) } ?? 0
        vni = try r.unsigned("vni", max: (1 << 24) - 1).map { UInt32($0) } ?? 0
        linuxbr = try r.optionalString("linuxbr")
        description = r.json["description"]
        instanceDescription = r.json["instance_description"]
        fallback = r.json["fallback"].flatMap { $0 == .null ? nil : $0 }
        readvertise = try r.readvertise()
        attractTraffic = try r.attractTraffic(readvertise: readvertise)
    }
}

extension DetachRequest {
    public init(json: JSONValue) throws(VPNError) {
        let r = try RequestReader(json)
        let (vpnType, vpnInstanceID, mac, localPort) = try r.endpointIdentity()
        if vpnType == .ipvpn && !r.has("ip_address") { throw .missing("ip_address") }
        self.init(vpnType: vpnType, vpnInstanceID: vpnInstanceID, mac: mac, localPort: localPort, ipAddress: try r.ipAddress())
    }
}

/// Typed reads of a request object, with the original's messages.
struct RequestReader {
    let json: JSONValue

    init(_ json: JSONValue) throws(VPNError) {
        guard case .object = json else { throw VPNError("the request body must be a JSON object") }
        self.json = json
    }

    /// What attach and detach both name: the VPN, the MAC and the port.
    func endpointIdentity() throws(VPNError) -> (VPNType, String, MACAddress, LocalPort) {
        (try vpnType(), try requiredString("vpn_instance_id"), try mac(), try localPort())
    }

    func has(_ key: String) -> Bool { json[key].map { $0 != .null } ?? false }

    func requiredString(_ key: String) throws(VPNError) -> String {
        guard let v = json[key], v != .null else { throw .missing(key) }
        guard let s = v.stringValue else { throw VPNError("'\(key)' must be a string") }
        return s
    }

    func optionalString(_ key: String) throws(VPNError) -> String? {
        guard let v = json[key], v != .null else { return nil }
        guard let s = v.stringValue else { throw VPNError("'\(key)' must be a string") }
        return s
    }

    func unsigned(_ key: String, max: UInt64) throws(VPNError) -> UInt64? {
        guard let v = json[key], v != .null else { return nil }
        guard case .int(let i) = v, i >= 0, UInt64(i) <= max else { throw VPNError("'\(key)' must be an integer from 0 to \(max)") }
        return UInt64(i)
    }

    func vpnType() throws(VPNError) -> VPNType {
        guard let v = json["vpn_type"], v != .null else { throw VPNError("missing instance_type") }
        guard let text = v.stringValue, let t = VPNType(rawValue: text) else { throw VPNError("unknown vpn_type: \(v.stringValue ?? v.serialized())") }
        return t
    }

    func mac() throws(VPNError) -> MACAddress {
        let text = try requiredString("mac_address")
        guard let m = Self.parseMAC(text) else { throw VPNError("MAC address \(text) is not valid") }
        return m
    }

    /// The formats netaddr accepts: `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, `aabb.ccdd.eeff`, `aabbccddeeff`.
    static func parseMAC(_ text: String) -> MACAddress? {
        if let m = MACAddress(text) { return m }
        let hex = text.filter { $0 != "." && $0 != ":" && $0 != "-" }
        let groups = text.split(whereSeparator: { $0 == "." || $0 == ":" || $0 == "-" })
        guard hex.count == 12, groups.allSatisfy({ [1, 2, 4, 12].contains($0.count) }), let v = UInt64(hex, radix: 16) else { return nil }
        return MACAddress(v)
    }

    func localPort() throws(VPNError) -> LocalPort {
        guard let v = json["local_port"], v != .null else { throw .missing("local_port") }
        if let name = v.stringValue { return LocalPort(linuxif: name, raw: .object([("linuxif", .string(name))])) }
        guard case .object = v, v["linuxif"] != nil || v["evpn"] != nil else {
            throw VPNError("Mandatory key is missing in local_port parameter (linuxif, or evpn)")
        }
        var linuxif: String?
        if let l = v["linuxif"], l != .null {
            guard let name = l.stringValue, !name.isEmpty else { throw VPNError("local_port.linuxif must be a non-empty string") }
            linuxif = name
        }
        var eviID: String?
        if let e = v["evpn"], e != .null {
            guard let id = e["id"]?.stringValue, !id.isEmpty else { throw VPNError("local_port.evpn must be an object with the id of an E-VPN instance") }
            guard linuxif == nil else { throw VPNError("local_port: linuxif and evpn cannot be given together") }
            eviID = id
        }
        guard linuxif != nil || eviID != nil else { throw VPNError("Mandatory key is missing in local_port parameter (linuxif, or evpn)") }
        return LocalPort(linuxif: linuxif, eviID: eviID, raw: v)
    }

    func routeTargets(_ key: String) throws(VPNError) -> [ExtendedCommunity] {
        guard let v = json[key], v != .null else { throw .missing(key) }
        return try Self.routeTargets(v, name: key)
    }

    /// A list of strings or one comma-separated string; duplicates removed; `<asn>:<nn>`, 2-octet AS.
    static func routeTargets(_ v: JSONValue, name: String) throws(VPNError) -> [ExtendedCommunity] {
        var texts: [String] = []
        if let s = v.stringValue {
            texts = s.split(separator: ",").map { $0.trimming(" ") }
        } else if let items = v.arrayValue {
            for item in items {
                guard let s = item.stringValue else { throw VPNError("Malformed route target in '\(name)': \(item.serialized())") }
                texts.append(s)
            }
        } else {
            throw VPNError("'\(name)' must be a list of route targets or a comma-separated string")
        }
        var out = Set<ExtendedCommunity>()
        for text in texts where !text.isEmpty {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let asn = UInt16(parts[0]), let n = UInt32(parts[1]) else {
                throw VPNError("Malformed route target in '\(name)': '\(text)' (expected <asn>:<number>, asn up to 65535)")
            }
            out.insert(.routeTarget(as: asn, n))
        }
        return out.sorted()
    }

    func ipAddress() throws(VPNError) -> (text: String, prefix: IPPrefix)? {
        guard let text = try optionalString("ip_address") else { return nil }
        guard let p = Self.parsePrefix(text) else { throw VPNError("IP address \(text) is not valid") }
        return (text, p)
    }

    /// `A.B.C.D` (a /32) or `A.B.C.D/len`; IPv6 likewise (a bare address is a /128).
    static func parsePrefix(_ text: String) -> IPPrefix? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        let width = UInt8(address.bitWidth)
        guard parts.count == 2 else { return IPPrefix(address, length: width) }
        guard parts[1].allSatisfy(\.isASCII), let length = UInt8(parts[1]), length <= width else { return nil }
        return IPPrefix(address, length: length)
    }

    func readvertise() throws(VPNError) -> Readvertise? {
        guard let v = json["readvertise"], v != .null else { return nil }
        guard case .object = v, let from = v["from_rt"], let to = v["to_rt"], from.arrayValue != nil, to.arrayValue != nil else {
            throw VPNError("'readvertise' must be an object with the lists 'from_rt' and 'to_rt'")
        }
        return Readvertise(from: try Self.routeTargets(from, name: "readvertise.from_rt"), to: try Self.routeTargets(to, name: "readvertise.to_rt"))
    }

    /// The rules of reference §8.3: on only with `readvertise` or `to_rt`; `redirect_rts` and
    /// `classifier` required; exactly one target; `to_rt` equal to `readvertise.to_rt` when both are
    /// given; with `to_rt`, `static_destination_prefixes` required.
    func attractTraffic(readvertise: Readvertise?) throws(VPNError) -> AttractTraffic? {
        guard let v = json["attract_traffic"], v != .null, v != .object([]) else { return nil }
        guard case .object = v else { throw VPNError("'attract_traffic' must be an object") }
        guard let redirect = v["redirect_rts"], redirect != .null else { throw VPNError("'attract_traffic' requires 'redirect_rts'") }
        let redirectRTs = try Self.routeTargets(redirect, name: "attract_traffic.redirect_rts")
        guard !redirectRTs.isEmpty else { throw VPNError("attract_traffic.redirect_rts must name at least one route target") }
        var prefixes: [IPPrefix] = []
        if let list = v["static_destination_prefixes"], list != .null {
            guard let items = list.arrayValue else { throw VPNError("attract_traffic.static_destination_prefixes must be a list of prefixes") }
            for item in items {
                guard let text = item.stringValue, let p = Self.parsePrefix(text) else {
                    throw VPNError("attract_traffic.static_destination_prefixes: \(item.serialized()) is not a prefix")
                }
                prefixes.append(p)
            }
        }
        // `to` is what the original's bagpipe-rest-attach sends (quirk Q15): read as `to_rt`.
        let toValue = v["to_rt"].flatMap { $0 == .null ? nil : $0 } ?? v["to"].flatMap { $0 == .null ? nil : $0 }
        let explicitTo = toValue != nil
        let to = try toValue.map { (x) throws(VPNError) in try Self.routeTargets(x, name: "attract_traffic.to_rt") }
        // Off without a target to attract to (as the original: the object is then ignored).
        guard let effective = to ?? readvertise?.to else { return nil }
        if let to, let readvertise, Set(to) != Set(readvertise.to) {
            throw VPNError("attract_traffic.to_rt must be readvertise.to_rt when both are given")
        }
        guard effective.count == 1 else { throw VPNError("attract_traffic needs exactly one route target to attract traffic to (to_rt or readvertise.to_rt), not \(effective.count)") }
        if explicitTo && prefixes.isEmpty { throw VPNError("attract_traffic.static_destination_prefixes is required with attract_traffic.to_rt") }
        guard let classifierJSON = v["classifier"], classifierJSON != .null else { throw VPNError("'attract_traffic' requires 'classifier'") }
        let classifier = try TrafficClassifier(json: classifierJSON)
        return AttractTraffic(redirectRTs: redirectRTs, classifier: classifier, to: effective, explicitTo: explicitTo, staticDestinationPrefixes: prefixes)
    }
}
