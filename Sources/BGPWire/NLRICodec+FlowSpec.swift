/// RFC 8955 and RFC 8956 flowspec rules: reading and writing.
extension NLRICodec {
    static func readFlowSpec(ipv6: Bool, vpn: Bool, from c: inout RawCursor) throws(MalformedField) -> FlowSpecRule {
        // RFC 8955 §4.1: one length byte below 240, else two with the top nibble 0xF.
        var length = Int(try c.u8())
        if length >= 0xF0 { length = (length & 0x0F) << 8 | Int(try c.u8()) }
        var body = try c.sub(length)
        let rd: RouteDistinguisher? = vpn ? RouteDistinguisher(rawValue: try body.u64()) : nil
        var components: [FlowSpecComponent] = []
        var lastType: UInt8 = 0
        let maxType = ipv6 ? FlowSpecComponentType.flowLabel : FlowSpecComponentType.fragment
        while body.remaining > 0 {
            let type = try body.u8()
            guard type > lastType else { throw MalformedField("flowspec component \(type) out of order") }
            guard type >= 1 && type <= maxType else { throw MalformedField("unknown flowspec component type \(type)") }
            lastType = type
            if type <= FlowSpecComponentType.sourcePrefix {
                let bits = try body.u8()
                guard bits <= (ipv6 ? 128 : 32) else { throw MalformedField("flowspec prefix length \(bits) too long") }
                // The bits after the prefix pad it to an octet and are ignored on decoding (RFC 8956
                // §3.1, RFC 8955 §4.2.2.1): the value holds bits offset..<length only, so encodings
                // that differ in their padding decode to one rule, which encodes with zero padding.
                if ipv6 {
                    // RFC 8956 §3.1: the pattern holds bits offset..<length.
                    let offset = try body.u8()
                    guard offset <= bits else { throw MalformedField("flowspec offset \(offset) beyond length \(bits)") }
                    guard case .v6(let pattern) = try body.prefixBits(Int(bits - offset), ipv6: true) else { throw MalformedField("flowspec pattern") }
                    components.append(.prefix(type: type, prefix: IPPrefix(.v6(keepHigh(shiftRight(pattern, by: Int(offset)), Int(bits))), length: bits), offset: offset))
                } else {
                    guard case .v4(let a) = try body.prefixBits(Int(bits), ipv6: false) else { throw MalformedField("flowspec prefix") }
                    let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
                    components.append(.prefix(type: type, prefix: IPPrefix(.v4(IPv4Address(a.value & mask)), length: bits), offset: 0))
                }
                continue
            }
            var matches: [FlowSpecMatch] = []
            while true {
                let op = try body.u8()
                let valueLength = 1 << Int((op & FlowSpecMatch.lengthMask) >> 4)
                var value: UInt64 = 0
                for _ in 0..<valueLength { value = value << 8 | UInt64(try body.u8()) }
                matches.append(FlowSpecMatch(op: op, value: value))
                if op & FlowSpecMatch.endOfList != 0 { break }
            }
            components.append(.match(type: type, matches))
        }
        guard !components.isEmpty else { throw MalformedField("flowspec NLRI has no component") }
        return FlowSpecRule(routeDistinguisher: rd, components: components)
    }

    static func shiftRight(_ a: IPv6Address, by n: Int) -> IPv6Address {
        guard n > 0 else { return a }
        if n >= 64 { return IPv6Address(high: 0, low: a.high >> UInt64(n - 64)) }
        return IPv6Address(high: a.high >> UInt64(n), low: a.low >> UInt64(n) | a.high << UInt64(64 - n))
    }

    /// The `n` most significant bits of `a`, the rest zero.
    static func keepHigh(_ a: IPv6Address, _ n: Int) -> IPv6Address {
        if n >= 128 { return a }
        if n <= 0 { return IPv6Address(high: 0, low: 0) }
        if n <= 64 { return IPv6Address(high: n == 64 ? a.high : a.high & ~(UInt64.max >> UInt64(n)), low: 0) }
        return IPv6Address(high: a.high, low: a.low & ~(UInt64.max >> UInt64(n - 64)))
    }

    static func shiftLeft(_ a: IPv6Address, by n: Int) -> IPv6Address {
        guard n > 0 else { return a }
        if n >= 64 { return IPv6Address(high: a.low << UInt64(n - 64), low: 0) }
        return IPv6Address(high: a.high << UInt64(n) | a.low >> UInt64(64 - n), low: a.low << UInt64(n))
    }

    static func flowSpecBodyLength(_ rule: FlowSpecRule) -> Int {
        var n = rule.routeDistinguisher == nil ? 0 : 8
        for component in rule.components {
            switch component {
            case .prefix(_, let prefix, let offset):
                n += prefix.isIPv4 ? 2 + (Int(prefix.length) + 7) >> 3 : 3 + (max(0, Int(prefix.length) - Int(offset)) + 7) >> 3
            case .match(_, let matches):
                n += 1
                for m in matches { n += 1 + m.valueLength }
            }
        }
        return n
    }

    static func writeFlowSpec(_ rule: FlowSpecRule, to w: inout RawWriter) {
        let body = flowSpecBodyLength(rule)
        if body < 0xF0 { w.u8(UInt8(body)) } else { w.u16(UInt16(0xF000 | body & 0xFFF)) }
        if let rd = rule.routeDistinguisher { w.u64(rd.rawValue) }
        for component in rule.components {
            w.u8(component.type)
            switch component {
            case .prefix(_, let prefix, let offset):
                w.u8(prefix.length)
                switch prefix.address {
                case .v4: w.prefixBits(prefix.address, bits: Int(prefix.length))
                case .v6(let a):
                    w.u8(offset)
                    w.prefixBits(.v6(shiftLeft(a, by: Int(offset))), bits: max(0, Int(prefix.length) - Int(offset)))
                }
            case .match(_, let matches):
                for (i, m) in matches.enumerated() {
                    w.u8(m.op | (i == matches.count - 1 ? FlowSpecMatch.endOfList : 0))
                    for b in stride(from: m.valueLength - 1, through: 0, by: -1) { w.u8(UInt8(truncatingIfNeeded: m.value >> UInt64(8 * b))) }
                }
            }
        }
    }
}
