/// An RFC 4360 extended community, kept as its 8 bytes so unknown kinds pass through unchanged.
/// Typed constructors and the `kind` view cover the communities this project uses.
public struct ExtendedCommunity: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public var type: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 56) }
    public var subtype: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 48) }
    /// The 6 value bytes.
    public var value: UInt64 { rawValue & 0xFFFF_FFFF_FFFF }
    /// RFC 4360 §2: bit 0x40 of the type marks a non-transitive community.
    public var isTransitive: Bool { type & 0x40 == 0 }

    init(type: UInt8, subtype: UInt8, value: UInt64) {
        rawValue = UInt64(type) << 56 | UInt64(subtype) << 48 | value & 0xFFFF_FFFF_FFFF
    }

    // MARK: Type and subtype codes (IANA "BGP Extended Communities")

    public enum TypeCode {
        public static let twoOctetAS: UInt8 = 0x00
        public static let ipv4Address: UInt8 = 0x01
        public static let fourOctetAS: UInt8 = 0x02
        public static let opaque: UInt8 = 0x03
        public static let evpn: UInt8 = 0x06
        public static let flowSpecRedirectIPv6Compat: UInt8 = 0x08  // redirect to IP next hop (draft-simpson)
        public static let flowSpec: UInt8 = 0x80  // generic transitive experimental: 2-octet AS form
        public static let flowSpecIPv4: UInt8 = 0x81
        public static let flowSpecAS4: UInt8 = 0x82
        public static let nonTransitiveBit: UInt8 = 0x40
    }

    public enum Subtype {
        public static let routeTarget: UInt8 = 0x02
        public static let routeOrigin: UInt8 = 0x03
        public static let linkBandwidth: UInt8 = 0x04
        public static let routeTargetRecord: UInt8 = 0x13
        public static let encapsulation: UInt8 = 0x0C
        public static let defaultGateway: UInt8 = 0x0D
        public static let consistentHashSortOrder: UInt8 = 0x14
        public static let macMobility: UInt8 = 0x00
        public static let esiLabel: UInt8 = 0x01
        public static let esImportRouteTarget: UInt8 = 0x02
        public static let routerMAC: UInt8 = 0x03
        public static let trafficRate: UInt8 = 0x06
        public static let trafficAction: UInt8 = 0x07
        public static let redirect: UInt8 = 0x08
        public static let trafficMarking: UInt8 = 0x09
        public static let redirectToIP: UInt8 = 0x00
    }

    // MARK: Constructors

    /// Route target, 2-octet AS form (the only form bagpipe uses for import/export).
    public static func routeTarget(as asn: UInt16, _ number: UInt32, transitive: Bool = true) -> Self {
        Self(type: transitive ? 0x00 : 0x40, subtype: Subtype.routeTarget, value: UInt64(asn) << 32 | UInt64(number))
    }

    public static func routeTarget(ipv4 address: IPv4Address, _ number: UInt16, transitive: Bool = true) -> Self {
        Self(type: transitive ? 0x01 : 0x41, subtype: Subtype.routeTarget, value: UInt64(address.value) << 16 | UInt64(number))
    }

    public static func routeTarget(as4 asn: UInt32, _ number: UInt16, transitive: Bool = true) -> Self {
        Self(type: transitive ? 0x02 : 0x42, subtype: Subtype.routeTarget, value: UInt64(asn) << 16 | UInt64(number))
    }

    /// Parses "target:64512:100", "64512:100", "192.0.2.1:5", "4200000000:7".
    public static func routeTarget(parsing text: some StringProtocol) -> Self? {
        var body = Substring(text)
        if body.hasPrefix("target:") { body = body.dropFirst(7) }
        let parts = body.split(separator: ":")
        guard parts.count == 2 else { return nil }
        if let address = IPv4Address(parts[0]) {
            guard let n = UInt16(parts[1]) else { return nil }
            return .routeTarget(ipv4: address, n)
        }
        guard let asn = UInt32(parts[0]) else { return nil }
        if asn <= 0xFFFF, let n = UInt32(parts[1]) { return .routeTarget(as: UInt16(asn), n) }
        guard let n = UInt16(parts[1]) else { return nil }
        return .routeTarget(as4: asn, n)
    }

    /// The same administrator/number with subtype RT-Record (0x13), used for readvertise loop prevention.
    public var asRouteTargetRecord: Self { Self(type: type, subtype: Subtype.routeTargetRecord, value: value) }
    /// The route target an RT-Record stands for.
    public var recordedRouteTarget: Self { Self(type: type, subtype: Subtype.routeTarget, value: value) }

    /// RFC 9012 §4.1 encapsulation: 4 reserved bytes then the tunnel type.
    public static func encapsulation(_ tunnelType: TunnelType) -> Self {
        Self(type: TypeCode.opaque, subtype: Subtype.encapsulation, value: UInt64(tunnelType.rawValue))
    }

    public static func consistentHashSortOrder(_ order: UInt32) -> Self {
        Self(type: TypeCode.opaque, subtype: Subtype.consistentHashSortOrder, value: UInt64(order) << 16)
    }

    /// RFC 7432 §7.8.
    public static let defaultGateway = Self(type: TypeCode.opaque, subtype: Subtype.defaultGateway, value: 0)

    /// RFC 7432 §7.7: flags (bit 0 = sticky) and a sequence number.
    public static func macMobility(sequence: UInt32, sticky: Bool = false) -> Self {
        Self(type: TypeCode.evpn, subtype: Subtype.macMobility, value: UInt64(sticky ? 1 : 0) << 40 | UInt64(sequence))
    }

    /// RFC 7432 §7.5: flags (bit 0 = single-active) and a label.
    public static func esiLabel(_ label: UInt32, singleActive: Bool = false) -> Self {
        Self(type: TypeCode.evpn, subtype: Subtype.esiLabel, value: UInt64(singleActive ? 1 : 0) << 40 | UInt64(label & 0xFF_FFFF))
    }

    /// RFC 9135 §8.1 router's MAC.
    public static func routerMAC(_ mac: MACAddress) -> Self {
        Self(type: TypeCode.evpn, subtype: Subtype.routerMAC, value: mac.value)
    }

    /// RFC 8955 §7.3 traffic-rate in bytes per second (IEEE float), with a 2-byte AS.
    public static func trafficRate(as asn: UInt16, bytesPerSecond: Float) -> Self {
        Self(type: TypeCode.flowSpec, subtype: Subtype.trafficRate, value: UInt64(asn) << 32 | UInt64(bytesPerSecond.bitPattern))
    }

    /// RFC 8955 §7.4: terminal (T) and sample (S) bits.
    public static func trafficAction(terminal: Bool, sample: Bool) -> Self {
        Self(type: TypeCode.flowSpec, subtype: Subtype.trafficAction, value: (terminal ? 1 : 0) | (sample ? 2 : 0))
    }

    /// RFC 8955 §7.5 redirect to the VRF with this 2-octet-AS route target.
    public static func redirect(as asn: UInt16, _ number: UInt32) -> Self {
        Self(type: TypeCode.flowSpec, subtype: Subtype.redirect, value: UInt64(asn) << 32 | UInt64(number))
    }

    /// Redirect to VRF, IPv4-address form (type 0x81).
    public static func redirect(ipv4 address: IPv4Address, _ number: UInt16) -> Self {
        Self(type: TypeCode.flowSpecIPv4, subtype: Subtype.redirect, value: UInt64(address.value) << 16 | UInt64(number))
    }

    /// Redirect to VRF, 4-octet-AS form (type 0x82).
    public static func redirect(as4 asn: UInt32, _ number: UInt16) -> Self {
        Self(type: TypeCode.flowSpecAS4, subtype: Subtype.redirect, value: UInt64(asn) << 16 | UInt64(number))
    }

    /// RFC 8955 §7.6 traffic-marking (DSCP).
    public static func trafficMarking(dscp: UInt8) -> Self {
        Self(type: TypeCode.flowSpec, subtype: Subtype.trafficMarking, value: UInt64(dscp & 0x3F))
    }

    /// Redirect to IP next hop (draft-ietf-idr-flowspec-redirect-ip, type 0x08 subtype 0x00):
    /// the target is the route's next hop; bit 0 of the value is the copy flag.
    public static func redirectToIP(copy: Bool = false) -> Self {
        Self(type: TypeCode.flowSpecRedirectIPv6Compat, subtype: Subtype.redirectToIP, value: copy ? 1 : 0)
    }

    // MARK: Interpretation

    public enum Kind: Hashable, Sendable {
        case routeTarget(String)
        case routeTargetRecord(String)
        case routeOrigin(String)
        case encapsulation(TunnelType)
        case consistentHashSortOrder(UInt32)
        case defaultGateway
        case macMobility(sequence: UInt32, sticky: Bool)
        case esiLabel(label: UInt32, singleActive: Bool)
        case esImportRouteTarget(MACAddress)
        case routerMAC(MACAddress)
        case linkBandwidth(asn: UInt16, bytesPerSecond: Float)
        case trafficRate(asn: UInt16, bytesPerSecond: Float)
        case trafficAction(terminal: Bool, sample: Bool)
        case redirect(String)
        case trafficMarking(dscp: UInt8)
        case redirectToIP(copy: Bool)
        case unknown
    }

    /// "AS:N", "IP:N" or "AS4:N" for the administrator/number kinds.
    private var administratorAndNumber: String? {
        switch type & ~TypeCode.nonTransitiveBit {
        case TypeCode.twoOctetAS, TypeCode.flowSpec: "\(value >> 32):\(value & 0xFFFF_FFFF)"
        case TypeCode.ipv4Address, TypeCode.flowSpecIPv4: "\(IPv4Address(UInt32(truncatingIfNeeded: value >> 16))):\(value & 0xFFFF)"
        case TypeCode.fourOctetAS, TypeCode.flowSpecAS4: "\(value >> 16):\(value & 0xFFFF)"
        default: nil
        }
    }

    public var kind: Kind {
        let baseType = type & ~TypeCode.nonTransitiveBit
        switch (baseType, subtype) {
        case (0x00...0x02, Subtype.routeTarget): return .routeTarget(administratorAndNumber ?? "")
        case (0x00...0x02, Subtype.routeTargetRecord): return .routeTargetRecord(administratorAndNumber ?? "")
        case (0x00...0x02, Subtype.routeOrigin): return .routeOrigin(administratorAndNumber ?? "")
        case (TypeCode.opaque, Subtype.encapsulation) where type == TypeCode.opaque:
            return .encapsulation(TunnelType(rawValue: UInt16(truncatingIfNeeded: value)))
        case (TypeCode.opaque, Subtype.consistentHashSortOrder) where type == TypeCode.opaque:
            return .consistentHashSortOrder(UInt32(truncatingIfNeeded: value >> 16))
        case (TypeCode.opaque, Subtype.defaultGateway) where type == TypeCode.opaque: return .defaultGateway
        case (TypeCode.evpn, Subtype.macMobility) where type == TypeCode.evpn:
            return .macMobility(sequence: UInt32(truncatingIfNeeded: value), sticky: value >> 40 & 1 == 1)
        case (TypeCode.evpn, Subtype.esiLabel) where type == TypeCode.evpn:
            return .esiLabel(label: UInt32(truncatingIfNeeded: value & 0xFF_FFFF), singleActive: value >> 40 & 1 == 1)
        case (TypeCode.evpn, Subtype.esImportRouteTarget) where type == TypeCode.evpn: return .esImportRouteTarget(MACAddress(value))
        case (TypeCode.evpn, Subtype.routerMAC) where type == TypeCode.evpn: return .routerMAC(MACAddress(value))
        case (TypeCode.twoOctetAS, Subtype.linkBandwidth):
            return .linkBandwidth(asn: UInt16(truncatingIfNeeded: value >> 32), bytesPerSecond: Float(bitPattern: UInt32(truncatingIfNeeded: value)))
        case (TypeCode.flowSpec, Subtype.trafficRate) where type == TypeCode.flowSpec:
            return .trafficRate(asn: UInt16(truncatingIfNeeded: value >> 32), bytesPerSecond: Float(bitPattern: UInt32(truncatingIfNeeded: value)))
        case (TypeCode.flowSpec, Subtype.trafficAction) where type == TypeCode.flowSpec:
            return .trafficAction(terminal: value & 1 == 1, sample: value & 2 == 2)
        case (TypeCode.flowSpec, Subtype.redirect) where type == TypeCode.flowSpec,
            (TypeCode.flowSpecIPv4, Subtype.redirect) where type == TypeCode.flowSpecIPv4,
            (TypeCode.flowSpecAS4, Subtype.redirect) where type == TypeCode.flowSpecAS4:
            return .redirect(administratorAndNumber ?? "")
        case (TypeCode.flowSpec, Subtype.trafficMarking) where type == TypeCode.flowSpec:
            return .trafficMarking(dscp: UInt8(truncatingIfNeeded: value & 0x3F))
        case (TypeCode.flowSpecRedirectIPv6Compat, Subtype.redirectToIP) where type == TypeCode.flowSpecRedirectIPv6Compat:
            return .redirectToIP(copy: value & 1 == 1)
        default: return .unknown
        }
    }

    public var isRouteTarget: Bool {
        if case .routeTarget = kind { return true }
        return false
    }

    /// Text like ExaBGP's: "target:64512:100", "encap:VXLAN", "mac-mobility:5"; hex for unknown kinds.
    public var description: String {
        switch kind {
        case .routeTarget(let s): "target:" + s
        case .routeTargetRecord(let s): "rt-record:" + s
        case .routeOrigin(let s): "origin:" + s
        case .encapsulation(let t): "encap:\(t)"
        case .consistentHashSortOrder(let o): "consistent-hash-sort-order:\(o)"
        case .defaultGateway: "default-gateway"
        case .macMobility(let seq, let sticky): "mac-mobility:\(seq)" + (sticky ? ":sticky" : "")
        case .esiLabel(let label, let single): "esi-label:\(label)" + (single ? ":single-active" : "")
        case .esImportRouteTarget(let mac): "es-import:\(mac)"
        case .routerMAC(let mac): "router-mac:\(mac)"
        case .linkBandwidth(let asn, let rate): "link-bandwidth:\(asn):\(rate)"
        case .trafficRate(let asn, let rate): "rate-limit:\(asn):\(rate)"
        case .trafficAction(let t, let s): "traffic-action:" + (t ? "terminal" : "") + (s ? (t ? ",sample" : "sample") : "")
        case .redirect(let s): "redirect:" + s
        case .trafficMarking(let dscp): "mark:\(dscp)"
        case .redirectToIP(let copy): copy ? "redirect-to-nexthop:copy" : "redirect-to-nexthop"
        case .unknown: "0x" + String(rawValue, radix: 16)
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// RFC 9012 tunnel types (IANA "BGP Tunnel Encapsulation Attribute Tunnel Types").
public struct TunnelType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let `default` = TunnelType(rawValue: 0)
    public static let l2tpv3 = TunnelType(rawValue: 1)
    public static let gre = TunnelType(rawValue: 2)
    public static let ipInIP = TunnelType(rawValue: 7)
    public static let vxlan = TunnelType(rawValue: 8)
    public static let nvgre = TunnelType(rawValue: 9)
    public static let mpls = TunnelType(rawValue: 10)
    public static let mplsInGRE = TunnelType(rawValue: 11)
    public static let vxlanGPE = TunnelType(rawValue: 12)
    public static let mplsInUDP = TunnelType(rawValue: 13)
    public static let geneve = TunnelType(rawValue: 19)

    static let names: [UInt16: String] = [
        0: "DEFAULT", 1: "L2TPv3", 2: "GRE", 7: "IP-in-IP", 8: "VXLAN", 9: "NVGRE", 10: "MPLS", 11: "MPLS-in-GRE",
        12: "VXLAN-GPE", 13: "MPLS-in-UDP", 19: "Geneve",
    ]

    public var description: String { Self.names[rawValue] ?? "\(rawValue)" }
}
