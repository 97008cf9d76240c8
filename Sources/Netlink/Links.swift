import BGPWire
import CNetlink

#if canImport(Glibc)
import Glibc
#endif

/// A network device as a dump shows it.
public struct Link: Sendable, Hashable {
    public var index: Int32
    public var name: String
    /// `bridge`, `vxlan`, `veth` … (nil for devices without IFLA_LINKINFO, such as `lo`).
    public var kind: String?
    public var master: Int32?
    public var isUp: Bool
    public var mtu: UInt32
    public var address: MACAddress?
    /// IFLA_IFALIAS: how we tag the devices we own.
    public var alias: String?
    /// VXLAN devices: the VNI (nil in external mode), the UDP port, metadata mode.
    public var vxlanID: UInt32?
    public var vxlanPort: UInt16?
    public var vxlanExternal: Bool
    /// IFLA_LINK: a veth's peer (when in this namespace), a VLAN's parent.
    public var linkIndex: Int32? = nil
}

/// What a new VXLAN device is.
public struct VXLANOptions: Sendable {
    /// nil: external (collect-metadata) mode, the VNI set per route or per FDB entry.
    public var vni: UInt32?
    public var local: IPv4Address
    public var port: UInt16
    public var learning = false
    /// Answer ARP requests from the neighbour table (the E-VPN ARP proxy).
    public var proxy = false

    public init(vni: UInt32?, local: IPv4Address, port: UInt16, learning: Bool = false, proxy: Bool = false) {
        self.vni = vni
        self.local = local
        self.port = port
        self.learning = learning
        self.proxy = proxy
    }
}

/// Requests and dumps for links (RTM_*LINK).
public enum LinkRequests {
    static func ifinfo(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        var h = ifinfomsg()
        h.ifi_family = UInt8(AF_UNSPEC)
        h.ifi_index = index
        h.ifi_flags = flags
        h.ifi_change = change
        return headerBytes(h)
    }

    /// A bridge without STP and with no forwarding delay (ports forward at once), up.
    public static func createBridge(_ name: String, alias: String?) -> [NetlinkRequest] {
        var a = AttributeWriter()
        a.string(n(IFLA_IFNAME), name)
        a.nested(n(IFLA_LINKINFO)) { info in
            info.string(n(IFLA_INFO_KIND), "bridge")
            info.nested(n(IFLA_INFO_DATA)) { data in
                data.u32(Int32(IFLA_BR_STP_STATE), 0)
                data.u32(Int32(IFLA_BR_FORWARD_DELAY), 0)
            }
        }
        return [NetlinkRequest(type: Int32(RTM_NEWLINK), flags: NLM_F_CREATE | NLM_F_EXCL, header: ifinfo(flags: UInt32(n(IFF_UP)), change: UInt32(n(IFF_UP))), attributes: a, what: "create bridge \(name)")]
            + (alias.map { [setAlias(name, $0)] } ?? [])
    }

    public static func createVXLAN(_ name: String, _ o: VXLANOptions, alias: String?, mtu: UInt32? = nil) -> [NetlinkRequest] {
        var a = AttributeWriter()
        a.string(n(IFLA_IFNAME), name)
        if let mtu { a.u32(n(IFLA_MTU), mtu) }
        a.nested(n(IFLA_LINKINFO)) { info in
            info.string(n(IFLA_INFO_KIND), "vxlan")
            info.nested(n(IFLA_INFO_DATA)) { data in
                if let vni = o.vni { data.u32(Int32(IFLA_VXLAN_ID), vni) } else { data.u8(Int32(IFLA_VXLAN_COLLECT_METADATA), 1) }
                data.add(Int32(IFLA_VXLAN_LOCAL), o.local.bytes)
                data.u16BigEndian(Int32(IFLA_VXLAN_PORT), o.port)
                data.u8(Int32(IFLA_VXLAN_LEARNING), o.learning ? 1 : 0)
                data.u8(Int32(IFLA_VXLAN_PROXY), o.proxy ? 1 : 0)
            }
        }
        let what = o.vni.map { "create vxlan \(name) (VNI \($0), port \(o.port))" } ?? "create vxlan \(name) (external, port \(o.port))"
        return [NetlinkRequest(type: Int32(RTM_NEWLINK), flags: NLM_F_CREATE | NLM_F_EXCL, header: ifinfo(flags: UInt32(n(IFF_UP)), change: UInt32(n(IFF_UP))), attributes: a, what: what)]
            + (alias.map { [setAlias(name, $0)] } ?? [])
    }

