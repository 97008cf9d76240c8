import BGPWire
import CNetlink

#if canImport(Glibc)
import Glibc
#endif

/// An entry of a VXLAN device's or a bridge's forwarding database (AF_BRIDGE neighbours).
public struct FDBEntry: Sendable, Hashable {
    public var device: Int32
    public var mac: MACAddress
    /// The remote VTEP (VXLAN devices' own entries).
    public var destination: IPv4Address?
    public var vni: UInt32?
    /// NTF_SELF: the device's own table (a VXLAN device's remote entries); NTF_MASTER: the bridge's.
    public var isSelf: Bool
    public var isMaster: Bool
    public var isPermanent: Bool
    /// NUD_NOARP: configured (`static`), not learnt from traffic.
    public var isStatic: Bool = false
}

/// An IP neighbour (ARP or ND entry).
public struct Neighbour: Sendable, Hashable {
    public var device: Int32
    public var ip: IPAddress
    public var mac: MACAddress?
    public var state: UInt16
}

public enum NeighbourRequests {
    static func ndmsg(family: Int32, device: Int32, state: Int32, flags: Int32) -> [UInt8] {
        var h = CNetlink.ndmsg()
        h.ndm_family = UInt8(family)
        h.ndm_ifindex = device
        h.ndm_state = UInt16(state)
        h.ndm_flags = UInt8(flags)
        return headerBytes(h)
    }

    /// `bridge fdb replace|append <mac> dev <device> [dst <ip>] [vni <n>] self permanent` for a
    /// device's own table, `… master static` for the bridge's (a `permanent` bridge entry would mean
    /// a local address of the bridge, which it does not forward). Appending is for the all-zeros MAC
    /// of a VXLAN device: one entry per flood destination.
    public static func fdb(_ mac: MACAddress, device: Int32, deviceName: String, destination: IPv4Address? = nil, vni: UInt32? = nil, master: Bool, append: Bool = false) -> NetlinkRequest {
        var a = AttributeWriter()
        a.add(Int32(NDA_LLADDR), mac.bytes)
        if let destination { a.add(Int32(NDA_DST), destination.bytes) }
        if let vni { a.u32(Int32(NDA_VNI), vni) }
        let what = "fdb \(append ? "append" : "replace") \(mac) dev \(deviceName)" + (destination.map { " dst \($0)" } ?? "") + (vni.map { " vni \($0)" } ?? "") + (master ? " master" : " self")
        return NetlinkRequest(
            type: Int32(RTM_NEWNEIGH), flags: NLM_F_CREATE | (append ? NLM_F_APPEND : NLM_F_REPLACE),
            header: ndmsg(family: AF_BRIDGE, device: device, state: master ? NUD_NOARP : NUD_PERMANENT, flags: master ? NTF_MASTER : NTF_SELF), attributes: a, what: what)
    }

    public static func deleteFDB(_ mac: MACAddress, device: Int32, deviceName: String, destination: IPv4Address? = nil, vni: UInt32? = nil, master: Bool) -> NetlinkRequest {
        var a = AttributeWriter()
        a.add(Int32(NDA_LLADDR), mac.bytes)
        if let destination { a.add(Int32(NDA_DST), destination.bytes) }
        if let vni { a.u32(Int32(NDA_VNI), vni) }
        let what = "fdb del \(mac) dev \(deviceName)" + (destination.map { " dst \($0)" } ?? "") + (master ? " master" : " self")
        return NetlinkRequest(type: Int32(RTM_DELNEIGH), flags: 0, header: ndmsg(family: AF_BRIDGE, device: device, state: 0, flags: master ? NTF_MASTER : NTF_SELF), attributes: a, what: what)
    }

    /// `ip neigh replace <ip> lladdr <mac> dev <device> nud permanent`.
    public static func replace(_ ip: IPAddress, mac: MACAddress, device: Int32, deviceName: String) -> NetlinkRequest {
        var a = AttributeWriter()
        a.add(Int32(NDA_DST), ip.bytes)
        a.add(Int32(NDA_LLADDR), mac.bytes)
        return NetlinkRequest(
            type: Int32(RTM_NEWNEIGH), flags: NLM_F_CREATE | NLM_F_REPLACE, header: ndmsg(family: ip.family, device: device, state: NUD_PERMANENT, flags: 0), attributes: a,
            what: "neigh replace \(ip) lladdr \(mac) dev \(deviceName)")
    }

    public static func delete(_ ip: IPAddress, device: Int32, deviceName: String) -> NetlinkRequest {
        var a = AttributeWriter()
        a.add(Int32(NDA_DST), ip.bytes)
        return NetlinkRequest(type: Int32(RTM_DELNEIGH), flags: 0, header: ndmsg(family: ip.family, device: device, state: 0, flags: 0), attributes: a, what: "neigh del \(ip) dev \(deviceName)")
    }

    static func dumpRequest(family: Int32) -> NetlinkRequest {
        NetlinkRequest(type: Int32(RTM_GETNEIGH), flags: 0, header: ndmsg(family: family, device: 0, state: 0, flags: 0), what: "dump neighbours")
    }
}

