import BGPWire

public enum VPNType: String, Sendable, Hashable { case ipvpn, evpn }

/// Where traffic flows for an endpoint (reference §8.1).
public enum Direction: String, Sendable, Hashable { case both, toPort = "to-port", fromPort = "from-port" }

/// The `local_port` object (reference §1.4). A string is `{"linuxif": s}`. The drivers read the
/// typed fields; `raw` is only the port's identity (a MAC is bound to one port, compared whole).
public struct LocalPort: Sendable, Hashable {
    public var linuxif: String?
    /// `evpn.id`: an IP VPN attach that links this E-VPN instance into the VRF (reference §8.6).
    public var eviID: String?
    /// `ovs`: how the port is on an Open vSwitch bridge (the `ovs` drivers).
    public var ovs: OVSPort?
    /// `vlan`: the network's local VLAN on the bridge (the E-VPN `ovs` driver), when an integer.
    public var vlan: Int?
    /// The whole object as sent.
    public var raw: JSONValue

    /// `local_port.ovs`: a port the agent already `plugged` into the bridge, found by `port_number`
    /// or `port_name` (else the driver adds `port_name`, or `linuxif`), and its VLAN.
    public struct OVSPort: Sendable, Hashable {
        public var plugged: Bool
        public var portNumber: Int?
        public var portName: String?
        public var vlan: Int?

        public init(plugged: Bool, portNumber: Int?, portName: String?, vlan: Int?) {
            (self.plugged, self.portNumber, self.portName, self.vlan) = (plugged, portNumber, portName, vlan)
        }
    }

    public init(linuxif: String?, eviID: String? = nil, raw: JSONValue) {
        self.linuxif = linuxif
        self.eviID = eviID
        self.raw = raw
        // Numbers may come as strings (the agent sends what ovs-vsctl printed).
        func integer(_ v: JSONValue?) -> Int? {
            switch v {
            case .int(let i)?: Int(exactly: i)
            case .string(let s)?: Int(s)
            default: nil
            }
        }
        if case .int(let v)? = raw["vlan"] { vlan = Int(exactly: v) }
        if let o = raw["ovs"], case .object = o {
            ovs = OVSPort(plugged: o["plugged"] == .bool(true), portNumber: integer(o["port_number"]), portName: o["port_name"]?.stringValue, vlan: integer(o["vlan"]))
        }
    }
}

/// An IP VPN attach's `fallback`: what matches no prefix of the VRF goes out of this Open vSwitch
/// port to this MAC (the agent's router), from that one. Only the IP VPN `ovs` driver acts on it.
public struct Fallback: Sendable, Hashable {
    public var sourceMAC: MACAddress
    public var destinationMAC: MACAddress
    public var ovsPortNumber: Int

    public init(sourceMAC: MACAddress, destinationMAC: MACAddress, ovsPortNumber: Int) {
        (self.sourceMAC, self.destinationMAC, self.ovsPortNumber) = (sourceMAC, destinationMAC, ovsPortNumber)
    }
}

/// A local endpoint as the dataplane sees it.
public struct Endpoint: Sendable, Hashable {
    public var mac: MACAddress
    /// The address without its length (the original passes "ip-without-mask"); IPv4 or IPv6.
    public var ip: IPAddress?
    public var port: LocalPort
    public var label: UInt32
    public var direction: Direction

    public init(mac: MACAddress, ip: IPAddress?, port: LocalPort, label: UInt32, direction: Direction) {
        self.mac = mac
        self.ip = ip
        self.port = port
        self.label = label
        self.direction = direction
    }
}

/// A remote destination learned from a best route: a prefix (IP VPN) or a MAC (E-VPN).
public struct RemoteEndpoint: Sendable, Hashable {
    public enum Destination: Sendable, Hashable, CustomStringConvertible {
        case prefix(IPPrefix)
        case mac(MACAddress, ip: IPAddress?)

        public var description: String {
            switch self {
            case .prefix(let p): "\(p)"
            case .mac(let m, let ip): ip.map { "\(m) \($0)" } ?? "\(m)"
            }
        }
    }

    public var destination: Destination
    public var remotePE: IPv4Address
    /// A VNI (raw 24 bits) with VXLAN, else an MPLS label.
    public var label: UInt32
    public var encapsulations: [TunnelType]
    /// Consistent-hash sort order (load-balancing position), 0 when absent.
    public var loadBalancingOrder: UInt32

    public init(destination: Destination, remotePE: IPv4Address, label: UInt32, encapsulations: [TunnelType], loadBalancingOrder: UInt32) {
        self.destination = destination
        self.remotePE = remotePE
        self.label = label
        self.encapsulations = encapsulations
        self.loadBalancingOrder = loadBalancingOrder
    }
}

/// A remote VTEP of an E-VPN instance's flood list (from a type-3 route's PMSI tunnel).
public struct FloodEndpoint: Sendable, Hashable {
    public var remotePE: IPv4Address
    public var vni: UInt32
    public var encapsulations: [TunnelType]

    public init(remotePE: IPv4Address, vni: UInt32, encapsulations: [TunnelType]) {
        self.remotePE = remotePE
        self.vni = vni
        self.encapsulations = encapsulations
    }
}

/// What an attach may ask of the dataplane when it creates an instance.
public struct InstanceOptions: Sendable, Hashable {
    /// The `vni` the instance was created with, when forced.
    public var vni: UInt32?
    /// `linuxbr`: an existing Linux bridge for an E-VPN instance.
    public var linuxbr: String?
    /// A VRF's gateway address and subnet length (from its first attach).
    public var gateway: IPv4Address?
    public var prefixLength: UInt8?

    public init(vni: UInt32? = nil, linuxbr: String? = nil, gateway: IPv4Address? = nil, prefixLength: UInt8? = nil) {
        self.vni = vni
        self.linuxbr = linuxbr
        self.gateway = gateway
        self.prefixLength = prefixLength
    }
}

/// The veth pair that links an E-VPN instance into a VRF (reference §8.6): the E-VPN side joins the
/// EVI's bridge as its gateway port, the VRF side is plugged into the VRF like a VM port.
public struct GatewayLink: Sendable, Hashable {
    public var eviSide: String
    public var vrfSide: String

    /// `evpn<E>-ipvpn<V>` and `ipvpn<V>-evpn<E>`, as the original names them, while that fits the
    /// 15 characters of an interface name; beyond (the original then failed, quirk Q18) a fixed-width
    /// base-36 form: `e` or `v` and both ids in 7 characters each.
    public init(evi: UInt32, vrf: UInt32) {
        let (e, v) = ("evpn\(evi)-ipvpn\(vrf)", "ipvpn\(vrf)-evpn\(evi)")
        if e.utf8.count <= 15 {
            (eviSide, vrfSide) = (e, v)
        } else {
            func base36(_ n: UInt32) -> String {
                let s = String(n, radix: 36)
                return String(repeating: "0", count: 7 - s.count) + s
            }
            (eviSide, vrfSide) = ("e" + base36(evi) + base36(vrf), "v" + base36(vrf) + base36(evi))
        }
    }
}

