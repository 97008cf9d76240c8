import BGPWire
import CNetlink

#if canImport(Glibc)
import Glibc
#endif

/// The rtm_protocol (and FRA_PROTOCOL) of everything bagpipe installs: how its routes and rules are
/// told from anyone else's (the original used 19 as well).
public let bagpipeRouteProtocol: UInt8 = 19

/// One next hop of a route.
public struct RouteNextHop: Sendable, Hashable {
    public var device: Int32
    public var gateway: IPAddress?
    /// Lightweight-tunnel IP encapsulation (`encap ip id <VNI> dst <remote>`) on a VXLAN device in
    /// external mode.
    public var tunnel: (id: UInt64, destination: IPv4Address)?
    /// The gateway is on the link even without a matching subnet.
    public var onLink: Bool

    public init(device: Int32, gateway: IPAddress? = nil, tunnel: (id: UInt64, destination: IPv4Address)? = nil, onLink: Bool = false) {
        self.device = device
        self.gateway = gateway
        self.tunnel = tunnel
        self.onLink = onLink
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.device == b.device && a.gateway == b.gateway && a.tunnel?.id == b.tunnel?.id && a.tunnel?.destination == b.tunnel?.destination && a.onLink == b.onLink
    }

    public func hash(into h: inout Hasher) {
        h.combine(device)
        h.combine(gateway)
        h.combine(tunnel?.id)
        h.combine(tunnel?.destination)
    }
}

/// A route of a routing table.
public struct Route: Sendable, Hashable {
    public var table: UInt32
    public var prefix: IPPrefix
    public var nextHops: [RouteNextHop]
    public var protocolID: UInt8
    /// RTN_UNICAST, RTN_UNREACHABLE …
    public var type: UInt8
    public var scope: UInt8

    public init(table: UInt32, prefix: IPPrefix, nextHops: [RouteNextHop], protocolID: UInt8 = bagpipeRouteProtocol, type: UInt8 = UInt8(RTN_UNICAST), scope: UInt8? = nil) {
        self.table = table
        self.prefix = prefix
        self.nextHops = nextHops
        self.protocolID = protocolID
        self.type = type
        // A route straight onto a device (no gateway) is link-scoped.
        self.scope = scope ?? UInt8(nextHops.allSatisfy { $0.gateway == nil && $0.tunnel == nil } && type == UInt8(RTN_UNICAST) ? n(RT_SCOPE_LINK) : n(RT_SCOPE_UNIVERSE))
    }
}

public enum RouteRequests {
    static func rtmsg(_ r: Route) -> [UInt8] {
        var h = CNetlink.rtmsg()
        h.rtm_family = UInt8(r.prefix.address.family)
        h.rtm_dst_len = r.prefix.length
        h.rtm_table = r.table < 256 ? UInt8(r.table) : UInt8(n(RT_TABLE_UNSPEC))
        h.rtm_protocol = r.protocolID
        h.rtm_scope = r.scope
        h.rtm_type = r.type
        return headerBytes(h)
    }

    static func encap(_ a: inout AttributeWriter, _ tunnel: (id: UInt64, destination: IPv4Address)) {
        a.u16(n(RTA_ENCAP_TYPE), UInt16(n(LWTUNNEL_ENCAP_IP)))
        a.nested(n(RTA_ENCAP)) { e in
            e.u64BigEndian(n(LWTUNNEL_IP_ID), tunnel.id)
            e.add(n(LWTUNNEL_IP_DST), tunnel.destination.bytes)
        }
    }

