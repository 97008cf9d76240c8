import BGPWire

/// `[API]`: where the REST API and looking glass listen.
public struct APIOptions: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8082
    /// `attachments_file` (new): keep the attachments in this file, and plug them again at start-up.
    public var attachmentsFile: String?

    static let known: Set<String> = ["host", "port", "api_host", "api_port", "attachments_file"]

    public init(_ file: INIFile, warnings: inout [String]) throws {
        let reader = SectionReader(file: file, section: "API")
        reader.warnUnknown(Self.known, &warnings)
        host = reader.string("host", deprecated: "api_host", &warnings) ?? host
        port = try reader.port("port", deprecated: "api_port", &warnings) ?? port
        attachmentsFile = reader.string("attachments_file").flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// `[COMMON]`: how root commands are run (kept for the drivers that run commands).
public struct CommonOptions: Sendable, Equatable {
    public var rootHelper = "sudo"
    public var rootHelperDaemon: String?

    init(_ file: INIFile, warnings: inout [String]) {
        let reader = SectionReader(file: file, section: "COMMON")
        reader.warnUnknown(["root_helper", "root_helper_daemon"], &warnings)
        rootHelper = reader.string("root_helper") ?? rootHelper
        rootHelperDaemon = reader.string("root_helper_daemon")
    }
}

/// `[DATAPLANE_DRIVER_IPVPN]` and `[DATAPLANE_DRIVER_EVPN]`: which driver, its tunnel address, and
/// its own options (checked by the driver).
public struct DataplaneDriverOptions: Sendable, Equatable {
    public enum VPNType: String, Sendable { case ipvpn, evpn }

    public var vpnType: VPNType
    /// Canonical driver name: dummy, linux or ovs.
    public var driver = "dummy"
    /// `dataplane_local_address` (an IPv4 address or an interface); nil: `[BGP] local_address`.
    public var localAddress: IPv4Address?
    /// Every other option of the section, for the driver.
    public var driverOptions: [String: String] = [:]

    /// Driver names and the original's legacy aliases (reference §3.4).
    static let names: [VPNType: [String: String]] = [
        .ipvpn: [
            "dummy": "dummy", "linux": "linux", "ovs": "ovs", "DummyDataplaneDriver": "dummy",
            "mpls_linux_dataplane.MPLSLinuxDataplaneDriver": "linux", "mpls_ovs_dataplane.MPLSOVSDataplaneDriver": "ovs",
            "bagpipe.bgp.vpn.ipvpn.DummyDataplaneDriver": "dummy",
            "bagpipe.bgp.vpn.ipvpn.mpls_linux_dataplane.MPLSLinuxDataplaneDriver": "linux",
            "bagpipe.bgp.vpn.ipvpn.mpls_ovs_dataplane.MPLSOVSDataplaneDriver": "ovs",
        ],
        // `linux` for E-VPN is ours (kernel bridge and VXLAN over netlink); upstream removed its own in 2025.
        .evpn: ["dummy": "dummy", "ovs": "ovs", "linux": "linux", "DummyDataplaneDriver": "dummy", "bagpipe.bgp.vpn.evpn.DummyDataplaneDriver": "dummy"],
    ]

    init(_ file: INIFile, type: VPNType, warnings: inout [String]) throws {
        vpnType = type
        let reader = SectionReader(file: file, section: "DATAPLANE_DRIVER_\(type.rawValue.uppercased())")
        if let name = reader.string("dataplane_driver") {
            guard let canonical = Self.names[type]?[name] else {
                throw reader.error("dataplane_driver", "unknown \(type.rawValue) driver '\(name)' (known: \(Set(Self.names[type]?.values.map { $0 } ?? []).sorted().joined(separator: ", ")))")
            }
            driver = canonical
        }
        localAddress = try reader.addressOrInterface("dataplane_local_address")
        for (key, entry) in file.sections[reader.section] ?? [:] where key != "dataplane_driver" && key != "dataplane_local_address" {
            driverOptions[key] = entry.value
        }
    }
}

/// All of bgp.conf.
public struct BagpipeConfiguration: Sendable, Equatable {
    public var bgp: BGPOptions
    public var api: APIOptions
    public var common: CommonOptions
    public var ipvpn: DataplaneDriverOptions
    public var evpn: DataplaneDriverOptions

    public static let knownSections: Set<String> = ["DEFAULT", "BGP", "API", "COMMON", "DATAPLANE_DRIVER_IPVPN", "DATAPLANE_DRIVER_EVPN"]

    /// Reads every section; an invalid value throws an error naming it, and `warnings` gets unknown
    /// options and sections (a legacy `[DATAPLANE_DRIVER]` included).
    public init(_ file: INIFile, warnings: inout [String]) throws {
        for section in file.sections.keys.sorted() where !Self.knownSections.contains(section) {
            warnings.append(
                section == "DATAPLANE_DRIVER"
                    ? "[DATAPLANE_DRIVER] is no longer read: use [DATAPLANE_DRIVER_IPVPN] and [DATAPLANE_DRIVER_EVPN]"
                    : "unknown section [\(section)] ignored")
        }
        bgp = try BGPOptions(file, warnings: &warnings)
        api = try APIOptions(file, warnings: &warnings)
        common = CommonOptions(file, warnings: &warnings)
        ipvpn = try DataplaneDriverOptions(file, type: .ipvpn, warnings: &warnings)
        evpn = try DataplaneDriverOptions(file, type: .evpn, warnings: &warnings)
    }

    /// `/looking-glass/config`: every section with its values (defaults included), passwords hidden.
    public var lookingGlass: JSONValue {
        func list(_ a: [IPv4Address]) -> JSONValue { .string(a.map(\.description).joined(separator: ", ")) }
        let b = bgp
        var bgpFields: [(String, JSONValue)] = [
            ("local_address", .string("\(b.localAddress)")), ("peers", list(b.peers)), ("my_as", JSONValue(b.myAS)), ("enable_rtc", .bool(b.enableRTC)),
            ("bgp_port", JSONValue(b.bgpPort)), ("route_reflector", .bool(b.routeReflector)), ("cluster_id", .string("\(b.clusterID)")),
            ("non_client_peers", list(b.nonClientPeers)), ("passive", .bool(b.passive)), ("listen_address", b.listenAddress.map { .string("\($0)") } ?? .null),
            ("listen_port", JSONValue(b.listenPort)), ("hold_time", JSONValue(b.holdTime)), ("enable_ipv6_vpn", .bool(b.enableIPv6VPN)),
            ("graceful_restart_time", b.gracefulRestartTime.map { JSONValue($0) } ?? .null), ("graceful_restart_notification", .bool(b.gracefulRestartNotification)),
        ]
        bgpFields.append(("md5_password", b.md5Password == nil ? .null : "****"))
        func driver(_ d: DataplaneDriverOptions) -> JSONValue {
            .object(
                [("dataplane_driver", .string(d.driver)), ("dataplane_local_address", .string("\(d.localAddress ?? b.localAddress)"))]
                    + d.driverOptions.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
        }
        return .object([
            ("COMMON", .object([("root_helper", .string(common.rootHelper)), ("root_helper_daemon", common.rootHelperDaemon.map { .string($0) } ?? .null)])),
            ("API", .object([("host", .string(api.host)), ("port", JSONValue(api.port)), ("attachments_file", api.attachmentsFile.map { .string($0) } ?? .null)])),
            ("BGP", .object(bgpFields)),
            ("DATAPLANE_DRIVER_IPVPN", driver(ipvpn)), ("DATAPLANE_DRIVER_EVPN", driver(evpn)),
        ])
    }

    /// `--config-file` (repeatable, later files win) then `--config-dir` (its *.conf in name order).
    public static func load(files: [String], directory: String?, warnings: inout [String]) throws -> BagpipeConfiguration {
        var paths = files
        if let directory {
            guard let names = try? ConfigFiles.contentsOfDirectory(directory) else { throw ConfigurationError("cannot read the configuration folder \(directory)") }
            paths += names.filter { $0.hasSuffix(".conf") }.sorted().map { directory + "/" + $0 }
        }
        return try BagpipeConfiguration(try INIFile(files: paths), warnings: &warnings)
    }
}

/// A boolean as oslo.config reads one (`True`, `yes`, `on`, `1` …, in any case); nil otherwise.
/// Also for the options a section hands to its dataplane driver.
public func parseBoolean(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "true", "yes", "on", "1": true
    case "false", "no", "off", "0": false
    default: nil
    }
}

/// Typed reads of one section, with errors that name the option, its file and line.
struct SectionReader {
    let file: INIFile
    let section: String

    func entry(_ key: String) -> INIFile.Entry? { file.value(section, key) }

    func error(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError("[\(section)] \(key)\(entry(key).map { " (\($0.origin))" } ?? ""): \(message)")
    }

    func warnUnknown(_ known: Set<String>, _ warnings: inout [String]) {
        for (key, entry) in file.sections[section] ?? [:] where !known.contains(key) {
            warnings.append("\(entry.origin): unknown option [\(section)] \(key) ignored")
        }
    }

    func string(_ key: String) -> String? { entry(key)?.value }

    /// The option, or its deprecated alias (with a warning).
    func string(_ key: String, deprecated alias: String, _ warnings: inout [String]) -> String? {
        if let v = string(key) { return v }
        guard let v = string(alias) else { return nil }
        warnings.append("[\(section)] \(alias) is deprecated: use \(key)")
        return v
    }

    func port(_ key: String, deprecated alias: String, _ warnings: inout [String]) throws -> Int? {
        if string(key) == nil, string(alias) != nil {
            warnings.append("[\(section)] \(alias) is deprecated: use \(key)")
            return try port(alias)
        }
        return try port(key)
    }

    func port(_ key: String) throws -> Int? {
        guard let text = string(key) else { return nil }
        guard let p = Int(text), (0...65535).contains(p) else { throw error(key, "'\(text)' is not a port (0-65535)") }
        return p
    }

    func bool(_ key: String, _ fallback: Bool) throws -> Bool {
        guard let text = string(key) else { return fallback }
        guard let b = parseBoolean(text) else { throw error(key, "'\(text)' is not a boolean (true or false)") }
        return b
    }

    func ipv4(_ key: String) throws -> IPv4Address? {
        guard let text = string(key) else { return nil }
        guard let a = IPv4Address(text) else { throw error(key, "'\(text)' is not an IPv4 address") }
        return a
    }

    /// A comma-separated (or multi-line) list of IPv4 addresses.
    func ipv4List(_ key: String) throws -> [IPv4Address] {
        guard let text = string(key) else { return [] }
        return try text.split(whereSeparator: { $0 == "," || $0 == "\n" }).map { $0.trimmingWhitespace }.filter { !$0.isEmpty }.map { item in
            guard let a = IPv4Address(item) else { throw error(key, "'\(item)' is not an IPv4 address") }
            return a
        }
    }

    /// An IPv4 address or an interface name (its first IPv4 address).
    func addressOrInterface(_ key: String) throws -> IPv4Address? {
        guard let text = string(key), !text.isEmpty else { return nil }
        guard let a = IPv4Address(text) ?? BGPOptions.interfaceAddress(text) else {
            throw error(key, "'\(text)' is neither an IPv4 address nor an interface with an IPv4 address")
        }
        return a
    }
}
