import NIOCore

/// How the NLRI of a family are laid out on the wire.
@usableFromInline
enum NLRILayout: Hashable, Sendable {
    case prefix(ipv6: Bool)
    case labeled(ipv6: Bool)
    case vpn(ipv6: Bool)
    case evpn
    case routeTargetMembership
    case flowSpec(ipv6: Bool, vpn: Bool)
    /// A family this library does not model: its NLRI stay opaque bytes.
    case opaque

    @usableFromInline
    init(_ family: AddressFamily) {
        let ipv6 = family.afi == .ipv6
        switch (family.afi, family.safi) {
        case (.ipv4, .unicast), (.ipv6, .unicast), (.ipv4, .multicast), (.ipv6, .multicast): self = .prefix(ipv6: ipv6)
        case (.ipv4, .labeledUnicast), (.ipv6, .labeledUnicast): self = .labeled(ipv6: ipv6)
        case (.ipv4, .mplsVPN), (.ipv6, .mplsVPN): self = .vpn(ipv6: ipv6)
        case (.l2vpn, .evpn): self = .evpn
        case (.ipv4, .routeTargetConstraint), (.ipv6, .routeTargetConstraint): self = .routeTargetMembership
        case (.ipv4, .flowSpec), (.ipv6, .flowSpec): self = .flowSpec(ipv6: ipv6, vpn: false)
        case (.ipv4, .flowSpecVPN), (.ipv6, .flowSpecVPN): self = .flowSpec(ipv6: ipv6, vpn: true)
        default: self = .opaque
        }
    }
}

/// Reads and writes single NLRI: the hot path of every UPDATE. Reading works on a raw cursor with
/// typed errors; the caller maps a `MalformedField` to the RFC 7606 class of the field that held it.
@usableFromInline
enum NLRICodec {
    static let withdrawLabelEntry: UInt32 = 0x80_0000

    // MARK: Validating

    /// Checks one NLRI exactly as `read` would, without building its value, and moves past it.
    /// Validation of a whole UPDATE runs this; iteration runs `read`. They must accept the same
    /// bytes: NLRICodecTests and the fuzzer's oracle (iteration yields the validated count) hold them
    /// to it.
    @inline(__always) @usableFromInline
    static func skip(_ layout: NLRILayout, addPath: Bool, from c: inout RawCursor) throws(MalformedField) {
        if addPath { _ = try c.u32() }
        switch layout {
        case .prefix(let ipv6):
            let length = try c.u8()
            guard length <= (ipv6 ? 128 : 32) else { throw MalformedField("prefix length \(length) too long") }
            _ = try c.sub((Int(length) + 7) >> 3)
        case .labeled(let ipv6): try skipLabeled(ipv6: ipv6, withRD: false, from: &c)
        case .vpn(let ipv6): try skipLabeled(ipv6: ipv6, withRD: true, from: &c)
        case .evpn: try skipEVPN(from: &c)
        case .routeTargetMembership:
            let length = try c.u8()
            guard length == 0 || (length >= 32 && length <= 96) else { throw MalformedField("RT-Constraint prefix length \(length) not 0 or 32-96") }
            _ = try c.sub((Int(length) + 7) >> 3)
        case .flowSpec, .opaque:
            _ = try read(layout, addPath: false, from: &c)
        }
    }

    /// The label-stack walk of `readLabeled`, counting instead of collecting.
    @inline(__always)
    static func skipLabeled(ipv6: Bool, withRD: Bool, from c: inout RawCursor) throws(MalformedField) {
        var bits = Int(try c.u8())
        let fixedBits = withRD ? 64 : 0
        guard bits >= 24 + fixedBits else { throw MalformedField("labeled NLRI too short: \(bits) bits") }
        let first = try c.u24()
        bits -= 24
        if first & 1 == 0 && first != withdrawLabelEntry && first != 0 && bits - 24 >= fixedBits {
            let afterFirst = c.position
            var count = 1
            var bottom = false
            while bits - 24 >= fixedBits {
                let entry = try c.u24()
                bits -= 24
                guard count < MPLSLabelStack.capacity else { throw MalformedField("label stack deeper than \(MPLSLabelStack.capacity)") }
                count += 1
                if entry & 1 == 1 {
                    bottom = true
                    break
                }
            }
            if !bottom {
                c.position = afterFirst
                bits += 24 * (count - 1)
            }
        }
        let prefixBits = bits - fixedBits
        guard prefixBits <= (ipv6 ? 128 : 32) else { throw MalformedField("prefix length \(prefixBits) too long") }
        _ = try c.sub(fixedBits / 8 + (prefixBits + 7) >> 3)
    }

