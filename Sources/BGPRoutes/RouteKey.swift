import BGPWire

/// The identity of a route in its family: what a withdraw names and a replacement keeps. Labels are
/// not part of it (a withdraw carries the 0x800000 marker), nor, for EVPN, the fields RFC 7432 §7 and
/// RFC 9136 §3.2 leave out of the route key (ESI of type 2 and 5, labels, type-5 gateway).
public struct RouteKey: Hashable, Sendable {
    public var element: NLRIElement

    public init(_ element: NLRIElement) {
        var e = element
        switch e.nlri {
        case .labeledPrefix(var p):
            p.labels = MPLSLabelStack()
            e.nlri = .labeledPrefix(p)
        case .vpnPrefix(var p):
            p.labels = MPLSLabelStack()
            e.nlri = .vpnPrefix(p)
        case .evpn(.ethernetAutoDiscovery(var r)):
            r.labelField = 0
            e.nlri = .evpn(.ethernetAutoDiscovery(r))
        case .evpn(.macIPAdvertisement(var r)):
            r.esi = .zero
            r.labelField1 = 0
            r.labelField2 = nil
            e.nlri = .evpn(.macIPAdvertisement(r))
        case .evpn(.ipPrefix(var r)):
            r.esi = .zero
            r.labelField = 0
            r.gateway = r.prefix.isIPv4 ? .v4(IPv4Address(0)) : .v6(IPv6Address(high: 0, low: 0))
            e.nlri = .evpn(.ipPrefix(r))
        default: break
        }
        self.element = e
    }
}

extension RouteKey {
    /// The NLRI to put in a withdraw: labeled routes carry the 0x800000 marker (RFC 8277 §2.4).
    public var withdrawal: NLRIElement {
        var e = element
        switch e.nlri {
        case .labeledPrefix(var p) where p.labels.count == 0:
            p.labels = .withdrawCompatibility
            e.nlri = .labeledPrefix(p)
        case .vpnPrefix(var p) where p.labels.count == 0:
            p.labels = .withdrawCompatibility
            e.nlri = .vpnPrefix(p)
        default: break
        }
        return e
    }
}