    static func attributes(_ r: Route) -> AttributeWriter {
        var a = AttributeWriter()
        a.u32(n(RTA_TABLE), r.table)
        if r.prefix.length > 0 || true { a.add(n(RTA_DST), r.prefix.address.bytes) }
        if r.nextHops.count == 1, let nh = r.nextHops.first {
            a.u32(n(RTA_OIF), UInt32(bitPattern: nh.device))
            if let g = nh.gateway { a.add(n(RTA_GATEWAY), g.bytes) }
            if let t = nh.tunnel { encap(&a, t) }
        } else if r.nextHops.count > 1 {
            // RTA_MULTIPATH: a list of rtnexthop, each followed by its own attributes.
            var list: [UInt8] = []
            for nh in r.nextHops {
                var inner = AttributeWriter()
                if let g = nh.gateway { inner.add(n(RTA_GATEWAY), g.bytes) }
                if let t = nh.tunnel { encap(&inner, t) }
                var rtnh = rtnexthop()
                rtnh.rtnh_len = UInt16(MemoryLayout<rtnexthop>.size + inner.bytes.count)
                rtnh.rtnh_flags = UInt8(nh.onLink ? RTNH_F_ONLINK : 0)
                rtnh.rtnh_ifindex = nh.device
                list += headerBytes(rtnh) + inner.bytes
                list.padTo4()
            }
            a.add(n(RTA_MULTIPATH), list)
        }
        return a
    }

    static func describe(_ r: Route) -> String {
        "route \(r.prefix) table \(r.table) " + r.nextHops.map { nh in
            (nh.tunnel.map { "encap ip id \($0.id) dst \($0.destination) " } ?? "") + (nh.gateway.map { "via \($0) " } ?? "") + "dev \(nh.device)"
        }.joined(separator: " nexthop ")
    }

    /// `ip route replace` (a route with one next hop carries the onlink flag in rtm_flags).
    public static func replace(_ r: Route) -> NetlinkRequest {
        var header = rtmsg(r)
        if r.nextHops.count == 1, r.nextHops[0].onLink {
            withUnsafeBytes(of: UInt32(RTNH_F_ONLINK)) { for i in 0..<4 { header[8 + i] = $0[i] } }
        }
        return NetlinkRequest(type: Int32(RTM_NEWROUTE), flags: NLM_F_CREATE | NLM_F_REPLACE, header: header, attributes: attributes(r), what: "replace \(describe(r))")
    }

    /// Deletes the route of that table and prefix, whatever its scope and type (ours: protocol 19).
    public static func delete(_ r: Route) -> NetlinkRequest {
        var r = r
        (r.scope, r.type) = (UInt8(n(RT_SCOPE_NOWHERE)), 0)
        var a = AttributeWriter()
        a.u32(n(RTA_TABLE), r.table)
        a.add(n(RTA_DST), r.prefix.address.bytes)
        return NetlinkRequest(type: Int32(RTM_DELROUTE), flags: 0, header: rtmsg(r), attributes: a, what: "delete route \(r.prefix) table \(r.table)")
    }

    static func parse(_ m: NetlinkMessage) -> Route? {
        guard m.type == UInt16(RTM_NEWROUTE), let h = readHeader(CNetlink.rtmsg.self, from: m.payload) else { return nil }
        let a = m.attributes(after: MemoryLayout<CNetlink.rtmsg>.size)
        let table = a.u32(n(RTA_TABLE)) ?? UInt32(h.rtm_table)
        let zero: IPAddress = Int32(h.rtm_family) == AF_INET6 ? .v6(IPv6Address(high: 0, low: 0)) : .v4(IPv4Address(0))
        let dst = a[n(RTA_DST)].flatMap(IPAddress.init(bytes:)) ?? zero
        func tunnel(_ attrs: Attributes) -> (id: UInt64, destination: IPv4Address)? {
            guard attrs.u16(n(RTA_ENCAP_TYPE)) == UInt16(n(LWTUNNEL_ENCAP_IP)), let e = attrs.nested(n(RTA_ENCAP)),
                let id = e.u64BigEndian(n(LWTUNNEL_IP_ID)), case .v4(let d)? = e[n(LWTUNNEL_IP_DST)].flatMap(IPAddress.init(bytes:))
            else { return nil }
            return (id, d)
        }
        var hops: [RouteNextHop] = []
        if let multipath = a[n(RTA_MULTIPATH)] {
            var i = multipath.startIndex
            while i + MemoryLayout<rtnexthop>.size <= multipath.endIndex {
                guard let nh = readHeader(rtnexthop.self, from: multipath[i...]), Int(nh.rtnh_len) >= MemoryLayout<rtnexthop>.size else { break }
                let inner = Attributes(multipath[(i + MemoryLayout<rtnexthop>.size)..<min(multipath.endIndex, i + Int(nh.rtnh_len))])
                hops.append(RouteNextHop(device: nh.rtnh_ifindex, gateway: inner[n(RTA_GATEWAY)].flatMap(IPAddress.init(bytes:)), tunnel: tunnel(inner), onLink: Int32(nh.rtnh_flags) & RTNH_F_ONLINK != 0))
                i += (Int(nh.rtnh_len) + 3) & ~3
            }
        } else if let oif = a.u32(n(RTA_OIF)) {
            hops.append(RouteNextHop(device: Int32(bitPattern: oif), gateway: a[n(RTA_GATEWAY)].flatMap(IPAddress.init(bytes:)), tunnel: tunnel(a), onLink: Int32(h.rtm_flags) & RTNH_F_ONLINK != 0))
        }
        return Route(table: table, prefix: IPPrefix(dst, length: h.rtm_dst_len), nextHops: hops, protocolID: h.rtm_protocol, type: h.rtm_type, scope: h.rtm_scope)
    }
}