    @inline(__always)
    static func skipEVPN(from c: inout RawCursor) throws(MalformedField) {
        let type = try c.u8()
        let length = Int(try c.u8())
        let b = try c.need(length)
        func ipBytes(_ bits: UInt8) throws(MalformedField) -> Int {
            switch bits {
            case 32: return 4
            case 128: return 16
            default: throw MalformedField("IP address length \(bits) is neither 32 nor 128")
            }
        }
        switch type {
        case 1:
            guard length == 25 else { throw MalformedField("EVPN type 1 length \(length), expected 25") }
        case 2:
            guard length >= 33 else { throw MalformedField("EVPN type 2 length \(length) too short") }
            guard c.at8(b, 22) == 48 else { throw MalformedField("EVPN MAC length \(c.at8(b, 22)), expected 48") }
            let ip = c.at8(b, 29) == 0 ? 0 : try ipBytes(c.at8(b, 29))
            guard length == 33 + ip || length == 36 + ip else { throw MalformedField("EVPN type 2 length \(length) does not fit its fields") }
        case 3:
            guard length >= 13, length == 13 + (try ipBytes(c.at8(b, 12))) else { throw MalformedField("EVPN type 3 length \(length) does not fit its fields") }
        case 4:
            guard length >= 19, length == 19 + (try ipBytes(c.at8(b, 18))) else { throw MalformedField("EVPN type 4 length \(length) does not fit its fields") }
        case 5:
            guard length == 34 || length == 58 else { throw MalformedField("EVPN type 5 length \(length), expected 34 or 58") }
            guard c.at8(b, 22) <= (length == 58 ? 128 : 32) else { throw MalformedField("EVPN type 5 prefix length \(c.at8(b, 22)) too long") }
        default: break
        }
        c.position += length
    }

    // MARK: Reading

    @inline(__always) @usableFromInline
    static func read(_ layout: NLRILayout, addPath: Bool, from c: inout RawCursor) throws(MalformedField) -> NLRIElement {
        let pathID: UInt32? = addPath ? try c.u32() : nil
        let nlri: NLRI
        switch layout {
        case .prefix(let ipv6): nlri = .prefix(try readPrefix(ipv6: ipv6, from: &c))
        case .labeled(let ipv6): nlri = try readLabeled(ipv6: ipv6, withRD: false, from: &c)
        case .vpn(let ipv6): nlri = try readLabeled(ipv6: ipv6, withRD: true, from: &c)
        case .evpn:
            if let route = try readEVPNMACIP(from: &c) {
                nlri = .evpn(.macIPAdvertisement(route))
            } else {
                nlri = .evpn(try readEVPN(from: &c))
            }
        case .routeTargetMembership: nlri = .routeTargetMembership(try readRouteTargetMembership(from: &c))
        case .flowSpec(let ipv6, let vpn): nlri = .flowSpec(try readFlowSpec(ipv6: ipv6, vpn: vpn, from: &c))
        case .opaque: throw MalformedField("family not modeled")
        }
        return NLRIElement(nlri, pathID: pathID)
    }

    @inline(__always)
    static func readPrefix(ipv6: Bool, from c: inout RawCursor) throws(MalformedField) -> IPPrefix {
        let length = try c.u8()
        guard length <= (ipv6 ? 128 : 32) else { throw MalformedField("prefix length \(length) too long") }
        return IPPrefix(try c.prefixBits(Int(length), ipv6: ipv6), length: length)
    }