    /// A veth pair; `peerNamespace` is a file descriptor of the network namespace of the peer end.
    /// The peer end is tagged too when it stays in this namespace.
    public static func createVeth(_ name: String, peer: String, peerNamespace: Int32? = nil, alias: String?, mtu: UInt32? = nil) -> [NetlinkRequest] {
        var a = AttributeWriter()
        a.string(n(IFLA_IFNAME), name)
        if let mtu { a.u32(n(IFLA_MTU), mtu) }
        a.nested(n(IFLA_LINKINFO)) { info in
            info.string(n(IFLA_INFO_KIND), "veth")
            info.nested(n(IFLA_INFO_DATA)) { data in
                // VETH_INFO_PEER holds an ifinfomsg, then the peer's attributes.
                var peerAttributes = AttributeWriter()
                peerAttributes.string(n(IFLA_IFNAME), peer)
                if let mtu { peerAttributes.u32(n(IFLA_MTU), mtu) }
                if let ns = peerNamespace { peerAttributes.u32(n(IFLA_NET_NS_FD), UInt32(bitPattern: ns)) }
                data.add(Int32(VETH_INFO_PEER), ifinfo() + peerAttributes.bytes)
            }
        }
        return [NetlinkRequest(type: Int32(RTM_NEWLINK), flags: NLM_F_CREATE | NLM_F_EXCL, header: ifinfo(), attributes: a, what: "create veth \(name) (peer \(peer))")]
            + (alias.map { [setAlias(name, $0)] + (peerNamespace == nil ? [setAlias(peer, $0)] : []) } ?? [])
    }

    /// Changes a device: up or down, its master (0: none), MTU, MAC address.
    public static func set(_ index: Int32, name: String, up: Bool? = nil, master: Int32? = nil, mtu: UInt32? = nil, address: MACAddress? = nil) -> NetlinkRequest {
        var a = AttributeWriter()
        if let master { a.u32(n(IFLA_MASTER), UInt32(bitPattern: master)) }
        if let mtu { a.u32(n(IFLA_MTU), mtu) }
        if let address { a.add(n(IFLA_ADDRESS), address.bytes) }
        let upFlag = UInt32(n(IFF_UP))
        var parts: [String] = []
        if let up { parts.append(up ? "up" : "down") }
        if let master { parts.append(master == 0 ? "nomaster" : "master \(master)") }
        if let mtu { parts.append("mtu \(mtu)") }
        if let address { parts.append("address \(address)") }
        return NetlinkRequest(
            type: Int32(RTM_NEWLINK), flags: 0, header: ifinfo(index: index, flags: up == true ? upFlag : 0, change: up == nil ? 0 : upFlag), attributes: a,
            what: "set \(name) \(parts.joined(separator: " "))")
    }

    /// A bridge port's flags (`ip link set <port> type bridge_slave neigh_suppress on learning off`):
    /// with neighbour suppression the bridge answers ARP and ND from its own neighbour table when it
    /// knows the answer, and floods the request when it does not.
    public static func setBridgePort(_ index: Int32, name: String, neighbourSuppression: Bool? = nil, learning: Bool? = nil) -> NetlinkRequest {
        var a = AttributeWriter()
        a.nested(n(IFLA_LINKINFO)) { info in
            info.string(n(IFLA_INFO_SLAVE_KIND), "bridge")
            info.nested(n(IFLA_INFO_SLAVE_DATA)) { data in
                if let s = neighbourSuppression { data.u8(n(IFLA_BRPORT_NEIGH_SUPPRESS), s ? 1 : 0) }
                if let l = learning { data.u8(n(IFLA_BRPORT_LEARNING), l ? 1 : 0) }
            }
        }
        return NetlinkRequest(type: n(RTM_NEWLINK), flags: 0, header: ifinfo(index: index), attributes: a, what: "set bridge port \(name)" + (neighbourSuppression.map { " neigh_suppress \($0 ? "on" : "off")" } ?? "") + (learning.map { " learning \($0 ? "on" : "off")" } ?? ""))
    }

