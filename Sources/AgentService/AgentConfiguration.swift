import AgentCore
import INIConfig

/// agent.conf, read and checked: Neutron's option names where they exist; a bad value stops
/// start-up with a message naming the option.
public struct AgentConfiguration: Sendable, Equatable {
    public enum DataplaneKind: String, Sendable { case ovs, linux }

    public var host = ""
    public var controllerURL = "http://127.0.0.1:9696"
    public var username = ""
    public var password = ""
    public var project: String?
    public var dataplane = DataplaneKind.ovs
    public var extensions: Set<AgentExtension> = [.bagpipe, .bagpipeBGPVPN]
    /// Seconds between two looks at the host's interfaces (taps on Linux, br-int's ports on OVS), a
    /// safety net: netlink's link notifications and OVSDB's monitor make the agent look at once.
    public var pollingInterval = 2.0
    public var ovsdbConnection = "unix:/var/run/openvswitch/db.sock"
    public var datapathType = "system"
    public var integrationBridge = "br-int"
    public var tunnelBridge = "br-tun"
    public var bagpipeBGPAddress = "127.0.0.1"
    public var bagpipeBGPPort = 8082
    public var pingInterval = 10.0
    public var mplsBridge = "br-mpls"
    public var asNumbers: [UInt32] = [64512]
    /// Seconds between the watch's bookmarks: a stream silent for three is dead and reopened.
    public var watchHeartbeat = 5.0
    /// Seconds a REST call to bagpipe-bgp or the controller may take.
    public var requestTimeout = 10.0

    public init() {}

    public static let help = """
        agent.conf (INI, as neutron's agent files):
          [DEFAULT]
          host = compute-1                 this host's name: the binding:host_id of its ports
                                           (default: the system's host name)
          [controller]
          url = http://127.0.0.1:9696      bagpipe-controller's API
          username = compute-1             a user of the controller's [identity] with role agent
          password = secret
          project = service                the user's project (default: the user's own)
          watch_heartbeat = 5              seconds between the watch's bookmarks; a stream silent
                                           for three of them is taken as dead and reopened
          [agent]
          dataplane = ovs                  ovs, or linux (Linux bridges, netlink)
          extensions = bagpipe, bagpipe_bgpvpn
                                           bagpipe: Neutron networks as E-VPNs; bagpipe_bgpvpn:
                                           BGPVPN associations (alone, it sends what the OpenStack
                                           OVS agent's bgpvpn extension sends)
          polling_interval = 2             seconds between looks at the host's VM interfaces (a
                                           safety net: netlink's and OVSDB's notifications make the
                                           agent look at once)
          request_timeout = 10             seconds a REST call may take
          [ovs]
          ovsdb_connection = unix:/var/run/openvswitch/db.sock   or tcp:IP:PORT
          datapath_type = system           or netdev (the userspace datapath)
          integration_bridge = br-int
          tunnel_bridge = br-tun
          [BAGPIPE]
          bagpipe_bgp_ip = 127.0.0.1       bagpipe-bgp's REST API
          bagpipe_bgp_port = 8082
          ping_interval = 10               seconds between restart checks (GET /ping)
          mpls_bridge = br-mpls
          [ml2_bagpipe_extension]
          as_number = 64512                one route target <AS>:<VNI> per AS (comma-separated)
        """

    public init(_ file: INIFile, defaultHost: String) throws {
        host = file.string("DEFAULT", "host") ?? defaultHost
        guard !host.isEmpty else { throw file.invalid("DEFAULT", "host", "empty: no host name") }
        if let url = file.string("controller", "url") {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw file.invalid("controller", "url", "expected an http:// or https:// URL") }
            controllerURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        username = file.string("controller", "username") ?? host
        guard let password = file.string("controller", "password") else { throw ConfigurationError("[controller] password: missing (the agent logs in to the controller as \(username))") }
        self.password = password
        project = file.string("controller", "project")
        if let s = try file.seconds("controller", "watch_heartbeat") {
            guard s >= 0.05, s <= 3600 else { throw file.invalid("controller", "watch_heartbeat", "expected 0.05 to 3600 seconds") }
            watchHeartbeat = s
        }
        if let d = try file.choice("agent", "dataplane", ["ovs", "linux"]) { dataplane = DataplaneKind(rawValue: d) ?? .ovs }
        if let names = file.list("agent", "extensions") {
            var set = Set<AgentExtension>()
            for name in names {
                guard let e = AgentExtension(rawValue: name) else { throw file.invalid("agent", "extensions", "unknown extension \(name) (known: bagpipe, bagpipe_bgpvpn)") }
                set.insert(e)
            }
            guard !set.isEmpty else { throw file.invalid("agent", "extensions", "no extension: the agent would do nothing") }
            extensions = set
        }
        if let s = try file.seconds("agent", "polling_interval") { pollingInterval = s }
        if let s = try file.seconds("agent", "request_timeout") { requestTimeout = s }
        if let c = file.string("ovs", "ovsdb_connection") {
            guard c.hasPrefix("unix:") || c.hasPrefix("tcp:") else { throw file.invalid("ovs", "ovsdb_connection", "expected unix:<socket> or tcp:<IP>:<port>") }
            ovsdbConnection = c
        }
        if let d = try file.choice("ovs", "datapath_type", ["system", "netdev"]) { datapathType = d }
        if let b = file.string("ovs", "integration_bridge") { integrationBridge = b }
        if let b = file.string("ovs", "tunnel_bridge") { tunnelBridge = b }
        if let a = file.string("BAGPIPE", "bagpipe_bgp_ip") { bagpipeBGPAddress = a }
        if let p = try file.integer("BAGPIPE", "bagpipe_bgp_port", in: 1...65535) { bagpipeBGPPort = p }
        if let s = try file.seconds("BAGPIPE", "ping_interval") { pingInterval = s }
        if let b = file.string("BAGPIPE", "mpls_bridge") { mplsBridge = b }
        if let list = file.list("ml2_bagpipe_extension", "as_number") {
            var numbers: [UInt32] = []
            for item in list {
                guard let n = UInt32(item), n >= 1 else { throw file.invalid("ml2_bagpipe_extension", "as_number", "\(item) is not an AS number from 1 to 4294967295") }
                numbers.append(n)
            }
            guard !numbers.isEmpty else { throw file.invalid("ml2_bagpipe_extension", "as_number", "no AS number") }
            asNumbers = numbers
        }
    }

    public var bagpipeBGPURL: String { "http://\(bagpipeBGPAddress.contains(":") ? "[\(bagpipeBGPAddress)]" : bagpipeBGPAddress):\(bagpipeBGPPort)" }
}
