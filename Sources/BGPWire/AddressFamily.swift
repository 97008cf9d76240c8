/// Address Family Identifier (IANA).
public struct AFI: RawRepresentable, Hashable, Sendable, Comparable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let ipv4 = AFI(rawValue: 1)
    public static let ipv6 = AFI(rawValue: 2)
    public static let l2vpn = AFI(rawValue: 25)
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Subsequent Address Family Identifier (IANA).
public struct SAFI: RawRepresentable, Hashable, Sendable, Comparable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let unicast = SAFI(rawValue: 1)
    public static let multicast = SAFI(rawValue: 2)
    public static let labeledUnicast = SAFI(rawValue: 4)
    public static let mvpn = SAFI(rawValue: 5)
    public static let vpls = SAFI(rawValue: 65)
    public static let evpn = SAFI(rawValue: 70)
    public static let mplsVPN = SAFI(rawValue: 128)
    public static let routeTargetConstraint = SAFI(rawValue: 132)
    public static let flowSpec = SAFI(rawValue: 133)
    public static let flowSpecVPN = SAFI(rawValue: 134)
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// An (AFI, SAFI) pair.
public struct AddressFamily: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var afi: AFI
    public var safi: SAFI

    public init(afi: AFI, safi: SAFI) {
        self.afi = afi
        self.safi = safi
    }

    public init(afi: UInt16, safi: UInt8) { self.init(afi: AFI(rawValue: afi), safi: SAFI(rawValue: safi)) }

    public static let ipv4Unicast = AddressFamily(afi: .ipv4, safi: .unicast)
    public static let ipv6Unicast = AddressFamily(afi: .ipv6, safi: .unicast)
    public static let ipv4Multicast = AddressFamily(afi: .ipv4, safi: .multicast)
    public static let ipv6Multicast = AddressFamily(afi: .ipv6, safi: .multicast)
    public static let ipv4LabeledUnicast = AddressFamily(afi: .ipv4, safi: .labeledUnicast)
    public static let ipv6LabeledUnicast = AddressFamily(afi: .ipv6, safi: .labeledUnicast)
    public static let ipv4VPN = AddressFamily(afi: .ipv4, safi: .mplsVPN)
    public static let ipv6VPN = AddressFamily(afi: .ipv6, safi: .mplsVPN)
    public static let evpn = AddressFamily(afi: .l2vpn, safi: .evpn)
    public static let routeTargetConstraint = AddressFamily(afi: .ipv4, safi: .routeTargetConstraint)
    public static let ipv4FlowSpec = AddressFamily(afi: .ipv4, safi: .flowSpec)
    public static let ipv6FlowSpec = AddressFamily(afi: .ipv6, safi: .flowSpec)
    public static let ipv4FlowSpecVPN = AddressFamily(afi: .ipv4, safi: .flowSpecVPN)
    public static let ipv6FlowSpecVPN = AddressFamily(afi: .ipv6, safi: .flowSpecVPN)

    /// Families whose NLRI this library parses; any other family is carried as opaque bytes.
    public static let modeled: [AddressFamily] = [
        .ipv4Unicast, .ipv6Unicast, .ipv4Multicast, .ipv6Multicast, .ipv4LabeledUnicast, .ipv6LabeledUnicast,
        .ipv4VPN, .ipv6VPN, .evpn, .routeTargetConstraint, .ipv4FlowSpec, .ipv6FlowSpec, .ipv4FlowSpecVPN,
        .ipv6FlowSpecVPN,
    ]

    static let names: [AddressFamily: String] = [
        .ipv4Unicast: "ipv4-unicast", .ipv6Unicast: "ipv6-unicast",
        .ipv4Multicast: "ipv4-multicast", .ipv6Multicast: "ipv6-multicast",
        .ipv4LabeledUnicast: "ipv4-labeled-unicast", .ipv6LabeledUnicast: "ipv6-labeled-unicast",
        .ipv4VPN: "ipv4-vpn", .ipv6VPN: "ipv6-vpn", .evpn: "l2vpn-evpn", .routeTargetConstraint: "rtc",
        .ipv4FlowSpec: "ipv4-flowspec", .ipv6FlowSpec: "ipv6-flowspec",
        .ipv4FlowSpecVPN: "ipv4-flowspec-vpn", .ipv6FlowSpecVPN: "ipv6-flowspec-vpn",
    ]

    /// Stable name used in JSON and on command lines ("ipv4-vpn", "l2vpn-evpn"); "afi/safi" otherwise.
    public var description: String { Self.names[self] ?? "\(afi.rawValue)/\(safi.rawValue)" }

    /// Parses a name produced by `description`, or "AFI/SAFI" numbers.
    public init?(name: String) {
        if let found = Self.names.first(where: { $0.value == name }) {
            self = found.key
            return
        }
        let parts = name.split(separator: "/")
        guard parts.count == 2, let afi = UInt16(parts[0]), let safi = UInt8(parts[1]) else { return nil }
        self.init(afi: afi, safi: safi)
    }

    public var isModeled: Bool { Self.names[self] != nil }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.afi, lhs.safi) < (rhs.afi, rhs.safi) }
}
