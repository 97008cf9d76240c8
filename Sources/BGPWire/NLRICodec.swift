import NIOCore

/// How the NLRI of a family are laid out on the wire.
enum NLRILayout: Hashable, Sendable {
    case prefix(ipv6: Bool)
    case labeled(ipv6: Bool)
    case vpn(ipv6: Bool)
    case evpn
    case routeTargetMembership
    case flowSpec(ipv6: Bool, vpn: Bool)
    /// A family this library does not model: its NLRI stay opaque bytes.
    case opaque

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

/// Reads and writes single NLRI. Errors are `MalformedField` / `TruncatedInput`; the caller maps
/// them to the RFC 7606 class of the field that held the NLRI.
enum NLRICodec {
    static let withdrawLabelEntry: UInt32 = 0x80_0000

    @inline(__always)
    static func read(_ layout: NLRILayout, addPath: Bool, from buffer: inout ByteBuffer) throws -> NLRIElement {
        let pathID: UInt32? = addPath ? try buffer.readU32() : nil
        let nlri: NLRI
        switch layout {
        case .prefix(let ipv6): nlri = .prefix(try readPrefix(ipv6: ipv6, from: &buffer))
        case .labeled(let ipv6): nlri = try readLabeled(ipv6: ipv6, from: &buffer)
        case .vpn(let ipv6): nlri = try readLabeled(ipv6: ipv6, withRD: true, from: &buffer)
        case .evpn: nlri = .evpn(try readEVPN(from: &buffer))
        case .routeTargetMembership: nlri = .routeTargetMembership(try readRouteTargetMembership(from: &buffer))
        case .flowSpec(let ipv6, let vpn): nlri = .flowSpec(try readFlowSpec(ipv6: ipv6, vpn: vpn, from: &buffer))
        case .opaque: throw MalformedField("family not modeled")
        }
        return NLRIElement(nlri, pathID: pathID)
    }

    static func readPrefix(ipv6: Bool, from buffer: inout ByteBuffer) throws -> IPPrefix {
        let length = try buffer.readU8()
        guard length <= (ipv6 ? 128 : 32) else { throw MalformedField("prefix length \(length) too long") }
        return IPPrefix(try buffer.readPrefixBits(Int(length), ipv6: ipv6), length: length)
    }

    /// Labeled unicast and labeled VPN share one layout: length in bits, label stack, [RD], prefix.
    @inline(__always)
    static func readLabeled(ipv6: Bool, withRD: Bool = false, from buffer: inout ByteBuffer) throws -> NLRI {
        var bits = Int(try buffer.readU8())
        let fixedBits = withRD ? 64 : 0
        let maxPrefix = ipv6 ? 128 : 32
        var labels = MPLSLabelStack()
        // Labels run until bottom-of-stack, or the withdraw marker (RFC 8277 §2.4). A sender that forgot
        // the bottom-of-stack bit gets one label: never read into the RD or prefix.
        let start = buffer.readerIndex
        while true {
            guard bits >= 24 + fixedBits else { throw MalformedField("labeled NLRI too short: \(bits) bits") }
            let entry = try buffer.readU24()
            labels.append(rawEntry: entry)
            bits -= 24
            if entry & 1 == 1 || entry == withdrawLabelEntry || entry == 0 { break }
            if bits - 24 < fixedBits || labels.count >= 8 {
                buffer.moveReaderIndex(to: start + 3)
                bits += 24 * (labels.count - 1)
                labels = MPLSLabelStack(rawEntries: [labels[rawEntryAt: 0]])
                break
            }
        }
        if bits - fixedBits > maxPrefix, labels.count > 1 {
            throw MalformedField("labeled prefix length \(bits - fixedBits) too long")
        }
        let rd: RouteDistinguisher? = withRD ? RouteDistinguisher(rawValue: try buffer.readU64()) : nil
        let prefixBits = bits - fixedBits
        guard prefixBits <= maxPrefix else { throw MalformedField("prefix length \(prefixBits) too long") }
        let prefix = IPPrefix(try buffer.readPrefixBits(prefixBits, ipv6: ipv6), length: UInt8(prefixBits))
        if let rd {
            return .vpnPrefix(VPNPrefix(labels: labels, routeDistinguisher: rd, prefix: prefix))
        }
        return .labeledPrefix(LabeledPrefix(labels: labels, prefix: prefix))
    }

