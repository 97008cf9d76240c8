import NeutronModel

/// The route targets of routers' distributed VRFs (issue 17): `<asn>:<n>` for n in `values`. Values
/// start above 2^24 - 1, so that no network's `<AS>:<VNI>` can be one, and BGPVPNs may not use them.
public struct RouterRouteTargets: Sendable, Equatable, CustomStringConvertible {
    public var asn: UInt32
    public var values: ClosedRange<UInt32>

    public static let firstValue: UInt32 = 1 << 24

    public init(asn: UInt32 = 64512, values: ClosedRange<UInt32> = firstValue...(firstValue + 65535)) {
        self.asn = asn
        self.values = values
    }

    public func format(_ value: UInt32) -> String { "\(asn):\(value)" }

    /// "64512:16777216-16842751"
    public var description: String { "\(format(values.lowerBound))-\(values.upperBound)" }

    /// Whether a route target ("64512:16777300") is in the range.
    public func contains(_ routeTarget: String) -> Bool {
        let parts = routeTarget.split(separator: ":")
        guard parts.count == 2, let asn = UInt32(parts[0]), let value = UInt32(parts[1]) else { return false }
        return asn == self.asn && values.contains(value)
    }
}

/// Every router is realized on every host that has a port on one of its networks, as an IP VPN of
/// its own route target: the agent attaches those ports to the network's VRF with that target, so
/// that traffic between the router's subnets goes from host to host over BGP VPN routes, never
/// through a central node. The host view carries the router in the shape of a router association
/// of an implicit L3 BGPVPN; a real BGPVPN router association adds its targets on top.
extension ControllerState {
    /// The lowest free route target of the range, or nil when distributed routing is off.
    mutating func allocateRouterRouteTarget(_ settings: ControllerSettings) throws -> String? {
        guard let range = settings.routerRouteTargets else { return nil }
        let used = Set(routers.values.compactMap(\.routeTarget))
        var value = range.values.lowerBound
        while used.contains(range.format(value)) {
            guard value < range.values.upperBound else {
                throw NeutronError.conflict("RouterRouteTargetsExhausted", "No route target left for a router: all of \(range) are in use")
            }
            value += 1
        }
        return range.format(value)
    }

    /// BGPVPNs may not use the routers' route targets: a BGPVPN importing one would join a router's
    /// subnets without a router association.
    func checkRouterRouteTargets(_ b: BGPVPN, _ settings: ControllerSettings) throws {
        guard let range = settings.routerRouteTargets else { return }
        for (name, list) in b.targetLists {
            if let rt = list.first(where: range.contains) {
                throw NeutronError.invalidInput(name, "\(rt) is in the range reserved for routers' distributed routing (\(range))")
            }
        }
    }

    /// Whether host views show the router: it has a route target and is administratively up.
    func hasDistributedVRF(_ id: String) -> Bool { routers[id].map { $0.adminStateUp && $0.routeTarget != nil } ?? false }

    /// A router as host views show it: a router association of the implicit BGPVPN `router-<id>`
    /// with the router's route target, and the networks its interfaces connect. Nil when it has no
    /// distributed VRF.
    func routerView(_ id: String) -> JSONObject? {
        guard hasDistributedVRF(id), let rt = routers[id]?.routeTarget else { return nil }
        let bgpvpn = JSONObject([
            ("id", .string("router-\(id)")), ("type", .string(BGPVPNType.l3.rawValue)), ("route_targets", .strings([rt])),
            ("import_targets", .strings([])), ("export_targets", .strings([])),
        ])
        return JSONObject([("id", .string(id)), ("router_id", .string(id)), ("bgpvpn", .object(bgpvpn)), ("connected_networks", connectedNetworks(id))])
    }
}
