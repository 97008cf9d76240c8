import ControllerCore
import ControllerService
import INIConfig

/// controller.conf, read and checked: a bad value stops start-up with a message naming the option.
struct ControllerConfiguration: Sendable {
    enum Database: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    var bindHost = "127.0.0.1"
    var bindPort = 9696
    /// The URL in the token catalog; by default `http://<bind_host>:<bind_port>`.
    var publicURL: String?
    var region = "RegionOne"
    var database = Database.sqlite(path: "/var/lib/bagpipe/controller.db")
    var settings = ControllerSettings()
    var users: [Identity.User] = []
    var tokenLifetime = 3600.0
    /// Seconds between two reads of the change log (other replicas' writes), besides notifications.
    var pollInterval = 1.0

    static let help = """
        controller.conf (INI, as neutron.conf):
          [DEFAULT]
          bind_host = 127.0.0.1        address to listen on (default 127.0.0.1)
          bind_port = 9696             port (default 9696, Neutron's)
          public_url = http://…        the endpoint URL handed out in tokens' catalogs
                                       (default http://<bind_host>:<bind_port>)
          region = RegionOne           the catalog's region
          [database]
          connection = sqlite:////var/lib/bagpipe/controller.db
                     | postgresql://USER:PASSWORD@HOST:PORT/DB   (several controllers on one database)
          poll_interval = 1            seconds between reads of other replicas' changes (besides
                                       PostgreSQL notifications)
          [ml2_type_vxlan]
          vni_ranges = 1000:1999       VNIs allocated to networks (comma-separated MIN:MAX ranges)
          [DEFAULT] base_mac = fa:16:3e:00:00:00   MACs of new ports keep its first three octets
          [distributed_routing]
          enabled = True               every router is realized on each host with a port on one of
                                       its networks: its subnets reach each other host to host, as
                                       an IP VPN of the router's own route target
          route_target_asn = 64512     the AS of the routers' route targets (the agents' as_number)
          route_target_range = 16777216:16842751
                                       their values, MIN:MAX above 16777215 (never a network's
                                       <AS>:<VNI>); BGPVPNs may not use them
          [identity]
          <user> = <password>, <project>, <role> [<role> …]    one line per user, in domain Default;
                                       role admin is the cloud admin, role agent a compute host's
                                       agent (the user name is the host it may read)
          [token]
          expiration = 3600            token lifetime in seconds
        """

    init(_ file: INIFile) throws {
        func value(_ section: String, _ key: String) -> INIFile.Entry? { file.value(section, key) }
        func integer(_ section: String, _ key: String, _ range: ClosedRange<Int>) throws -> Int? { try file.integer(section, key, in: range) }
        func seconds(_ section: String, _ key: String) throws -> Double? { try file.seconds(section, key) }
        if let e = value("DEFAULT", "bind_host") { bindHost = e.value }
        if let n = try integer("DEFAULT", "bind_port", 0...65535) { bindPort = n }
        if let e = value("DEFAULT", "public_url") {
            guard e.value.hasPrefix("http://") || e.value.hasPrefix("https://") else { throw ConfigurationError("\(e.origin): [DEFAULT] public_url = \(e.value): expected an http:// or https:// URL") }
            publicURL = e.value.hasSuffix("/") ? String(e.value.dropLast()) : e.value
        }
        if let e = value("DEFAULT", "region") { region = e.value }
        if let e = value("DEFAULT", "base_mac") {
            let octets = e.value.split(separator: ":")
            guard octets.count == 6, octets.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }), let first = UInt8(octets[0], radix: 16), first & 1 == 0 else {
                throw ConfigurationError("\(e.origin): [DEFAULT] base_mac = \(e.value): expected a unicast MAC such as fa:16:3e:00:00:00")
            }
            settings.baseMAC = e.value.lowercased()
        }
        if let e = value("database", "connection") {
            if e.value.hasPrefix("sqlite:///") {
                let path = String(e.value.dropFirst("sqlite:///".count))
                guard !path.isEmpty else { throw ConfigurationError("\(e.origin): [database] connection = \(e.value): no file named") }
                database = .sqlite(path: path)
            } else if e.value.hasPrefix("postgresql://") || e.value.hasPrefix("postgres://") {
                database = .postgres(url: e.value.replacingOccurrences(of: "postgresql+psycopg2://", with: "postgresql://"))
            } else {
                throw ConfigurationError("\(e.origin): [database] connection = \(e.value): expected sqlite:////<path> or postgresql://USER:PASSWORD@HOST:PORT/DB")
            }
        }
        if let s = try seconds("database", "poll_interval") { pollInterval = s }
        if let e = value("ml2_type_vxlan", "vni_ranges") {
            settings.vniRanges = try e.value.split(separator: ",").map { item in
                let bounds = item.split(separator: ":").map { Int($0.trimmingWhitespace) }
                guard bounds.count == 2, let lo = bounds[0], let hi = bounds[1], lo >= 1, hi <= 16_777_215, lo <= hi else {
                    throw ConfigurationError("\(e.origin): [ml2_type_vxlan] vni_ranges = \(e.value): expected MIN:MAX ranges with 1 ≤ MIN ≤ MAX ≤ 16777215")
                }
                return lo...hi
            }
        }
        if try file.boolean("distributed_routing", "enabled") == false { settings.routerRouteTargets = nil }
        if settings.routerRouteTargets != nil {
            var targets = RouterRouteTargets()
            if let n = try integer("distributed_routing", "route_target_asn", 1...65535) { targets.asn = UInt32(n) }
            if let e = value("distributed_routing", "route_target_range") {
                let bounds = e.value.split(separator: ":").map { UInt32($0.trimmingWhitespace) }
                guard bounds.count == 2, let lo = bounds[0], let hi = bounds[1], lo >= RouterRouteTargets.firstValue, lo <= hi else {
                    throw ConfigurationError("\(e.origin): [distributed_routing] route_target_range = \(e.value): expected MIN:MAX with \(RouterRouteTargets.firstValue) ≤ MIN ≤ MAX ≤ 4294967295 (above every VNI)")
                }
                targets.values = lo...hi
            }
            settings.routerRouteTargets = targets
        }
        if let s = try seconds("token", "expiration") { tokenLifetime = s }
        for (name, e) in (file.sections["IDENTITY"] ?? [:]).sorted(by: { $0.key < $1.key }) {
            let parts = e.value.split(separator: ",", maxSplits: 2).map { $0.trimmingWhitespace }
            guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError("\(e.origin): [identity] \(name): expected '<password>, <project>, <role> [<role> …]'")
            }
            let roles = parts[2].split(separator: " ").map(String.init)
            guard !roles.isEmpty else { throw ConfigurationError("\(e.origin): [identity] \(name): no role") }
            users.append(Identity.User(name: name, password: parts[0], project: parts[1], roles: roles))
        }
        guard !users.isEmpty else { throw ConfigurationError("[identity]: no user configured: nobody could use the API") }
    }

    var endpoint: String { publicURL ?? "http://\(bindHost.contains(":") ? "[\(bindHost)]" : bindHost):\(bindPort)" }
}
