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

}
