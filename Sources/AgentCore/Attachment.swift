import NeutronModel

/// bagpipe-bgp's two kinds of VPN instance.
public enum VPNType: String, Sendable, Comparable, CaseIterable {
    case evpn, ipvpn
    /// E-VPN before IP VPN: an E-VPN may be stitched into an IP VPN (reference §2.4).
    public static func < (a: Self, b: Self) -> Bool { a == .evpn && b == .ipvpn }
}

/// What the agent extensions are named in `[agent] extensions` (Neutron's names).
public enum AgentExtension: String, Sendable, CaseIterable {
    /// Neutron networks as E-VPNs (the ML2 application, §1.2).
    case bagpipe
    /// BGPVPN associations (§4.4).
    case bagpipeBGPVPN = "bagpipe_bgpvpn"
}

/// How a port reaches bagpipe-bgp's dataplane on this host.
public enum PortPlug: Sendable, Equatable, Hashable {
    /// On Open vSwitch: the network's local VLAN on br-int (and br-tun).
    case ovs(vlan: Int)
    /// On Linux: the VM's tap device and the network's bridge.
    case linux(tap: String, bridge: String)
}

/// This host's Open vSwitch facts the attachments carry: br-mpls' OpenFlow port numbers of the
/// patches to br-tun (`patch-from-tun`) and to br-int (`patch-mpls-to-int`), §4.6.
public struct OVSPatchPorts: Sendable, Equatable {
    public var mplsFromTun: Int
    public var mplsToInt: Int
    public init(mplsFromTun: Int, mplsToInt: Int) {
        self.mplsFromTun = mplsFromTun
        self.mplsToInt = mplsToInt
    }
}

/// What makes two attachments the same one for bagpipe-bgp: re-sending an attachment with the same
/// identity updates it (its route targets, say); a different identity needs a detach of the old.
public struct AttachmentKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var vpnType: VPNType
    public var vpnInstanceID: String
    public var portID: String
    public var macAddress: String
    public var ipAddress: String?
    public var localPort: String
    /// An E-VPN's VNI is the instance's: a change is a new instance.
    public var vni: Int?

    public static func < (a: Self, b: Self) -> Bool {
        (a.vpnType, a.portID, a.vpnInstanceID, a.ipAddress ?? "", a.localPort, a.vni ?? -1) < (b.vpnType, b.portID, b.vpnInstanceID, b.ipAddress ?? "", b.localPort, b.vni ?? -1)
    }

    public var description: String { "\(vpnType.rawValue) \(vpnInstanceID) port \(portID) \(macAddress)" + (ipAddress.map { " \($0)" } ?? "") }
}

/// One `attach_localport` call, and the `detach_localport` that undoes it.
public struct Attachment: Sendable, Equatable {
    public var key: AttachmentKey
    public var attach: JSONObject
    public var detach: JSONObject

    public init(key: AttachmentKey, attach: JSONObject, detach: JSONObject) {
        self.key = key
        self.attach = attach
        self.detach = detach
    }
}

/// What a network with an L3 BGPVPN needs from Open vSwitch (§4.6): its gateway answered on its
/// local VLAN and sent to br-mpls; with the router's MAC when one is known.
public struct GatewayRedirect: Sendable, Equatable {
    public var gatewayIP: String
    public var routerMAC: String?
    public init(gatewayIP: String, routerMAC: String?) {
        self.gatewayIP = gatewayIP
        self.routerMAC = routerMAC
    }

    /// Per local VLAN, from the IP VPN attachments on Open vSwitch (their gateway and fallback).
    public static func plan(_ attachments: [Attachment]) -> [Int: GatewayRedirect] {
        var out: [Int: GatewayRedirect] = [:]
        for a in attachments where a.key.vpnType == .ipvpn {
            guard case .int(let vlan)? = a.attach["local_port"]?["ovs"]?["vlan"], let gateway = a.attach["gateway_ip"]?.stringValue, out[Int(vlan)] == nil else { continue }
            out[Int(vlan)] = GatewayRedirect(gatewayIP: gateway, routerMAC: a.attach["fallback"]?["dst_mac"]?.stringValue)
        }
        return out
    }
}
