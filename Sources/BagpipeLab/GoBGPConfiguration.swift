/// A gobgpd TOML configuration, for the tests and benchmarks that run gobgpd (one writer for all).
public struct GoBGPConfiguration: Sendable {
    public struct Neighbor: Sendable {
        public var address: String
        public var localAddress: String
        /// Wait for the neighbor to connect.
        public var passive: Bool
        public var remotePort: Int?
        public var families: [String]
        /// Short timers (hold `holdTime`, keepalives three times as often, connect-retry 1 s);
        /// false: gobgpd's defaults.
        public var fastTimers: Bool
        public var holdTime = 9
        /// Make it a route-reflector client of this cluster.
        public var routeReflectorClusterID: String?
        public var password: String?
        public var gracefulRestart: Bool
        public var ttlSecurity: Bool

        public init(
            address: String, localAddress: String, passive: Bool, remotePort: Int? = nil, families: [String] = ["l3vpn-ipv4-unicast"], fastTimers: Bool = true,
            routeReflectorClusterID: String? = nil, password: String? = nil, gracefulRestart: Bool = false, ttlSecurity: Bool = false
        ) {
            self.address = address
            self.localAddress = localAddress
            self.passive = passive
            self.remotePort = remotePort
            self.families = families
            self.fastTimers = fastTimers
            self.routeReflectorClusterID = routeReflectorClusterID
            self.password = password
            self.gracefulRestart = gracefulRestart
            self.ttlSecurity = ttlSecurity
        }
    }

    public var asn: UInt32 = 64512
    public var routerID: String
    /// The listening port; -1: no listener.
    public var port: Int
    public var localAddress: String
    public var neighbors: [Neighbor]

    public init(routerID: String, port: Int, localAddress: String, neighbors: [Neighbor]) {
        self.routerID = routerID
        self.port = port
        self.localAddress = localAddress
        self.neighbors = neighbors
    }

    public var toml: String {
        var lines = [
            "[global.config]", "  as = \(asn)", "  router-id = \"\(routerID)\"", "  port = \(port)", "  local-address-list = [\"\(localAddress)\"]",
        ]
        for n in neighbors {
            lines += ["[[neighbors]]", "  [neighbors.config]", "    neighbor-address = \"\(n.address)\"", "    peer-as = \(asn)"]
            if let password = n.password { lines.append("    auth-password = \"\(password)\"") }
            if n.gracefulRestart { lines += ["  [neighbors.graceful-restart.config]", "    enabled = true", "    restart-time = 60"] }
            if n.ttlSecurity { lines += ["  [neighbors.ttl-security.config]", "    enabled = true", "    ttl-min = 255"] }
            lines += ["  [neighbors.transport.config]", "    passive-mode = \(n.passive)", "    local-address = \"\(n.localAddress)\""]
            if let remotePort = n.remotePort { lines.append("    remote-port = \(remotePort)") }
            if n.fastTimers { lines += ["  [neighbors.timers.config]", "    hold-time = \(n.holdTime)", "    keepalive-interval = \(max(1, n.holdTime / 3))", "    connect-retry = 1"] }
            if let cluster = n.routeReflectorClusterID {
                lines += ["  [neighbors.route-reflector.config]", "    route-reflector-client = true", "    route-reflector-cluster-id = \"\(cluster)\""]
            }
            for family in n.families {
                lines += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]", "      afi-safi-name = \"\(family)\""]
                if n.gracefulRestart { lines += ["    [neighbors.afi-safis.mp-graceful-restart.config]", "      enabled = true"] }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