extension Attributes {
    func u16(_ type: Int32) -> UInt16? { self[type].flatMap { $0.count >= 2 ? $0.readNative(UInt16.self, at: $0.startIndex) : nil } }
}

extension NetlinkSocket {
    /// Every IPv4 and IPv6 route (of one table when given).
    public func routes(table: UInt32? = nil) throws -> [Route] {
        try [AF_INET, AF_INET6].flatMap { family -> [Route] in
            var h = CNetlink.rtmsg()
            h.rtm_family = UInt8(family)
            return try dump(NetlinkRequest(type: Int32(RTM_GETROUTE), flags: 0, header: headerBytes(h), what: "dump routes")).compactMap(RouteRequests.parse).filter { table == nil || $0.table == table }
        }
    }
}

/// A policy routing rule.
public struct Rule: Sendable, Hashable {
    public var family: Int32
    public var priority: UInt32
    public var table: UInt32
    public var inputInterface: String?
    public var tunnelID: UInt64?
    public var source: IPPrefix?
    public var destination: IPPrefix?
    public var ipProtocol: UInt8?
    public var sourcePorts: ClosedRange<UInt16>?
    public var destinationPorts: ClosedRange<UInt16>?
    public var protocolID: UInt8

    public init(
        family: Int32 = AF_INET, priority: UInt32, table: UInt32, inputInterface: String? = nil, tunnelID: UInt64? = nil, source: IPPrefix? = nil, destination: IPPrefix? = nil,
        ipProtocol: UInt8? = nil, sourcePorts: ClosedRange<UInt16>? = nil, destinationPorts: ClosedRange<UInt16>? = nil, protocolID: UInt8 = bagpipeRouteProtocol
    ) {
        self.family = family
        self.priority = priority
        self.table = table
        self.inputInterface = inputInterface
        self.tunnelID = tunnelID
        self.source = source
        self.destination = destination
        self.ipProtocol = ipProtocol
        self.sourcePorts = sourcePorts
        self.destinationPorts = destinationPorts
        self.protocolID = protocolID
    }
}

public enum RuleRequests {
    static func header(_ r: Rule) -> [UInt8] {
        var h = fib_rule_hdr()
        h.family = UInt8(r.family)
        h.dst_len = r.destination?.length ?? 0
        h.src_len = r.source?.length ?? 0
        h.table = r.table < 256 ? UInt8(r.table) : 0
        h.action = UInt8(n(FR_ACT_TO_TBL))
        return headerBytes(h)
    }

