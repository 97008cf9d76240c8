import BagpipeLab
import BGPWire

/// Reproducible generator of valid, canonically encodable BGP values for round-trip properties.
struct Gen {
    var random: SplitMix64

    init(seed: UInt64) { random = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D | 1) }

    mutating func next() -> UInt64 { random.next() }

    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func bool() -> Bool { next() & 1 == 1 }
    mutating func u8() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    mutating func u16() -> UInt16 { UInt16(truncatingIfNeeded: next()) }
    mutating func u32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
    mutating func bytes(_ range: ClosedRange<Int>) -> [UInt8] { (0..<int(range)).map { _ in u8() } }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...items.count - 1)] }
    mutating func array<T>(_ range: ClosedRange<Int>, _ make: (inout Gen) -> T) -> [T] {
        (0..<int(range)).map { _ in make(&self) }
    }

    // MARK: Addresses

    mutating func ipv4() -> IPv4Address { IPv4Address(u32()) }
    mutating func ipv6() -> IPv6Address { IPv6Address(high: next(), low: next()) }
    mutating func ip() -> IPAddress { bool() ? .v4(ipv4()) : .v6(ipv6()) }
    mutating func mac() -> MACAddress { MACAddress(next()) }

    /// A prefix with every bit past its length cleared.
    mutating func prefix(ipv6: Bool) -> IPPrefix {
        let length = int(0...(ipv6 ? 128 : 32))
        if ipv6 {
            let a = ipv6Masked(self.ipv6(), keep: 0..<length)
            return IPPrefix(.v6(a), length: UInt8(length))
        }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
        return IPPrefix(.v4(IPv4Address(u32() & mask)), length: UInt8(length))
    }

    func ipv6Masked(_ a: IPv6Address, keep bits: Range<Int>) -> IPv6Address {
        func maskHalf(_ v: UInt64, from: Int) -> UInt64 {
            var m: UInt64 = 0
            for bit in 0..<64 where bits.contains(from + bit) { m |= UInt64(1) << UInt64(63 - bit) }
            return v & m
        }
        return IPv6Address(high: maskHalf(a.high, from: 0), low: maskHalf(a.low, from: 64))
    }

    mutating func rd() -> RouteDistinguisher {
        switch int(0...2) {
        case 0: .as2(u16(), u32())
        case 1: .ipv4(ipv4(), u16())
        default: .as4(u32(), u16())
        }
    }

    /// One to three labels (two at most where a /128 after an RD would overflow the 255-bit length).
    mutating func labels(max: Int = 3) -> MPLSLabelStack { MPLSLabelStack(labels: array(1...max) { $0.u32() & 0xFFFFF }) }
    mutating func esi() -> EthernetSegmentIdentifier { EthernetSegmentIdentifier(high: u16(), low: next()) }

    // MARK: NLRI

    mutating func evpn() -> EVPNRoute {
        switch int(1...6) {
        case 1: return .ethernetAutoDiscovery(.init(routeDistinguisher: rd(), esi: esi(), ethernetTag: u32(), labelField: u32()))
        case 2:
            return .macIPAdvertisement(
                .init(routeDistinguisher: rd(), esi: esi(), ethernetTag: u32(), mac: mac(), ip: bool() ? ip() : nil, labelField1: u32(),
                    labelField2: bool() ? u32() : nil))
        case 3: return .inclusiveMulticast(.init(routeDistinguisher: rd(), ethernetTag: u32(), originatingRouter: ip()))
        case 4: return .ethernetSegment(.init(routeDistinguisher: rd(), esi: esi(), originatingRouter: ip()))
        case 5:
            let v6 = bool()
            return .ipPrefix(
                .init(routeDistinguisher: rd(), esi: esi(), ethernetTag: u32(), prefix: prefix(ipv6: v6), gateway: v6 ? .v6(ipv6()) : .v4(ipv4()),
                    labelField: u32()))
        default: return .unknown(type: UInt8(int(6...255)), value: bytes(0...40))
        }
    }

    mutating func routeTargetMembership() -> RouteTargetMembership {
        let length = bool() ? 96 : pick([0, 32, int(33...96)])
        if length == 0 { return .default }
        let bits = UInt64(length - 32)
        let mask: UInt64 = bits == 0 ? 0 : (bits >= 64 ? .max : ~(UInt64.max >> bits))
        return RouteTargetMembership(prefixLength: UInt8(length), originAS: u32(), routeTarget: ExtendedCommunity(rawValue: next() & mask))
    }

    mutating func flowSpec(ipv6: Bool, vpn: Bool) -> FlowSpecRule {
        var components: [FlowSpecComponent] = []
        let maxType = ipv6 ? 13 : 12
        var type = 0
        while components.isEmpty || (type < maxType && bool()) {
            type = int((type + 1)...maxType)
            if type <= 2 {
                if ipv6 {
                    let length = int(0...128)
                    let offset = int(0...length)
                    let a = ipv6Masked(self.ipv6(), keep: offset..<length)
                    components.append(.prefix(type: UInt8(type), prefix: IPPrefix(.v6(a), length: UInt8(length)), offset: UInt8(offset)))
                } else {
                    components.append(.prefix(type: UInt8(type), prefix: prefix(ipv6: false), offset: 0))
                }
            } else {
                let matches = array(1...3) { g -> FlowSpecMatch in
                    let lengthCode = g.int(0...3)
                    let value = lengthCode == 3 ? g.next() : g.next() & ((1 << (8 << UInt64(lengthCode))) - 1)
                    return FlowSpecMatch(op: UInt8(g.bool() ? 0x40 : 0) | UInt8(lengthCode << 4) | UInt8(g.int(0...7)), value: value)
                }
                components.append(.match(type: UInt8(type), matches))
            }
            if type == maxType { break }
        }
        return FlowSpecRule(routeDistinguisher: vpn ? rd() : nil, components: components)
    }

    mutating func nlri(_ family: AddressFamily) -> NLRI {
        let v6 = family.afi == .ipv6
        switch family.safi {
        case .unicast, .multicast: return .prefix(prefix(ipv6: v6))
        case .labeledUnicast: return .labeledPrefix(LabeledPrefix(labels: labels(), prefix: prefix(ipv6: v6)))
        case .mplsVPN: return .vpnPrefix(VPNPrefix(labels: labels(max: v6 ? 2 : 3), routeDistinguisher: rd(), prefix: prefix(ipv6: v6)))
        case .evpn: return .evpn(evpn())
        case .routeTargetConstraint: return .routeTargetMembership(routeTargetMembership())
        default: return .flowSpec(flowSpec(ipv6: v6, vpn: family.safi == .flowSpecVPN))
        }
    }

    mutating func elements(_ family: AddressFamily, addPath: Bool, count: ClosedRange<Int> = 1...12) -> [NLRIElement] {
        array(count) { g in NLRIElement(g.nlri(family), pathID: addPath ? g.u32() : nil) }
    }

    // MARK: Attributes

    mutating func asPath(fourOctet: Bool) -> ASPath {
        ASPath(array(0...3) { g in
            ASPath.Segment(g.pick([.sequence, .set, .confederationSequence, .confederationSet]), g.array(1...10) { g in fourOctet ? g.u32() : UInt32(g.u16()) })
        })
    }

    mutating func nextHop(_ family: AddressFamily) -> NextHop {
        switch family.safi {
        case .flowSpec, .flowSpecVPN: return .none
        case .mplsVPN:
            if bool() { return .vpnIPv4(RouteDistinguisher(rawValue: 0), ipv4()) }
            return .vpnIPv6(RouteDistinguisher(rawValue: 0), ipv6(), linkLocal: bool() ? ipv6() : nil)
        default: return bool() ? .ipv4(ipv4()) : .ipv6(ipv6(), linkLocal: bool() ? ipv6() : nil)
        }
    }

    /// Every non-MP attribute kind, each at most once, in random order; ORIGIN and AS_PATH always.
    mutating func attributes(fourOctet: Bool, withNextHop: Bool) -> [PathAttribute] {
        var values: [PathAttributeValue] = [.origin(pick([.igp, .egp, .incomplete])), .asPath(asPath(fourOctet: fourOctet))]
        if withNextHop { values.append(.nextHop(ipv4())) }
        let optional: [(inout Gen) -> PathAttributeValue] = [
            { .multiExitDiscriminator($0.u32()) }, { .localPreference($0.u32()) }, { _ in .atomicAggregate },
            { g in .aggregator(Aggregator(asn: fourOctet ? g.u32() : UInt32(g.u16()), address: g.ipv4())) },
            { g in .communities(g.array(1...6) { Community(rawValue: $0.u32()) }) }, { .originatorID($0.ipv4()) },
            { g in .clusterList(g.array(1...4) { $0.u32() }) }, { g in .extendedCommunities(g.array(1...6) { ExtendedCommunity(rawValue: $0.next()) }) },
            { g in .as4Path(g.asPath(fourOctet: true)) }, { g in .as4Aggregator(Aggregator(asn: g.u32(), address: g.ipv4())) },
            { g in .pmsiTunnel(PMSITunnel(flags: g.u8(), tunnelType: .init(rawValue: g.u8()), labelField: g.u32(), tunnelIdentifier: g.bytes(0...16))) },
            { g in .largeCommunities(g.array(1...4) { LargeCommunity($0.u32(), $0.u32(), $0.u32()) }) },
            { g in .unknown(type: g.pick([0, 11, 12, 13, 19, 20, 21, 23, 24, 25, 26, 29, 35, 40, 128, 200, 255]), value: g.bytes(0...300)) },
        ]
        for make in optional where bool() { values.append(make(&self)) }
        var attributes = values.map { value -> PathAttribute in
            var a = PathAttribute(value)
            if case .unknown = value { a.flags = [.optional] ; if bool() { a.flags.insert(.transitive) } }
            if a.flags.contains(.transitive) && a.flags.contains(.optional) && bool() { a.flags.insert(.partial) }
            // Canonical: a value over 255 bytes always carries the extended-length flag.
            if bool() || a.encodedBytes(context: WireContext(fourOctetAS: fourOctet)).count > 258 { a.flags.insert(.extendedLength) }
            return a
        }
        for i in stride(from: attributes.count - 1, to: 0, by: -1) { attributes.swapAt(i, int(0...i)) }
        return attributes
    }

    // MARK: Messages

    mutating func update(context: WireContext) -> UpdateMessage {
        let v4 = AddressFamily.ipv4Unicast
        let withdrawn = bool() ? elements(v4, addPath: context.addPath(v4), count: 0...8) : []
        let announced = bool() ? elements(v4, addPath: context.addPath(v4), count: 0...8) : []
        var attributes = attributes(fourOctet: context.fourOctetAS, withNextHop: !announced.isEmpty)
        let families = AddressFamily.modeled
        if bool() {
            let family = pick(families)
            let reach = MPReachNLRI(nextHop: nextHop(family), nlri: NLRIBlock(family: family, addPath: context.addPath(family), elements(family, addPath: context.addPath(family))))
            attributes.insert(PathAttribute(.mpReachNLRI(reach)), at: int(0...attributes.count))
        }
        if bool() {
            let family = pick(families)
            let unreach = MPUnreachNLRI(nlri: NLRIBlock(family: family, addPath: context.addPath(family), elements(family, addPath: context.addPath(family), count: 0...8)))
            attributes.insert(PathAttribute(.mpUnreachNLRI(unreach)), at: int(0...attributes.count))
        }
        // Canonical: a value over 255 bytes always carries the extended-length flag.
        attributes = attributes.map { a in
            var a = a
            if a.encodedBytes(context: context).count > 258 { a.flags.insert(.extendedLength) }
            return a
        }
        return UpdateMessage(
            withdrawnRoutes: NLRIBlock(family: v4, addPath: context.addPath(v4), withdrawn), attributes: attributes,
            nlri: NLRIBlock(family: v4, addPath: context.addPath(v4), announced))
    }

    mutating func capability() -> Capability {
        let family = { (g: inout Gen) in g.bool() ? g.pick(AddressFamily.modeled) : AddressFamily(afi: g.u16(), safi: g.u8()) }
        switch int(0...8) {
        case 0: return .multiprotocol(family(&self))
        case 1: return .routeRefresh
        case 2: return .extendedNextHop(array(1...3) { ExtendedNextHopEntry(family: family(&$0), nextHopAFI: AFI(rawValue: $0.u16())) })
        case 3: return .extendedMessage
        case 4:
            return .gracefulRestart(
                GracefulRestartCapability(flags: u8() & 0xF, restartTime: u16() & 0xFFF, families: array(0...3) { .init(family: family(&$0), flags: $0.u8()) }))
        case 5: return .fourOctetAS(u32())
        case 6: return .addPath(array(1...3) { AddPathEntry(family: family(&$0), mode: AddPathEntry.Mode(rawValue: UInt8($0.int(1...3)))) })
        case 7: return .enhancedRouteRefresh
        default: return .unknown(code: pick([3, 4, 7, 8, 9, 64 + 7, 71, 73, 75, 128, 131, 200]), value: bytes(0...20))
        }
    }

    mutating func open() -> OpenMessage {
        let params: [OpenMessage.OptionalParameter] = array(0...6) { g in
            g.int(0...5) == 0 ? .unknown(type: g.pick([1, 3, 4, 200]), value: g.bytes(0...10)) : .capabilities(g.array(1...4) { $0.capability() })
        }
        return OpenMessage(myAS: u16(), holdTime: u16(), bgpIdentifier: ipv4(), optionalParameters: params, extendedParametersLength: bool())
    }

    mutating func message(context: WireContext) -> BGPMessage {
        switch int(0...5) {
        case 0: return .open(open())
        case 1: return .keepalive
        case 2:
            if bool() { return .notification(.cease(subcode: pick([2, 4]), communication: pick(["", "maintenance", "bye – à bientôt 🛠", String(repeating: "x", count: 300)]))) }
            return .notification(NotificationMessage(code: NotificationCode(rawValue: u8()), subcode: u8(), data: bytes(0...30)))
        case 3:
            let subtype = pick([RouteRefreshMessage.Subtype.request, .beginningOfRouteRefresh, .endOfRouteRefresh])
            return .routeRefresh(RouteRefreshMessage(family: AddressFamily(afi: u16(), safi: u8()), subtype: subtype, orfData: subtype == .request ? bytes(0...8) : []))
        default: return .update(update(context: context))
        }
    }
}