    /// Labeled unicast and labeled VPN share one layout: length in bits, label stack, [RD], prefix.
    @inline(__always)
    static func readLabeled(ipv6: Bool, withRD: Bool, from c: inout RawCursor) throws(MalformedField) -> NLRI {
        var bits = Int(try c.u8())
        let fixedBits = withRD ? 64 : 0
        if withRD && !ipv6 && bits >= 88 && bits <= 120 {
            // One label with bottom-of-stack and an IPv4 prefix, the bulk of VPNv4: one bounds check.
            let b = try c.need((bits + 7) >> 3)
            let label = c.at24(b, 0)
            if label & 1 == 1 {
                let prefixBits = bits - 88
                var address: UInt32 = 0
                for i in 0..<(prefixBits + 7) >> 3 { address |= UInt32(c.at8(b, 11 + i)) << UInt32(24 - 8 * i) }
                let rd = RouteDistinguisher(rawValue: c.at64(b, 3))
                c.position += (bits + 7) >> 3
                return .vpnPrefix(VPNPrefix(labels: MPLSLabelStack(single: label), routeDistinguisher: rd, prefix: IPPrefix(.v4(IPv4Address(address)), length: UInt8(prefixBits))))
            }
        }
        guard bits >= 24 + fixedBits else { throw MalformedField("labeled NLRI too short: \(bits) bits") }
        // Labels run until bottom-of-stack, or the withdraw marker (RFC 8277 §2.4). A sender that forgot
        // the bottom-of-stack bit gets one label: never read into the RD or prefix.
        let first = try c.u24()
        bits -= 24
        var labels = MPLSLabelStack(single: first)
        if first & 1 == 0 && first != withdrawLabelEntry && first != 0 && bits - 24 >= fixedBits {
            let afterFirst = c.position
            var bottom = false
            while bits - 24 >= fixedBits {
                let entry = try c.u24()
                bits -= 24
                guard labels.count < MPLSLabelStack.capacity else {
                    throw MalformedField("label stack deeper than \(MPLSLabelStack.capacity)")
                }
                labels.append(rawEntry: entry)
                if entry & 1 == 1 {
                    bottom = true
                    break
                }
            }
            if !bottom {
                c.position = afterFirst
                bits += 24 * (labels.count - 1)
                labels = MPLSLabelStack(single: first)
            }
        }
        let rd = withRD ? try c.u64() : 0
        let prefixBits = bits - fixedBits
        guard prefixBits <= (ipv6 ? 128 : 32) else { throw MalformedField("prefix length \(prefixBits) too long") }
        let prefix = IPPrefix(try c.prefixBits(prefixBits, ipv6: ipv6), length: UInt8(prefixBits))
        if withRD {
            return .vpnPrefix(VPNPrefix(labels: labels, routeDistinguisher: RouteDistinguisher(rawValue: rd), prefix: prefix))
        }
        return .labeledPrefix(LabeledPrefix(labels: labels, prefix: prefix))
    }

    @inline(__always)
    static func readESI(from c: inout RawCursor) throws(MalformedField) -> EthernetSegmentIdentifier {
        let high = try c.u16()
        return EthernetSegmentIdentifier(high: high, low: try c.u64())
    }

    @inline(__always)
    static func readIP(length bits: UInt8, from c: inout RawCursor) throws(MalformedField) -> IPAddress {
        switch bits {
        case 32: return .v4(IPv4Address(try c.u32()))
        case 128:
            let high = try c.u64()
            return .v6(IPv6Address(high: high, low: try c.u64()))
        default: throw MalformedField("IP address length \(bits) is neither 32 nor 128")
        }
    }

