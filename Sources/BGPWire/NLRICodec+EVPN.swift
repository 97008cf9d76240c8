import NIOCore

/// RFC 7432 §7 and RFC 9136 E-VPN routes: validating, reading and writing.
extension NLRICodec {
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
}