    static func attributes(_ r: Rule) -> AttributeWriter {
        var a = AttributeWriter()
        a.u32(n(FRA_PRIORITY), r.priority)
        a.u32(n(FRA_TABLE), r.table)
        a.u8(n(FRA_PROTOCOL), r.protocolID)
        if let i = r.inputInterface { a.string(n(FRA_IIFNAME), i) }
        if let t = r.tunnelID { a.u64BigEndian(n(FRA_TUN_ID), t) }
        if let s = r.source { a.add(n(FRA_SRC), s.address.bytes) }
        if let d = r.destination { a.add(n(FRA_DST), d.address.bytes) }
        if let p = r.ipProtocol { a.u8(n(FRA_IP_PROTO), p) }
        func range(_ type: Int32, _ r: ClosedRange<UInt16>) {
            var bytes: [UInt8] = []
            bytes.appendNative(r.lowerBound)
            bytes.appendNative(r.upperBound)
            a.add(type, bytes)
        }
        if let p = r.sourcePorts { range(n(FRA_SPORT_RANGE), p) }
        if let p = r.destinationPorts { range(n(FRA_DPORT_RANGE), p) }
        return a
    }

    public static func describe(_ r: Rule) -> String {
        var parts = ["rule pref \(r.priority)"]
        if let i = r.inputInterface { parts.append("iif \(i)") }
        if let t = r.tunnelID { parts.append("tun_id \(t)") }
        if let s = r.source { parts.append("from \(s)") }
        if let d = r.destination { parts.append("to \(d)") }
        if let p = r.ipProtocol { parts.append("ipproto \(p)") }
        if let p = r.sourcePorts { parts.append("sport \(p.lowerBound)-\(p.upperBound)") }
        if let p = r.destinationPorts { parts.append("dport \(p.lowerBound)-\(p.upperBound)") }
        return (parts + ["lookup \(r.table)"]).joined(separator: " ")
    }

    public static func add(_ r: Rule) -> NetlinkRequest {
        NetlinkRequest(type: Int32(RTM_NEWRULE), flags: NLM_F_CREATE | NLM_F_EXCL, header: header(r), attributes: attributes(r), what: "add \(describe(r))")
    }

    public static func delete(_ r: Rule) -> NetlinkRequest {
        NetlinkRequest(type: Int32(RTM_DELRULE), flags: 0, header: header(r), attributes: attributes(r), what: "delete \(describe(r))")
    }

    static func parse(_ m: NetlinkMessage) -> Rule? {
        guard m.type == UInt16(RTM_NEWRULE), let h = readHeader(fib_rule_hdr.self, from: m.payload) else { return nil }
        let a = m.attributes(after: MemoryLayout<fib_rule_hdr>.size)
        func range(_ type: Int32) -> ClosedRange<UInt16>? {
            guard let b = a[type], b.count >= 4 else { return nil }
            let (lo, hi) = (b.readNative(UInt16.self, at: b.startIndex), b.readNative(UInt16.self, at: b.startIndex + 2))
            return lo <= hi ? lo...hi : nil
        }
        return Rule(
            family: Int32(h.family), priority: a.u32(n(FRA_PRIORITY)) ?? 0, table: a.u32(n(FRA_TABLE)) ?? UInt32(h.table),
            inputInterface: a.string(n(FRA_IIFNAME)), tunnelID: a.u64BigEndian(n(FRA_TUN_ID)),
            source: a[n(FRA_SRC)].flatMap(IPAddress.init(bytes:)).map { IPPrefix($0, length: h.src_len) },
            destination: a[n(FRA_DST)].flatMap(IPAddress.init(bytes:)).map { IPPrefix($0, length: h.dst_len) }, ipProtocol: a.u8(n(FRA_IP_PROTO)),
            sourcePorts: range(n(FRA_SPORT_RANGE)), destinationPorts: range(n(FRA_DPORT_RANGE)), protocolID: a.u8(n(FRA_PROTOCOL)) ?? 0)
    }
}

extension NetlinkSocket {
    public func rules(family: Int32 = AF_INET) throws -> [Rule] {
        var h = fib_rule_hdr()
        h.family = UInt8(family)
        return try dump(NetlinkRequest(type: Int32(RTM_GETRULE), flags: 0, header: headerBytes(h), what: "dump rules")).compactMap(RuleRequests.parse)
    }
}