    /// EVPN MAC/IP advertisement (the bulk of EVPN): one bounds check, then plain loads. Small so that it
    /// inlines into `read` and the route is built where the caller wants it. Nil (nothing consumed)
    /// for other route types.
    @inline(__always)
    static func readEVPNMACIP(from c: inout RawCursor) throws(MalformedField) -> EVPNMACIPRoute? {
        guard c.remaining >= 2, let base = c.base, base.load(fromByteOffset: c.position, as: UInt8.self) == 2 else { return nil }
        let length = Int(base.load(fromByteOffset: c.position + 1, as: UInt8.self))
        c.position += 2
        let b = try c.need(length)
        guard length >= 33 else { throw MalformedField("EVPN type 2 length \(length) too short") }
        guard c.at8(b, 22) == 48 else { throw MalformedField("EVPN MAC length \(c.at8(b, 22)), expected 48") }
        let ipLength = c.at8(b, 29)
        let ipBytes = ipLength == 0 ? 0 : (ipLength == 32 ? 4 : (ipLength == 128 ? 16 : -1))
        guard ipBytes >= 0 else { throw MalformedField("IP address length \(ipLength) is neither 32 nor 128") }
        let labels = length - 30 - ipBytes
        guard labels == 3 || labels == 6 else { throw MalformedField("EVPN type 2 length \(length) does not fit its fields") }
        let ip: IPAddress? =
            switch ipBytes {
            case 4: .v4(IPv4Address(c.at32(b, 30)))
            case 16: .v6(IPv6Address(high: c.at64(b, 30), low: c.at64(b, 38)))
            default: nil
            }
        let labelAt = 30 + ipBytes
        let route = EVPNMACIPRoute(
            routeDistinguisher: RouteDistinguisher(rawValue: c.at64(b, 0)),
            esi: EthernetSegmentIdentifier(high: c.at16(b, 8), low: c.at64(b, 10)), ethernetTag: c.at32(b, 18),
            mac: MACAddress(UInt64(c.at16(b, 23)) << 32 | UInt64(c.at32(b, 25))), ip: ip, labelField1: c.at24(b, labelAt),
            labelField2: labels == 6 ? c.at24(b, labelAt + 3) : nil)
        c.position += length
        return route
    }

