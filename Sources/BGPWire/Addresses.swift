// Addresses as plain integers: compact, hashable, and cheap to copy into NLRI keys.

/// An IPv4 address held in host order.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad notation ("192.0.2.1"); nil for anything else.
    public init?(_ text: some StringProtocol) {
        var octets: [UInt32] = []
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, let octet = UInt32(part), octet <= 255 else { return nil }
            octets.append(octet)
        }
        guard octets.count == 4 else { return nil }
        value = octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

/// An IPv6 address as two 64-bit halves in host order.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses RFC 4291 text ("2001:db8::1", "::ffff:192.0.2.1"); nil for anything else.
    public init?(_ text: some StringProtocol) {
        var words: [UInt16] = []
        var gapIndex: Int? = nil
        var rest = Substring(text)
        if rest.hasPrefix("::") {
            gapIndex = 0
            rest = rest.dropFirst(2)
        }
        while !rest.isEmpty {
            let end = rest.firstIndex(of: ":") ?? rest.endIndex
            let group = rest[rest.startIndex..<end]
            if group.contains(".") {
                // Embedded IPv4 in the last 32 bits.
                guard end == rest.endIndex, let v4 = IPv4Address(group) else { return nil }
                words.append(UInt16(v4.value >> 16))
                words.append(UInt16(v4.value & 0xFFFF))
                rest = rest[end...]
                break
            }
            guard !group.isEmpty, group.count <= 4, let word = UInt16(group, radix: 16) else { return nil }
            words.append(word)
            rest = rest[end...]
            if rest.hasPrefix("::") {
                guard gapIndex == nil else { return nil }
                gapIndex = words.count
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                if rest.isEmpty { return nil }
            }
        }
        if let gap = gapIndex {
            guard words.count < 8 else { return nil }
            words.insert(contentsOf: [UInt16](repeating: 0, count: 8 - words.count), at: gap)
        }
        guard words.count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(words[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(words[i]) }
        self.init(high: high, low: low)
    }

    var words: [UInt16] {
        (0..<8).map { i in
            let half = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> (UInt64(3 - i % 4) * 16))
        }
    }

    /// RFC 5952 canonical text: lower case, longest run of zero words compressed.
    public var description: String {
        let w = words
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && w[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength && i - runStart > 1 { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if high == 0 && low >> 32 == 0xFFFF {
            return "::ffff:" + IPv4Address(UInt32(truncatingIfNeeded: low)).description
        }
        var parts: [String] = []
        var i = 0
        while i < 8 {
            if i == bestStart {
                parts.append(i == 0 ? ":" : "")
                i += bestLength
                if i == 8 { parts.append("") }
                continue
            }
            parts.append(String(w[i], radix: 16))
            i += 1
        }
        return parts.joined(separator: ":")
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }
}

/// Either address family.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) { self = .v4(v4) } else if let v6 = IPv6Address(text) { self = .v6(v6) } else { return nil }
    }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }

    /// Length of the address in bits (32 or 128).
    public var bitWidth: Int {
        switch self {
        case .v4: 32
        case .v6: 128
        }
    }
}

/// An IP prefix. The address keeps the bits that came on the wire, so a prefix with host bits set
/// re-encodes to the same bytes.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var length: UInt8

    public init(_ address: IPAddress, length: UInt8) {
        self.address = address
        self.length = length
    }

    public init(_ address: IPv4Address, length: UInt8) { self.init(.v4(address), length: length) }
    public init(_ address: IPv6Address, length: UInt8) { self.init(.v6(address), length: length) }

    /// Parses "10.0.0.0/24" or "2001:db8::/32".
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let address = IPAddress(parts[0]), let length = UInt8(parts[1]),
            Int(length) <= address.bitWidth
        else { return nil }
        self.init(address, length: length)
    }

    public var description: String { "\(address)/\(length)" }

    public var isIPv4: Bool {
        if case .v4 = address { return true }
        return false
    }
}

/// A 48-bit MAC address held in the low bits of a UInt64.
public struct MACAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    /// Parses "02:00:00:00:00:01" (also with '-' separators).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for part in parts {
            guard part.count <= 2, let octet = UInt8(part, radix: 16) else { return nil }
            v = v << 8 | UInt64(octet)
        }
        value = v
    }

    public var description: String {
        (0..<6).map { i in
            let octet = UInt8(truncatingIfNeeded: value >> UInt64((5 - i) * 8))
            return octet < 16 ? "0" + String(octet, radix: 16) : String(octet, radix: 16)
        }.joined(separator: ":")
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

extension IPv6Address {
    /// `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2): how an IPv4 next hop of a VPNv6 route is written
    /// (RFC 4659 §3.2.1.2).
    public init(mapping v4: IPv4Address) { self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(v4.value)) }

    /// The IPv4 address of an IPv4-mapped address, nil for any other.
    public var mappedIPv4: IPv4Address? {
        guard high == 0, low >> 32 == 0xFFFF else { return nil }
        return IPv4Address(UInt32(truncatingIfNeeded: low))
    }
}
