import BGPWire
import Glibc

/// The `[BGP]` section of bgp.conf: the original's options with their defaults, and the new ones
/// (all opt-in: an existing file behaves as before, in particular with no listener).
public struct BGPOptions: Sendable, Equatable {
    /// `local_address`: an IPv4 address or an interface name (its first IPv4 address). Source of the
    /// sessions, router id, next hop of our RT-Constraint routes.
    public var localAddress: IPv4Address
    /// `peers`: one session per address.
    public var peers: [IPv4Address] = []
    /// `my_as`: local and peer AS (iBGP).
    public var myAS: UInt32
    /// `enable_rtc`: RFC 4684 RT-Constraint.
    public var enableRTC = true
    /// `bgp_port`: the peers' TCP port.
    public var bgpPort = 179

    // New options.
    /// `route_reflector`: reflect routes between peers (RFC 4456).
    public var routeReflector = false
    /// `cluster_id`: defaults to `local_address`.
    public var clusterID: IPv4Address
    /// `non_client_peers`: peers that are not reflector clients (other reflectors).
    public var nonClientPeers: [IPv4Address] = []
    /// `passive`: wait for peers to connect instead of connecting (default: true for a reflector).
    public var passive = false
    /// `listen_address` / `listen_port`: where to accept sessions. There is a listener only when
    /// `listen_address` is set, or peers are passive (then on `local_address`).
    public var listenAddress: IPv4Address?
    public var listenPort = 179
    /// `hold_time`: proposed hold time, seconds (0, or 3 and more). The original used 180.
    public var holdTime: UInt16 = 180
    /// `enable_ipv6_vpn`: negotiate VPNv6 (RFC 4659) and accept IPv6 addresses on IP VPN ports.
    public var enableIPv6VPN = false
    /// `md5_password`: RFC 2385 TCP MD5 signature on every session (at most 80 characters).
    public var md5Password: String?
    /// `graceful_restart_time`: RFC 4724 restart time advertised, seconds (1-4095); unset: no
    /// graceful restart. Peers then keep our routes while we restart, and we keep theirs.
    public var gracefulRestartTime: UInt16?
    /// `graceful_restart_notification`: RFC 8538 (the N bit) with graceful restart. With peers that
    /// set it too, a session reset by an error NOTIFICATION keeps the routes (stale) as a lost
    /// connection does, a stop for a restart says so with a Cease, and a real stop with Hard Reset.
    public var gracefulRestartNotification = true

    public static let knownOptions: Set<String> = [
        "local_address", "peers", "my_as", "enable_rtc", "bgp_port", "route_reflector", "cluster_id", "non_client_peers", "passive", "listen_address",
        "listen_port", "hold_time", "enable_ipv6_vpn", "md5_password", "graceful_restart_time", "graceful_restart_notification",
    ]

    /// Whether a listener is started.
    public var listens: Bool { listenAddress != nil || passive }

    /// Reads the section; an invalid value throws an error naming the option. `warnings` gets one line
    /// per unknown option.
    public init(_ file: INIFile, warnings: inout [String]) throws {
        let r = SectionReader(file: file, section: "BGP")
        r.warnUnknown(Self.knownOptions, &warnings)
        guard let address = try r.addressOrInterface("local_address") else {
            throw r.error("local_address", "required (an IPv4 address or an interface name)")
        }
        localAddress = address
        guard let asText = r.string("my_as") else { throw r.error("my_as", "required") }
        guard let asn = UInt32(asText), asn >= 1 else { throw r.error("my_as", "'\(asText)' is not an AS number (1-4294967295)") }
        myAS = asn
        peers = try r.ipv4List("peers")
        enableRTC = try r.bool("enable_rtc", true)
        bgpPort = try r.port("bgp_port") ?? 179
        routeReflector = try r.bool("route_reflector", false)
        clusterID = try r.ipv4("cluster_id") ?? address
        nonClientPeers = try r.ipv4List("non_client_peers")
        if let stray = nonClientPeers.first(where: { !peers.contains($0) }) { throw r.error("non_client_peers", "\(stray) is not in [BGP] peers") }
        passive = try r.bool("passive", routeReflector)
        listenAddress = try r.ipv4("listen_address")
        listenPort = try r.port("listen_port") ?? bgpPort
        if let text = r.string("hold_time") {
            guard let h = UInt16(text), h == 0 || h >= 3 else { throw r.error("hold_time", "'\(text)' is not 0 or 3-65535 seconds") }
            holdTime = h
        }
        enableIPv6VPN = try r.bool("enable_ipv6_vpn", false)
        if let password = r.string("md5_password") {
            guard !password.isEmpty, password.utf8.count <= 80 else { throw r.error("md5_password", "must be 1 to 80 characters") }
            md5Password = password
        }
        if let text = r.string("graceful_restart_time") {
            guard let t = UInt16(text), (1...4095).contains(t) else { throw r.error("graceful_restart_time", "'\(text)' is not 1-4095 seconds") }
            gracefulRestartTime = t
        }
        gracefulRestartNotification = try r.bool("graceful_restart_notification", true)
    }

    /// The first IPv4 address of an interface.
    static func interfaceAddress(_ name: String) -> IPv4Address? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == UInt16(AF_INET), String(cString: entry.pointee.ifa_name) == name else { continue }
            let value = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            return IPv4Address(value)
        }
        return nil
    }
}
