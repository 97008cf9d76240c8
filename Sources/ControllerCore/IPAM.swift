import Foundation

/// An IPv4 or IPv6 address as a number (IPv4 in the low 32 bits), for subnet arithmetic.
public struct IPAddressValue: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var version: Int
    public var value: UInt128

    public init(version: Int, value: UInt128) {
        self.version = version
        self.value = value
    }

    public init?(_ text: String) {
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &a) { Array($0) }
            version = 6
            value = bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
        } else {
            var a = in_addr()
            guard text.split(separator: ".").count == 4, inet_pton(AF_INET, text, &a) == 1 else { return nil }
            version = 4
            value = UInt128(UInt32(bigEndian: a.s_addr))
        }
    }

    public var bits: Int { version == 4 ? 32 : 128 }

    public var description: String {
        if version == 4 {
            let v = UInt32(truncatingIfNeeded: value)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        var bytes = (0..<16).map { UInt8(truncatingIfNeeded: value >> (8 * (15 - $0))) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        return bytes.withUnsafeMutableBytes { raw in
            inet_ntop(AF_INET6, raw.baseAddress, &text, socklen_t(text.count)).map { _ in String(cString: text) } ?? ""
        }
    }

    public static func < (a: IPAddressValue, b: IPAddressValue) -> Bool { (a.version, a.value) < (b.version, b.value) }

    public func adding(_ n: UInt128) -> IPAddressValue { IPAddressValue(version: version, value: value &+ n) }
}

/// A subnet's CIDR.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public var network: IPAddressValue
    public var length: Int

    /// Parses `a.b.c.d/n` or `x::/n`; host bits must be zero unless `strict` is false.
    public init?(_ text: String, strict: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddressValue(String(parts[0])), let n = Int(parts[1]), n >= 0, n <= address.bits,
            parts[1].allSatisfy(\.isNumber)
        else { return nil }
        let hostMask: UInt128 = n == address.bits ? 0 : (UInt128(1) << (address.bits - n)) - 1
        guard !strict || address.value & hostMask == 0 else { return nil }
        network = IPAddressValue(version: address.version, value: address.value & ~hostMask)
        length = n
    }

    public var version: Int { network.version }
    public var size: UInt128 { length == 0 && network.bits == 128 ? UInt128.max : UInt128(1) << (network.bits - length) }
    public var first: IPAddressValue { network }
    public var last: IPAddressValue { network.adding(size &- 1) }

    public func contains(_ a: IPAddressValue) -> Bool { a.version == version && a >= first && a <= last }

    public func overlaps(_ other: CIDR) -> Bool { version == other.version && first <= other.last && other.first <= last }

    public var description: String { "\(network)/\(length)" }

    /// Neutron's defaults: the gateway is the first address after the network's, and the pool is
    /// every usable address but the gateway (IPv4 keeps the broadcast address out).
    public var defaultGateway: IPAddressValue? { size > 2 || version == 6 ? first.adding(1) : nil }

    public func defaultPools(gateway: IPAddressValue?) -> [(IPAddressValue, IPAddressValue)] {
        let start = version == 4 && size > 2 ? first.adding(1) : first.adding(version == 6 ? 1 : 0)
        let end = version == 4 && size > 2 ? last.adding(UInt128.max) : last  // adding max is -1
        guard start <= end else { return [] }
        guard let gateway, gateway >= start, gateway <= end else { return [(start, end)] }
        var pools: [(IPAddressValue, IPAddressValue)] = []
        if gateway > start { pools.append((start, gateway.adding(UInt128.max))) }
        if gateway < end { pools.append((gateway.adding(1), end)) }
        return pools
    }
}