    /// Tags a device by name (IFLA_IFALIAS is not taken at creation).
    public static func setAlias(_ name: String, _ alias: String) -> NetlinkRequest {
        var a = AttributeWriter()
        a.string(n(IFLA_IFNAME), name)
        a.string(n(IFLA_IFALIAS), alias)
        return NetlinkRequest(type: n(RTM_NEWLINK), flags: 0, header: ifinfo(), attributes: a, what: "set \(name) alias \(alias)")
    }

    public static func delete(_ index: Int32, name: String) -> NetlinkRequest {
        NetlinkRequest(type: Int32(RTM_DELLINK), flags: 0, header: ifinfo(index: index), what: "delete link \(name)")
    }

    public static let dumpRequest = NetlinkRequest(type: Int32(RTM_GETLINK), flags: 0, header: ifinfo(), what: "dump links")

    static func parse(_ m: NetlinkMessage) -> Link? {
        guard m.type == UInt16(RTM_NEWLINK), let h = readHeader(ifinfomsg.self, from: m.payload) else { return nil }
        let a = m.attributes(after: MemoryLayout<ifinfomsg>.size)
        let info = a.nested(n(IFLA_LINKINFO))
        let kind = info?.string(n(IFLA_INFO_KIND))
        let data = info?.nested(n(IFLA_INFO_DATA))
        var link = Link(
            index: h.ifi_index, name: a.string(n(IFLA_IFNAME)) ?? "", kind: kind, master: a.u32(n(IFLA_MASTER)).map { Int32(bitPattern: $0) },
            isUp: h.ifi_flags & UInt32(n(IFF_UP)) != 0, mtu: a.u32(n(IFLA_MTU)) ?? 0,
            address: a[n(IFLA_ADDRESS)].flatMap { $0.count == 6 ? MACAddress(bytes: Array($0)) : nil }, alias: a.string(n(IFLA_IFALIAS)),
            vxlanID: nil, vxlanPort: nil, vxlanExternal: false)
        link.linkIndex = a.u32(n(IFLA_LINK)).map { Int32(bitPattern: $0) }.flatMap { $0 > 0 && $0 != h.ifi_index ? $0 : nil }
        if kind == "vxlan", let data {
            link.vxlanExternal = (data.u8(Int32(IFLA_VXLAN_COLLECT_METADATA)) ?? 0) != 0
            link.vxlanID = link.vxlanExternal ? nil : data.u32(Int32(IFLA_VXLAN_ID))
            link.vxlanPort = data.u16BigEndian(Int32(IFLA_VXLAN_PORT))
        }
        return link
    }
}

extension NetlinkSocket {
    public func links() throws -> [Link] { try dump(LinkRequests.dumpRequest).compactMap(LinkRequests.parse) }

    public func link(named name: String) throws -> Link? { try links().first { $0.name == name } }
}

extension IPv4Address {
    /// Network order, as netlink carries addresses.
    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
}

extension IPv6Address {
    public var bytes: [UInt8] { (0..<8).map { UInt8(high >> (56 - 8 * $0) & 0xFF) } + (0..<8).map { UInt8(low >> (56 - 8 * $0) & 0xFF) } }
}

extension IPAddress {
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): a.bytes
        case .v6(let a): a.bytes
        }
    }

    public var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    /// From netlink bytes (4 or 16).
    public init?(bytes: ArraySlice<UInt8>) {
        let b = Array(bytes)
        switch b.count {
        case 4: self = .v4(IPv4Address(b[0], b[1], b[2], b[3]))
        case 16:
            let high = b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(IPv6Address(high: high, low: low))
        default: return nil
        }
    }
}

extension MACAddress {
    public var bytes: [UInt8] { (0..<6).map { UInt8(value >> (40 - 8 * $0) & 0xFF) } }
    public init(bytes: [UInt8]) { self.init(bytes.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
}
