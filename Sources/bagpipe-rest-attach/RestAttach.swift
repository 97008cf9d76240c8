import ArgumentParser
import BGPWire
import BagpipeCLI
import Foundation

/// The original's `bagpipe-rest-attach` (reference §10.1): attaches or detaches a port through the
/// REST API, optionally creating a network namespace with a veth pair to stand for a VM.
@main
struct RestAttach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-rest-attach",
        abstract: "Attach or detach a local port to an E-VPN or IP VPN instance of bagpipe-bgp.",
        discussion: """
            Sends attach_localport or detach_localport to the bagpipe-bgp REST API on 127.0.0.1, at the \
            [API] port of --config-file (8082 when the file is missing, or --api-port). With --port netns \
            (or netns:<if>) it first creates a network namespace (--netns, default the instance id) and a \
            veth pair: <if> (default ns-<netns>) outside, --if2vpn (default tovpn) inside with the address, \
            a default route via the gateway, and its MAC sent in the request. --port evpn:<id> links the \
            E-VPN instance <id> into an IP VPN.
            Examples:
              bagpipe-rest-attach --attach --network-type evpn --port netns --ip 10.0.0.1 --vpn-instance-id net1 --rt 64512:10
              bagpipe-rest-attach --detach --network-type evpn --port netns --ip 10.0.0.1 --vpn-instance-id net1 --rt 64512:10
            """)

    @Flag(help: "Attach the port.") var attach = false
    @Flag(help: "Detach the port.") var detach = false
    @Option(name: .customLong("network-type"), help: "ipvpn or evpn.") var networkType: String
    @Option(name: .customLong("vpn-instance-id"), help: "The VPN instance (default: <network-type>-bagpipe-test).") var vpnInstanceID = "bagpipe-test"
    @Option(help: "The local port: an interface, netns[:<if>] (a namespace and veth pair), or evpn:<id>.") var port: String
    @Option(help: "to-port, from-port or both.") var direction = "both"
    @Option(name: .customLong("rt"), help: "Route target imported and exported (repeatable; default 64512:512 for ipvpn, 64512:513 for evpn).") var routeTargets: [String] = []
    @Option(name: .customLong("import-rt"), help: "Import-only route target (repeatable).") var importOnly: [String] = []
    @Option(name: .customLong("export-rt"), help: "Export-only route target (repeatable).") var exportOnly: [String] = []
    @Option(help: "The address with its prefix length (/24 when not given; /64 for IPv6).") var ip: String
    @Option(name: .customLong("gateway-ip"), help: "The gateway (default: the last but one address of the subnet).") var gatewayIP: String?
    @Option(help: "The MAC address (required for evpn, unless the port is netns).") var mac: String?
    @Flag(name: .customLong("advertise-subnet"), help: "Advertise the whole subnet.") var advertiseSubnet = false
    @Flag(name: .customLong("advertise-singleton"), help: "Advertise the address alone (the default).") var advertiseSingleton = false
    @Flag(name: .customLong("ovs-preplug"), help: "Plug the port into an OVS bridge first (ipvpn).") var ovsPreplug = false
    @Option(name: .customLong("ovs-bridge"), help: "The OVS bridge for --ovs-preplug.") var ovsBridge = "br-int"
    @Option(name: .customLong("ovs-vlan"), help: "Only this VLAN of the port is attached.") var ovsVLAN: Int?
    @Option(help: "The network namespace for --port netns (default: the instance id).") var netns: String?
    @Option(help: "The interface in the namespace, towards the VPN.") var if2vpn = "tovpn"
    @Option(name: .customLong("readv-from-rt"), help: "Re-advertise routes with this route target (repeatable).") var readvFrom: [String] = []
    @Option(name: .customLong("readv-to-rt"), help: "... with this route target (repeatable).") var readvTo: [String] = []
    @Option(name: .customLong("redirect-rts"), help: "Attract traffic matching the classifier from VRFs importing this (repeatable).") var redirectRTs: [String] = []
    @Option(name: .customLong("source-prefix"), help: "Classifier: source prefix.") var sourcePrefix: String?
    @Option(name: .customLong("destination-prefix"), help: "Classifier: destination prefix.") var destinationPrefix: String?
    @Option(name: .customLong("source-port"), help: "Classifier: source port or min:max.") var sourcePort: String?
    @Option(name: .customLong("destination-port"), help: "Classifier: destination port or min:max.") var destinationPort: String?
    @Option(name: .customLong("protocol"), help: "Classifier: IP protocol.") var ipProtocol: String?
    @Option(name: .customLong("attract-to-rt"), help: "Attract traffic to this route target (with --static-destination-prefix).") var attractTo: [String] = []
    @Option(name: .customLong("static-destination-prefix"), help: "A destination prefix to attract traffic for (repeatable).") var staticPrefixes: [String] = []
    @Option(name: .customLong("lb-consistent-hash-order"), help: "Load-balancing order.") var lbOrder = 0
    @Option(help: "Force the VNI of a new instance.") var vni = 0
    @Option(name: .customLong("local-pref"), help: "BGP LOCAL_PREF of the routes.") var localPref: Int?
    @Option(name: .customLong("config-file"), help: "bgp.conf, for [API] port.") var configFile = BagpipeCLI.defaultConfigFile
    @Option(name: .customLong("api-port"), help: "The API port (instead of the one in --config-file).") var apiPort: Int?

    func validate() throws {
        guard attach != detach else { throw ValidationError("Need to specify --attach or --detach") }
        guard ["ipvpn", "evpn"].contains(networkType) else { throw ValidationError("--network-type must be ipvpn or evpn") }
        guard ["both", "to-port", "from-port"].contains(direction) else { throw ValidationError("--direction must be both, to-port or from-port") }
        if !redirectRTs.isEmpty && classifier.isEmpty { throw ValidationError("Need to specify --redirect-rts and at least one traffic classifier option") }
        if !attractTo.isEmpty && staticPrefixes.isEmpty { throw ValidationError("Need to specify --attract-to-rt and at least one static destination prefix") }
    }

    var classifier: [(String, JSONValue)] {
        [("sourcePrefix", sourcePrefix), ("destinationPrefix", destinationPrefix), ("sourcePort", sourcePort), ("destinationPort", destinationPort), ("protocol", ipProtocol)]
            .compactMap { key, value in value.map { (key, .string($0)) } }
    }

    func run() async throws {
        let operation = attach ? "attach" : "detach"
        let port = try apiPort ?? BagpipeCLI.apiPort(configFile: configFile) ?? 8082
        var rts = routeTargets
        if rts.isEmpty && importOnly.isEmpty && exportOnly.isEmpty { rts = [networkType == "ipvpn" ? "64512:512" : "64512:513"] }
        var address = ip
        if !address.contains("/") { address += address.contains(":") ? "/64" : "/24" }
        guard let prefix = IPPrefix(address) else { throw ValidationError("--ip \(ip) is not an address") }
        let gateway: String
        if let gatewayIP {
            gateway = gatewayIP
        } else {
            guard let g = Self.lastButOne(prefix) else { throw ValidationError("--gateway-ip is needed for \(address)") }
            gateway = "\(g)"
            print("using \(gateway) as gateway address")
        }
        let instance = vpnInstanceID == "bagpipe-test" ? "\(networkType)-bagpipe-test" : vpnInstanceID
        var localPort = self.port
        var macAddress = mac
        if self.port.hasPrefix("netns") {
            let namespace = netns ?? instance
            let parts = self.port.split(separator: ":", maxSplits: 1)
            let outside = parts.count == 2 ? String(parts[1]) : Self.outsideName(namespace)
            if attach { try Netns.plug(namespace: namespace, outside: outside, inside: if2vpn, vlan: ovsVLAN, mac: mac, address: address, gateway: gateway) }
            localPort = outside
            if macAddress == nil { macAddress = try Netns.mac(namespace: namespace, interface: if2vpn) }
            print("Local port: \(localPort) (\(macAddress ?? "?"))")
        }
        var local: [(String, JSONValue)] = []
        if localPort.hasPrefix("evpn:") {
            guard networkType == "ipvpn" else { throw ValidationError("Can only plug an evpn into an ipvpn") }
            print("will plug evpn \(localPort.dropFirst(5)) into the IPVPN")
            local = [("evpn", .object([("id", .string(String(localPort.dropFirst(5))))]))]
        } else {
            local = [("linuxif", .string(localPort))]
            if ovsPreplug && networkType == "ipvpn" {
                print("pre-plugging \(localPort) into \(ovsBridge)")
                _ = try? Netns.run(["ovs-vsctl", "del-port", ovsBridge, localPort])
                try Netns.run(["ovs-vsctl", "add-port", ovsBridge, localPort])
                var ovs: [(String, JSONValue)] = [("port_name", .string(localPort)), ("plugged", .bool(true))]
                if let ovsVLAN { ovs.append(("vlan", JSONValue(ovsVLAN))) }
                local.append(("ovs", .object(ovs)))
            }
        }
        if macAddress == nil {
            guard networkType == "ipvpn" else { throw ValidationError("Need to specify --mac for an EVPN network attachment if port is not 'netns'") }
            macAddress = "52:54:00:99:99:22"
        }
        var attract: [(String, JSONValue)] = []
        if !redirectRTs.isEmpty {
            attract = [("redirect_rts", Self.list(redirectRTs)), ("classifier", .object(classifier))]
            // The original sent `to` here, which its server did not read (quirk Q15).
            if !attractTo.isEmpty { attract += [("to_rt", Self.list(attractTo)), ("static_destination_prefixes", Self.list(staticPrefixes))] }
        }
        var fields: [(String, JSONValue)] = [
            ("import_rt", Self.list(rts + importOnly)), ("export_rt", Self.list(rts + exportOnly)), ("local_port", .object(local)),
            ("vpn_instance_id", .string(instance)), ("vpn_type", .string(networkType)), ("gateway_ip", .string(gateway)),
            ("mac_address", .string(macAddress ?? "")), ("ip_address", .string(address)), ("advertise_subnet", .bool(advertiseSubnet && !advertiseSingleton)),
            ("readvertise", readvTo.isEmpty ? .null : .object([("from_rt", Self.list(readvFrom)), ("to_rt", Self.list(readvTo))])),
            ("attract_traffic", .object(attract)), ("lb_consistent_hash_order", JSONValue(lbOrder)), ("vni", JSONValue(vni)),
        ]
        if let localPref { fields.append(("local_pref", JSONValue(localPref))) }
        fields.append(("direction", .string(direction)))
        let body = JSONValue.object(fields).serialized()
        print("request: \(body)")
        let url = "http://127.0.0.1:\(port)/\(operation)_localport"
        let response: BagpipeCLI.Response
        do {
            response = try await BagpipeCLI.request(url, method: .POST, json: body)
        } catch let error as BagpipeCLI.ConnectionFailed {
            throw Failure("cannot reach bagpipe-bgp at \(url): \(error)")
        }
        guard response.status == 200 else {
            print("   \(response.body)")
            throw Failure("error \(response.status), reason: \(response.reason)")
        }
        print("response: \(response.status) \(response.body)")
    }

    static func list(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }

    /// `ns-<namespace>` as the original names the host end of the veth pair when that fits the 15
    /// characters of an interface name; beyond, `ns-` and a hash of the name (the original cut it,
    /// so that two namespaces with a long common prefix took the same interface).
    static func outsideName(_ namespace: String) -> String {
        let name = "ns-" + namespace
        guard name.utf8.count > 15 else { return name }
        var h: UInt32 = 0x811c_9dc5
        for b in namespace.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let hex = String(h, radix: 16)
        return "ns-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The last but one address of a subnet (the original's default gateway: `.254` of a /24).
    static func lastButOne(_ prefix: IPPrefix) -> IPAddress? {
        switch prefix.address {
        case .v4(let a):
            guard prefix.length <= 30 else { return nil }
            let hostBits = UInt32(32 - prefix.length)
            let network = a.value & ~((1 << hostBits) - 1)
            return .v4(IPv4Address(network | ((1 << hostBits) - 2)))
        case .v6(let a):
            guard prefix.length <= 126, prefix.length >= 64 else { return nil }
            let hostBits = UInt64(128 - prefix.length)
            let mask: UInt64 = hostBits == 64 ? .max : (1 << hostBits) - 1
            return .v6(IPv6Address(high: a.high, low: (a.low & ~mask) | (mask - 1)))
        }
    }
}

/// A failure to report on standard error, with exit status 1.
struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