extension NetlinkSocket {
    /// Every FDB entry (of one device when given).
    public func fdbEntries(device: Int32? = nil) throws -> [FDBEntry] {
        try dump(NeighbourRequests.dumpRequest(family: AF_BRIDGE)).compactMap { m -> FDBEntry? in
            guard m.type == UInt16(RTM_NEWNEIGH), let h = readHeader(ndmsg.self, from: m.payload) else { return nil }
            if let device, h.ndm_ifindex != device { return nil }
            let a = m.attributes(after: MemoryLayout<ndmsg>.size)
            guard let mac = a[Int32(NDA_LLADDR)].flatMap({ $0.count == 6 ? MACAddress(bytes: Array($0)) : nil }) else { return nil }
            var destination: IPv4Address?
            if case .v4(let d)? = a[Int32(NDA_DST)].flatMap(IPAddress.init(bytes:)) { destination = d }
            return FDBEntry(
                device: h.ndm_ifindex, mac: mac, destination: destination, vni: a.u32(Int32(NDA_VNI)), isSelf: Int32(h.ndm_flags) & NTF_SELF != 0,
                isMaster: Int32(h.ndm_flags) & NTF_MASTER != 0 || a[n(NDA_MASTER)] != nil, isPermanent: Int32(h.ndm_state) & NUD_PERMANENT != 0,
                isStatic: Int32(h.ndm_state) & NUD_NOARP != 0)
        }
    }

    /// IPv4 and IPv6 neighbours (of one device when given).
    public func neighbours(device: Int32? = nil) throws -> [Neighbour] {
        try [AF_INET, AF_INET6].flatMap { family in
            try dump(NeighbourRequests.dumpRequest(family: family)).compactMap { m -> Neighbour? in
                guard m.type == UInt16(RTM_NEWNEIGH), let h = readHeader(ndmsg.self, from: m.payload) else { return nil }
                if let device, h.ndm_ifindex != device { return nil }
                let a = m.attributes(after: MemoryLayout<ndmsg>.size)
                guard let ip = a[Int32(NDA_DST)].flatMap(IPAddress.init(bytes:)) else { return nil }
                return Neighbour(device: h.ndm_ifindex, ip: ip, mac: a[Int32(NDA_LLADDR)].flatMap { $0.count == 6 ? MACAddress(bytes: Array($0)) : nil }, state: h.ndm_state)
            }
        }
    }
}

public struct InterfaceAddress: Sendable, Hashable {
    public var device: Int32
    public var prefix: IPPrefix
}

public enum AddressRequests {
    static func ifaddr(_ prefix: IPPrefix, device: Int32) -> [UInt8] {
        var h = ifaddrmsg()
        h.ifa_family = UInt8(prefix.address.family)
        h.ifa_prefixlen = prefix.length
        h.ifa_index = UInt32(bitPattern: device)
        return headerBytes(h)
    }

    public static func add(_ prefix: IPPrefix, device: Int32, deviceName: String) -> NetlinkRequest {
        var a = AttributeWriter()
        a.add(Int32(IFA_LOCAL), prefix.address.bytes)
        a.add(Int32(IFA_ADDRESS), prefix.address.bytes)
        return NetlinkRequest(type: Int32(RTM_NEWADDR), flags: NLM_F_CREATE | NLM_F_REPLACE, header: ifaddr(prefix, device: device), attributes: a, what: "addr add \(prefix) dev \(deviceName)")
    }

    public static func delete(_ prefix: IPPrefix, device: Int32, deviceName: String) -> NetlinkRequest {
        var a = AttributeWriter()
        a.add(Int32(IFA_LOCAL), prefix.address.bytes)
        return NetlinkRequest(type: Int32(RTM_DELADDR), flags: 0, header: ifaddr(prefix, device: device), attributes: a, what: "addr del \(prefix) dev \(deviceName)")
    }
}

extension NetlinkSocket {
    public func addresses(device: Int32? = nil) throws -> [InterfaceAddress] {
        var h = ifaddrmsg()
        h.ifa_family = UInt8(AF_UNSPEC)
        return try dump(NetlinkRequest(type: Int32(RTM_GETADDR), flags: 0, header: headerBytes(h), what: "dump addresses")).compactMap { m -> InterfaceAddress? in
            guard m.type == UInt16(RTM_NEWADDR), let h = readHeader(ifaddrmsg.self, from: m.payload) else { return nil }
            if let device, Int32(bitPattern: h.ifa_index) != device { return nil }
            let a = m.attributes(after: MemoryLayout<ifaddrmsg>.size)
            guard let ip = (a[Int32(IFA_LOCAL)] ?? a[Int32(IFA_ADDRESS)]).flatMap(IPAddress.init(bytes:)) else { return nil }
            return InterfaceAddress(device: Int32(bitPattern: h.ifa_index), prefix: IPPrefix(ip, length: h.ifa_prefixlen))
        }
    }
}