    static func readESI(from buffer: inout ByteBuffer) throws -> EthernetSegmentIdentifier {
        let high = try buffer.readU16()
        return EthernetSegmentIdentifier(high: high, low: try buffer.readU64())
    }

    static func readIP(length bits: UInt8, from buffer: inout ByteBuffer) throws -> IPAddress {
        switch bits {
        case 32: return .v4(try buffer.readIPv4())
        case 128: return .v6(try buffer.readIPv6())
        default: throw MalformedField("IP address length \(bits) is neither 32 nor 128")
        }
    }

    @inline(__always)
    static func readEVPN(from buffer: inout ByteBuffer) throws -> EVPNRoute {
        let type = try buffer.readU8()
        let length = Int(try buffer.readU8())
        var value = try buffer.readSliceOrThrow(length)
        let route: EVPNRoute
        switch type {
        case 1:
            guard length == 25 else { throw MalformedField("EVPN type 1 length \(length), expected 25") }
            route = .ethernetAutoDiscovery(
                EVPNEthernetAutoDiscoveryRoute(
                    routeDistinguisher: RouteDistinguisher(rawValue: try value.readU64()), esi: try readESI(from: &value),
                    ethernetTag: try value.readU32(), labelField: try value.readU24()))
        case 2:
            let rd = RouteDistinguisher(rawValue: try value.readU64())
            let esi = try readESI(from: &value)
            let tag = try value.readU32()
            let macLength = try value.readU8()
            guard macLength == 48 else { throw MalformedField("EVPN MAC length \(macLength), expected 48") }
            let macHigh = try value.readU16()
            let mac = MACAddress(UInt64(macHigh) << 32 | UInt64(try value.readU32()))
            let ipLength = try value.readU8()
            let ip: IPAddress? = ipLength == 0 ? nil : try readIP(length: ipLength, from: &value)
            let label1 = try value.readU24()
            let label2: UInt32? = value.readableBytes == 0 ? nil : try value.readU24()
            route = .macIPAdvertisement(
                EVPNMACIPRoute(routeDistinguisher: rd, esi: esi, ethernetTag: tag, mac: mac, ip: ip, labelField1: label1, labelField2: label2))
        case 3:
            let rd = RouteDistinguisher(rawValue: try value.readU64())
            let tag = try value.readU32()
            let ipLength = try value.readU8()
            route = .inclusiveMulticast(
                EVPNInclusiveMulticastRoute(routeDistinguisher: rd, ethernetTag: tag, originatingRouter: try readIP(length: ipLength, from: &value)))
        case 4:
            let rd = RouteDistinguisher(rawValue: try value.readU64())
            let esi = try readESI(from: &value)
            let ipLength = try value.readU8()
            route = .ethernetSegment(
                EVPNEthernetSegmentRoute(routeDistinguisher: rd, esi: esi, originatingRouter: try readIP(length: ipLength, from: &value)))
        case 5:
            // RFC 9136 §3.1: the NLRI length (34 or 58) tells the address family.
            guard length == 34 || length == 58 else { throw MalformedField("EVPN type 5 length \(length), expected 34 or 58") }
            let ipv6 = length == 58
            let rd = RouteDistinguisher(rawValue: try value.readU64())
            let esi = try readESI(from: &value)
            let tag = try value.readU32()
            let prefixLength = try value.readU8()
            guard prefixLength <= (ipv6 ? 128 : 32) else { throw MalformedField("EVPN type 5 prefix length \(prefixLength) too long") }
            let address: IPAddress = ipv6 ? .v6(try value.readIPv6()) : .v4(try value.readIPv4())
            let gateway: IPAddress = ipv6 ? .v6(try value.readIPv6()) : .v4(try value.readIPv4())
            route = .ipPrefix(
                EVPNIPPrefixRoute(
                    routeDistinguisher: rd, esi: esi, ethernetTag: tag, prefix: IPPrefix(address, length: prefixLength), gateway: gateway,
                    labelField: try value.readU24()))
        default:
            return .unknown(type: type, value: value.readBytes(length: value.readableBytes) ?? [])
        }
        guard value.readableBytes == 0 else { throw MalformedField("EVPN type \(type) has \(value.readableBytes) trailing bytes") }
        return route
    }

