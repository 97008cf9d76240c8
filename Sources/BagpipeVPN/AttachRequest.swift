import BGPWire
import Dataplane

/// `readvertise` (reference §8.3): routes with a `from_rt` are re-advertised with `to_rt`.
public struct Readvertise: Sendable, Hashable {
    public var from: [ExtendedCommunity]
    public var to: [ExtendedCommunity]

    public init(from: [ExtendedCommunity], to: [ExtendedCommunity]) {
        self.from = from
        self.to = to
    }
}

/// `attract_traffic` (reference §8.3), when it is on: a non-empty object, with `readvertise` or
/// its own `to_rt`.
public struct AttractTraffic: Sendable, Hashable {
    public var redirectRTs: [ExtendedCommunity]
    public var classifier: TrafficClassifier
    /// The one route target traffic is attracted to: `to_rt`, else `readvertise.to_rt`.
    public var to: [ExtendedCommunity]
    /// `to_rt` was given (static destination prefixes are used only then).
    public var explicitTo: Bool
    public var staticDestinationPrefixes: [IPPrefix]

    public init(redirectRTs: [ExtendedCommunity], classifier: TrafficClassifier, to: [ExtendedCommunity], explicitTo: Bool, staticDestinationPrefixes: [IPPrefix]) {
        self.redirectRTs = redirectRTs
        self.classifier = classifier
        self.to = to
        self.explicitTo = explicitTo
        self.staticDestinationPrefixes = staticDestinationPrefixes
    }
}

/// A parsed `attach_localport` request (reference §1.3), validated; nothing is changed until a
/// request parses.
public struct AttachRequest: Sendable {
    public var vpnType: VPNType
    public var vpnInstanceID: String
    public var mac: MACAddress
    public var localPort: LocalPort
    public var importRTs: [ExtendedCommunity]
    public var exportRTs: [ExtendedCommunity]
    /// As given (the original keeps the string) and parsed; required for IP VPN.
    public var ipAddress: (text: String, prefix: IPPrefix)?
    public var gatewayIP: IPAddress?
    public var advertiseSubnet = false
    public var direction = Direction.both
    public var localPref: UInt32?
    public var lbConsistentHashOrder: UInt32 = 0
    /// 0: not forced.
    public var vni: UInt32 = 0
    public var linuxbr: String?
    public var description: JSONValue?
    public var instanceDescription: JSONValue?
    public var readvertise: Readvertise?
    public var attractTraffic: AttractTraffic?
    public var fallback: JSONValue?
    /// `fallback` for the dataplane: nil (no fallback) unless it has `src_mac`, `dst_mac` and
    /// `ovs_port_number` (a number, or a string of one).
    public var typedFallback: Fallback? {
        guard let f = fallback, let src = f["src_mac"]?.stringValue.flatMap(MACAddress.init), let dst = f["dst_mac"]?.stringValue.flatMap(MACAddress.init) else { return nil }
        let port: Int?
        switch f["ovs_port_number"] {
        case .int(let i)?: port = Int(exactly: i)
        case .string(let s)?: port = Int(s)
        default: port = nil
        }
        return port.map { Fallback(sourceMAC: src, destinationMAC: dst, ovsPortNumber: $0) }
    }
    /// The request as received (what the attachment store keeps).
    public var raw: JSONValue

    /// The identity of the endpoint and its instance's route targets; the rest as defaulted.
    public init(vpnType: VPNType, vpnInstanceID: String, mac: MACAddress, localPort: LocalPort, importRTs: [ExtendedCommunity], exportRTs: [ExtendedCommunity], raw: JSONValue) {
        (self.vpnType, self.vpnInstanceID, self.mac, self.localPort) = (vpnType, vpnInstanceID, mac, localPort)
        (self.importRTs, self.exportRTs, self.raw) = (importRTs, exportRTs, raw)
    }
}

/// A parsed `detach_localport` request (reference §1.8).
public struct DetachRequest: Sendable {
    public var vpnType: VPNType
    public var vpnInstanceID: String
    public var mac: MACAddress
    public var localPort: LocalPort
    /// Required for IP VPN; for E-VPN absent means every IP of the MAC, then the MAC-only endpoint.
    public var ipAddress: (text: String, prefix: IPPrefix)?

    public init(vpnType: VPNType, vpnInstanceID: String, mac: MACAddress, localPort: LocalPort, ipAddress: (text: String, prefix: IPPrefix)?) {
        (self.vpnType, self.vpnInstanceID, self.mac, self.localPort, self.ipAddress) = (vpnType, vpnInstanceID, mac, localPort, ipAddress)
    }
}