    @inline(__always)
    static func readEVPN(from c: inout RawCursor) throws(MalformedField) -> EVPNRoute {
        if let route = try readEVPNMACIP(from: &c) { return .macIPAdvertisement(route) }
        let type = try c.u8()
        let length = Int(try c.u8())
        var v = try c.sub(length)
        let route: EVPNRoute
        switch type {
        case 1:
            guard length == 25 else { throw MalformedField("EVPN type 1 length \(length), expected 25") }
            let rd = RouteDistinguisher(rawValue: try v.u64())
            let esi = try readESI(from: &v)
            let tag = try v.u32()
            route = .ethernetAutoDiscovery(EVPNEthernetAutoDiscoveryRoute(routeDistinguisher: rd, esi: esi, ethernetTag: tag, labelField: try v.u24()))
        case 2:
            let rd = RouteDistinguisher(rawValue: try v.u64())
            let esi = try readESI(from: &v)
            let tag = try v.u32()
            let macLength = try v.u8()
            guard macLength == 48 else { throw MalformedField("EVPN MAC length \(macLength), expected 48") }
            let macHigh = try v.u16()
            let mac = MACAddress(UInt64(macHigh) << 32 | UInt64(try v.u32()))
            let ipLength = try v.u8()
            let ip: IPAddress? = ipLength == 0 ? nil : try readIP(length: ipLength, from: &v)
            let label1 = try v.u24()
            let label2: UInt32? = v.remaining == 0 ? nil : try v.u24()
            route = .macIPAdvertisement(
                EVPNMACIPRoute(routeDistinguisher: rd, esi: esi, ethernetTag: tag, mac: mac, ip: ip, labelField1: label1, labelField2: label2))
        case 3:
            let rd = RouteDistinguisher(rawValue: try v.u64())
            let tag = try v.u32()
            let ipLength = try v.u8()
            route = .inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: rd, ethernetTag: tag, originatingRouter: try readIP(length: ipLength, from: &v)))
        case 4:
            let rd = RouteDistinguisher(rawValue: try v.u64())
            let esi = try readESI(from: &v)
            let ipLength = try v.u8()
            route = .ethernetSegment(EVPNEthernetSegmentRoute(routeDistinguisher: rd, esi: esi, originatingRouter: try readIP(length: ipLength, from: &v)))
        case 5:
            // RFC 9136 §3.1: the NLRI length (34 or 58) tells the address family.
            guard length == 34 || length == 58 else { throw MalformedField("EVPN type 5 length \(length), expected 34 or 58") }
            let ipLength: UInt8 = length == 58 ? 128 : 32
            let rd = RouteDistinguisher(rawValue: try v.u64())
            let esi = try readESI(from: &v)
            let tag = try v.u32()
            let prefixLength = try v.u8()
            guard prefixLength <= ipLength else { throw MalformedField("EVPN type 5 prefix length \(prefixLength) too long") }
            let address = try readIP(length: ipLength, from: &v)
            let gateway = try readIP(length: ipLength, from: &v)
            route = .ipPrefix(
                EVPNIPPrefixRoute(
                    routeDistinguisher: rd, esi: esi, ethernetTag: tag, prefix: IPPrefix(address, length: prefixLength), gateway: gateway,
                    labelField: try v.u24()))
        default:
            return .unknown(type: type, value: try v.bytes(length))
        }
        guard v.remaining == 0 else { throw MalformedField("EVPN type \(type) has \(v.remaining) trailing bytes") }
        return route
    }

    static func readRouteTargetMembership(from c: inout RawCursor) throws(MalformedField) -> RouteTargetMembership {
        let length = try c.u8()
        if length == 0 { return .default }
        guard length >= 32 && length <= 96 else { throw MalformedField("RT-Constraint prefix length \(length) not 0 or 32-96") }
        let originAS = try c.u32()
        let rtBytes = (Int(length) - 32 + 7) / 8
        var rt: UInt64 = 0
        for i in 0..<rtBytes { rt |= UInt64(try c.u8()) << UInt64(56 - 8 * i) }
        return RouteTargetMembership(prefixLength: length, originAS: originAS, routeTarget: ExtendedCommunity(rawValue: rt))
    }

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

    // MARK: Writing

    /// Bytes `write` will produce for this element.
    @inline(__always) @usableFromInline
    static func encodedLength(_ element: NLRIElement, addPath: Bool) -> Int {
        (addPath ? 4 : 0) + encodedLength(element.nlri)
    }

    @inline(__always)
    static func encodedLength(_ nlri: NLRI) -> Int {
        switch nlri {
        case .prefix(let p): return 1 + (Int(p.length) + 7) >> 3
        case .labeledPrefix(let p): return 1 + 3 * p.labels.count + (Int(p.prefix.length) + 7) >> 3
        case .vpnPrefix(let p): return 1 + 3 * p.labels.count + 8 + (Int(p.prefix.length) + 7) >> 3
        case .evpn(let route): return 2 + evpnValueLength(route)
        case .routeTargetMembership(let m): return m.prefixLength == 0 ? 1 : 1 + 4 + (Int(m.prefixLength) - 32 + 7) / 8
        case .flowSpec(let rule):
            let body = flowSpecBodyLength(rule)
            return (body < 0xF0 ? 1 : 2) + body
        }
    }

    @inline(__always)
    static func evpnValueLength(_ route: EVPNRoute) -> Int {
        switch route {
        case .ethernetAutoDiscovery: 25
        case .macIPAdvertisement(let r): 33 + (r.ip.map { $0.bitWidth / 8 } ?? 0) + (r.labelField2 == nil ? 0 : 3)
        case .inclusiveMulticast(let r): 13 + r.originatingRouter.bitWidth / 8
        case .ethernetSegment(let r): 19 + r.originatingRouter.bitWidth / 8
        case .ipPrefix(let r): r.prefix.isIPv4 ? 34 : 58
        case .unknown(_, let value): value.count
        }
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

    /// Appends the element with one capacity check and raw stores.
    @inline(__always) @usableFromInline
    static func write(_ element: NLRIElement, addPath: Bool, to buffer: inout ByteBuffer) {
        let length = encodedLength(element, addPath: addPath)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
            var w = RawWriter(raw.baseAddress!)
            if addPath { w.u32(element.pathID ?? 0) }
            write(element.nlri, to: &w)
            return w.position
        }
    }

    @inline(__always)
    static func write(_ nlri: NLRI, to w: inout RawWriter) {
        switch nlri {
        case .prefix(let p):
            w.u8(p.length)
            w.prefixBits(p.address, bits: Int(p.length))
        case .labeledPrefix(let p): writeLabeled(labels: p.labels, rd: nil, prefix: p.prefix, to: &w)
        case .vpnPrefix(let p): writeLabeled(labels: p.labels, rd: p.routeDistinguisher, prefix: p.prefix, to: &w)
        case .evpn(let route): writeEVPN(route, to: &w)
        case .routeTargetMembership(let m):
            w.u8(m.prefixLength)
            guard m.prefixLength > 0 else { return }
            w.u32(m.originAS)
            for i in 0..<(Int(m.prefixLength) - 32 + 7) / 8 { w.u8(UInt8(truncatingIfNeeded: m.routeTarget.rawValue >> UInt64(56 - 8 * i))) }
        case .flowSpec(let rule): writeFlowSpec(rule, to: &w)
        }
    }

    @inline(__always)
    static func writeLabeled(labels: MPLSLabelStack, rd: RouteDistinguisher?, prefix: IPPrefix, to w: inout RawWriter) {
        w.u8(UInt8(truncatingIfNeeded: 24 * labels.count + (rd == nil ? 0 : 64) + Int(prefix.length)))
        for i in 0..<labels.count { w.u24(labels[rawEntryAt: i]) }
        if let rd { w.u64(rd.rawValue) }
        w.prefixBits(prefix.address, bits: Int(prefix.length))
    }

    @inline(__always)
    static func writeESI(_ esi: EthernetSegmentIdentifier, to w: inout RawWriter) {
        w.u16(esi.high)
        w.u64(esi.low)
    }

    @inline(__always)
    static func writeIPWithLength(_ ip: IPAddress?, to w: inout RawWriter) {
        guard let ip else { return w.u8(0) }
        w.u8(UInt8(ip.bitWidth))
        w.ip(ip)
    }

    @inline(__always)
    static func writeEVPN(_ route: EVPNRoute, to w: inout RawWriter) {
        w.u8(route.routeType)
        w.u8(UInt8(truncatingIfNeeded: evpnValueLength(route)))
        switch route {
        case .ethernetAutoDiscovery(let r):
            w.u64(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &w)
            w.u32(r.ethernetTag)
            w.u24(r.labelField)
        case .macIPAdvertisement(let r):
            w.u64(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &w)
            w.u32(r.ethernetTag)
            w.u8(48)
            w.u16(UInt16(truncatingIfNeeded: r.mac.value >> 32))
            w.u32(UInt32(truncatingIfNeeded: r.mac.value))
            writeIPWithLength(r.ip, to: &w)
            w.u24(r.labelField1)
            if let label2 = r.labelField2 { w.u24(label2) }
        case .inclusiveMulticast(let r):
            w.u64(r.routeDistinguisher.rawValue)
            w.u32(r.ethernetTag)
            writeIPWithLength(r.originatingRouter, to: &w)
        case .ethernetSegment(let r):
            w.u64(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &w)
            writeIPWithLength(r.originatingRouter, to: &w)
        case .ipPrefix(let r):
            w.u64(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &w)
            w.u32(r.ethernetTag)
            w.u8(r.prefix.length)
            w.ip(r.prefix.address)
            w.ip(r.gateway)
            w.u24(r.labelField)
        case .unknown(_, let value):
            for b in value { w.u8(b) }
        }
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