    static func readRouteTargetMembership(from buffer: inout ByteBuffer) throws -> RouteTargetMembership {
        let length = try buffer.readU8()
        if length == 0 { return .default }
        guard length >= 32 && length <= 96 else { throw MalformedField("RT-Constraint prefix length \(length) not 0 or 32-96") }
        let originAS = try buffer.readU32()
        let rtBits = Int(length) - 32
        let rtBytes = (rtBits + 7) / 8
        var rt: UInt64 = 0
        for i in 0..<rtBytes { rt |= UInt64(try buffer.readU8()) << UInt64(56 - 8 * i) }
        return RouteTargetMembership(prefixLength: length, originAS: originAS, routeTarget: ExtendedCommunity(rawValue: rt))
    }

    static func readFlowSpec(ipv6: Bool, vpn: Bool, from buffer: inout ByteBuffer) throws -> FlowSpecRule {
        // RFC 8955 §4.1: one length byte below 240, else two with the top nibble 0xF.
        var length = Int(try buffer.readU8())
        if length >= 0xF0 { length = (length & 0x0F) << 8 | Int(try buffer.readU8()) }
        var body = try buffer.readSliceOrThrow(length)
        let rd: RouteDistinguisher? = vpn ? RouteDistinguisher(rawValue: try body.readU64()) : nil
        var components: [FlowSpecComponent] = []
        var lastType: UInt8 = 0
        let maxType = ipv6 ? FlowSpecComponentType.flowLabel : FlowSpecComponentType.fragment
        while body.readableBytes > 0 {
            let type = try body.readU8()
            guard type > lastType else { throw MalformedField("flowspec component \(type) out of order") }
            guard type >= 1 && type <= maxType else { throw MalformedField("unknown flowspec component type \(type)") }
            lastType = type
            if type <= FlowSpecComponentType.sourcePrefix {
                let bits = try body.readU8()
                guard bits <= (ipv6 ? 128 : 32) else { throw MalformedField("flowspec prefix length \(bits) too long") }
                if ipv6 {
                    let offset = try body.readU8()
                    guard offset <= bits else { throw MalformedField("flowspec offset \(offset) beyond length \(bits)") }
                    let pattern = try body.readPrefixBits(Int(bits - offset), ipv6: true)
                    guard case .v6(let p) = pattern else { throw MalformedField("flowspec pattern") }
                    components.append(.prefix(type: type, prefix: IPPrefix(.v6(shiftRight(p, by: Int(offset))), length: bits), offset: offset))
                } else {
                    components.append(.prefix(type: type, prefix: IPPrefix(try body.readPrefixBits(Int(bits), ipv6: false), length: bits), offset: 0))
                }
                continue
            }
            var matches: [FlowSpecMatch] = []
            while true {
                let op = try body.readU8()
                let valueLength = 1 << Int((op & FlowSpecMatch.lengthMask) >> 4)
                var value: UInt64 = 0
                for _ in 0..<valueLength { value = value << 8 | UInt64(try body.readU8()) }
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

    static func shiftLeft(_ a: IPv6Address, by n: Int) -> IPv6Address {
        guard n > 0 else { return a }
        if n >= 64 { return IPv6Address(high: a.low << UInt64(n - 64), low: 0) }
        return IPv6Address(high: a.high << UInt64(n) | a.low >> UInt64(64 - n), low: a.low << UInt64(n))
    }

    // MARK: Writing

    @inline(__always)
    static func write(_ element: NLRIElement, addPath: Bool, to buffer: inout ByteBuffer) {
        if addPath { buffer.writeInteger(element.pathID ?? 0) }
        switch element.nlri {
        case .prefix(let p):
            buffer.writeInteger(p.length)
            buffer.writePrefixBits(p.address, bits: Int(p.length))
        case .labeledPrefix(let p):
            writeLabeled(labels: p.labels, rd: nil, prefix: p.prefix, to: &buffer)
        case .vpnPrefix(let p):
            writeLabeled(labels: p.labels, rd: p.routeDistinguisher, prefix: p.prefix, to: &buffer)
        case .evpn(let route): writeEVPN(route, to: &buffer)
        case .routeTargetMembership(let m):
            buffer.writeInteger(m.prefixLength)
            guard m.prefixLength > 0 else { return }
            buffer.writeInteger(m.originAS)
            let rtBytes = (Int(m.prefixLength) - 32 + 7) / 8
            for i in 0..<rtBytes { buffer.writeInteger(UInt8(truncatingIfNeeded: m.routeTarget.rawValue >> UInt64(56 - 8 * i))) }
        case .flowSpec(let rule): writeFlowSpec(rule, to: &buffer)
        }
    }

    @inline(__always)
    static func writeLabeled(labels: MPLSLabelStack, rd: RouteDistinguisher?, prefix: IPPrefix, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(truncatingIfNeeded: 24 * labels.count + (rd == nil ? 0 : 64) + Int(prefix.length)))
        for i in 0..<labels.count { buffer.writeU24(labels[rawEntryAt: i]) }
        if let rd { buffer.writeInteger(rd.rawValue) }
        buffer.writePrefixBits(prefix.address, bits: Int(prefix.length))
    }

    static func writeESI(_ esi: EthernetSegmentIdentifier, to buffer: inout ByteBuffer) {
        buffer.writeInteger(esi.high)
        buffer.writeInteger(esi.low)
    }

    static func writeIPWithLength(_ ip: IPAddress?, to buffer: inout ByteBuffer) {
        guard let ip else {
            buffer.writeInteger(UInt8(0))
            return
        }
        buffer.writeInteger(UInt8(ip.bitWidth))
        buffer.writeIPAddress(ip)
    }

    @inline(__always)
    static func writeEVPN(_ route: EVPNRoute, to buffer: inout ByteBuffer) {
        buffer.writeInteger(route.routeType)
        let lengthIndex = buffer.reserveLength(width: 1)
        switch route {
        case .ethernetAutoDiscovery(let r):
            buffer.writeInteger(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &buffer)
            buffer.writeInteger(r.ethernetTag)
            buffer.writeU24(r.labelField)
        case .macIPAdvertisement(let r):
            buffer.writeInteger(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &buffer)
            buffer.writeInteger(r.ethernetTag)
            buffer.writeInteger(UInt8(48))
            buffer.writeInteger(UInt16(truncatingIfNeeded: r.mac.value >> 32))
            buffer.writeInteger(UInt32(truncatingIfNeeded: r.mac.value))
            writeIPWithLength(r.ip, to: &buffer)
            buffer.writeU24(r.labelField1)
            if let label2 = r.labelField2 { buffer.writeU24(label2) }
        case .inclusiveMulticast(let r):
            buffer.writeInteger(r.routeDistinguisher.rawValue)
            buffer.writeInteger(r.ethernetTag)
            writeIPWithLength(r.originatingRouter, to: &buffer)
        case .ethernetSegment(let r):
            buffer.writeInteger(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &buffer)
            writeIPWithLength(r.originatingRouter, to: &buffer)
        case .ipPrefix(let r):
            buffer.writeInteger(r.routeDistinguisher.rawValue)
            writeESI(r.esi, to: &buffer)
            buffer.writeInteger(r.ethernetTag)
            buffer.writeInteger(r.prefix.length)
            buffer.writeIPAddress(r.prefix.address)
            buffer.writeIPAddress(r.gateway)
            buffer.writeU24(r.labelField)
        case .unknown(_, let value):
            buffer.writeBytes(value)
        }
        buffer.patchLength(at: lengthIndex, width: 1)
    }

    static func writeFlowSpec(_ rule: FlowSpecRule, to buffer: inout ByteBuffer) {
        var body = ByteBuffer()
        if let rd = rule.routeDistinguisher { body.writeInteger(rd.rawValue) }
        for component in rule.components {
            body.writeInteger(component.type)
            switch component {
            case .prefix(_, let prefix, let offset):
                body.writeInteger(prefix.length)
                switch prefix.address {
                case .v4: body.writePrefixBits(prefix.address, bits: Int(prefix.length))
                case .v6(let a):
                    body.writeInteger(offset)
                    let bits = Int(prefix.length) - Int(offset)
                    body.writePrefixBits(.v6(shiftLeft(a, by: Int(offset))), bits: max(bits, 0))
                }
            case .match(_, let matches):
                for (i, m) in matches.enumerated() {
                    body.writeInteger(m.op | (i == matches.count - 1 ? FlowSpecMatch.endOfList : 0))
                    for b in stride(from: m.valueLength - 1, through: 0, by: -1) {
                        body.writeInteger(UInt8(truncatingIfNeeded: m.value >> UInt64(8 * b)))
                    }
                }
            }
        }
        if body.readableBytes < 0xF0 {
            buffer.writeInteger(UInt8(body.readableBytes))
        } else {
            buffer.writeInteger(UInt16(0xF000 | body.readableBytes & 0xFFF))
        }
        buffer.writeBuffer(&body)
    }
}
