import ArgumentParser
import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeDataplane
import BagpipeLab
import BagpipeVPN
import Dataplane
import Foundation
import Netlink

/// Issue 6, acceptance 5, in a network namespace of its own:
/// - 10,000 remote MACs programmed into an E-VPN instance's FDB by our `linux` driver over netlink:
///   the driver alone, and the whole path (type-2 routes into the engine, the E-VPN instance's
///   best-route tracking, the driver);
/// - the original's way, one `bridge fdb replace` process per entry, in the same run;
/// - the delay from an attach on host A until the FDB entry is on host B (two daemons and our
///   reflector in namespaces).
struct FDBBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fdb", abstract: "FDB programming through netlink against one process per entry; attach-to-FDB delay.")

    @Option(help: "Remote MACs programmed.") var macs = 10_000
    @Option(help: "Entries programmed one process each (the slow baseline).") var processEntries = 10_000
    @Option(help: "Attaches whose delay to the remote FDB is measured.") var probes = 20

    func run() async throws {
        let spaces = TestNamespaces()
        defer { spaces.remove() }
        let ns = try spaces.add("fdbbench")
        let netlink = try NetlinkSocket(namespace: ns)
        try BagpipeLab.run(["ip", "-n", ns, "addr", "add", "192.0.2.1/32", "dev", "lo"])
        let local = IPv4Address(192, 0, 2, 1)
        func remote(_ i: Int) -> RemoteEndpoint {
            RemoteEndpoint(destination: .mac(MACAddress(0x5254_0000_0000 + UInt64(i)), ip: nil), remotePE: IPv4Address(10, 0, UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF)), label: 5000, encapsulations: [.vxlan], loadBalancingOrder: 0)
        }
        func entries(_ device: String) throws -> Int { try netlink.fdbEntries(device: try netlink.link(named: device)?.index ?? -1).filter { $0.isSelf && $0.destination != nil }.count }

        print("| what | entries | seconds | entries/s | vs one process per entry |")
        print("|---|---|---|---|---|")
        // 1. The driver alone.
        let driver = try LinuxEVPNDriver(localAddress: local, options: [:], netlink: netlink)
        let instance = try driver.makeInstance(id: 1, externalID: "bench-driver", label: 5000, options: InstanceOptions())
        var start = now()
        for i in 0..<macs { try instance.setUp(remote(i)) }
        let driverSeconds = now() - start
        let vx = LinuxEVPNDriver.shortName("bgpv-", "bench-driver")
        guard try entries(vx) == macs else { throw BenchError("the driver installed \(try entries(vx)) of \(macs) entries") }
        instance.cleanup()

        // 2. The whole path: type-2 routes from a peer into the engine, the E-VPN instance, the driver.
        let path = RoutePath(local: local, family: .evpn)
        let rt = ExtendedCommunity.routeTarget(as: 64512, 1)
        let evi = try EVPNInstance(
            id: 2, externalID: "bench-routes", vni: 5000, routeDistinguisher: .ipv4(local, 1), importRTs: [rt], exportRTs: [rt], engine: path.engine, driver: driver,
            bgpAddress: local, salt: "bench")
        let attributes = RoutePath.attributes(rt, .vxlan, nextHop: IPv4Address(10, 9, 0, 1))
        let changes: [RouteChange] = (0..<macs).map { i in
            let e = NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .ipv4(IPv4Address(10, 9, 0, 1), 1), mac: MACAddress(0x5254_0100_0000 + UInt64(i)), ip: nil, labelField1: 5000))))
            return .announce(RouteKey(e), e, attributes)
        }
        start = now()
        path.receive(changes, into: evi)
        let pathSeconds = now() - start
        let vx2 = LinuxEVPNDriver.shortName("bgpv-", "bench-routes")
        guard try entries(vx2) == macs else { throw BenchError("the route path installed \(try entries(vx2)) of \(macs) entries") }

        // 3. One `bridge fdb replace` process per entry, as the original's linux driver ran them.
        try BagpipeLab.run(["ip", "-n", ns, "link", "add", "vx-proc", "type", "vxlan", "id", "5000", "local", "192.0.2.1", "dstport", "4790", "nolearning"])
        start = now()
        for i in 0..<processEntries {
            let r = remote(i)
            guard case .mac(let mac, _) = r.destination else { continue }
            try BagpipeLab.run(["bridge", "-n", ns, "fdb", "replace", "\(mac)", "dev", "vx-proc", "dst", "\(r.remotePE)", "vni", "5000"])
        }
        let processSeconds = now() - start
        guard try entries("vx-proc") == processEntries else { throw BenchError("bridge installed \(try entries("vx-proc")) entries") }
        let processRate = Double(processEntries) / processSeconds
        fflush(nil)
        print("| one `bridge fdb replace` process per entry | \(processEntries) | \(format(processSeconds, 2)) | \(Int(processRate)) | 1 |")
        print("| our driver (netlink), setUp per route | \(macs) | \(format(driverSeconds, 3)) | \(Int(Double(macs) / driverSeconds)) | \(format(Double(macs) / driverSeconds / processRate, 0))× faster |")
        print("| engine + E-VPN instance + driver, \(macs) type-2 routes | \(macs) | \(format(pathSeconds, 3)) | \(Int(Double(macs) / pathSeconds)) | \(format(Double(macs) / pathSeconds / processRate, 0))× faster |")
        evi.stop()
        fflush(nil)

        // 4. Attach on host A → FDB entry on host B.
        let delays = try await attachToFDB(spaces: spaces)
        print("")
        print("| attach on host A → FDB entry on host B | probes | median | p90 | max |")
        print("|---|---|---|---|---|")
        print("| two bagpipe-bgp (linux driver) and our reflector in namespaces | \(delays.count) | \(format(delays[delays.count / 2] * 1000, 1)) ms | \(format(delays[delays.count * 9 / 10] * 1000, 1)) ms | \(format((delays.last ?? 0) * 1000, 1)) ms |")
    }

    /// A blocking HTTP/1.0 request to 127.0.0.1:8082 in a namespace; returns the body.
    static func http(namespace: String, path: String, body: String?) throws -> String {
        let fd = try inNetworkNamespace(namespace) { () -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(8082).bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let ok = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if ok != 0 { close(fd); return -1 }
            return fd
        }
        guard fd >= 0 else { throw BenchError("no API in \(namespace)") }
        defer { close(fd) }
        let payload = body ?? ""
        let request = "\(body == nil ? "GET" : "POST") \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(payload.utf8.count)\r\n\r\n" + payload
        let bytes = Array(request.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw BenchError("write to the API failed") }
        // Read the head, then Content-Length bytes of body.
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let text = String(decoding: response, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }.flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                let bodyText = String(text[end.upperBound...])
                if bodyText.utf8.count >= length { return bodyText }
            }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return String(decoding: response, as: UTF8.self) }
            response += chunk[0..<n]
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Two hosts and a reflector; each probe attaches a port on A (a veth end) and polls B's FDB.
    func attachToFDB(spaces: TestNamespaces) async throws -> [Double] {
        let net = try spaces.add("fdbnet")
        try BagpipeLab.run(["ip", "-n", net, "link", "add", "br0", "type", "bridge"])
        try BagpipeLab.run(["ip", "-n", net, "link", "set", "br0", "up"])
        var hosts: [String: String] = [:]
        for (name, address) in [("a", "192.0.2.1"), ("b", "192.0.2.2"), ("rr", "192.0.2.254")] {
            let ns = try spaces.add("fdb\(name)")
            try BagpipeLab.run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "p-\(name)", "netns", net])
            try BagpipeLab.run(["ip", "-n", net, "link", "set", "p-\(name)", "master", "br0", "up"])
            try BagpipeLab.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            try BagpipeLab.run(["ip", "-n", ns, "addr", "add", "\(address)/24", "dev", "eth0"])
            hosts[name] = ns
        }
        let ip = FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/usr/bin/ip"
        func daemon(_ name: String, _ conf: String) throws -> Daemon {
            try Daemon(name: "bench-\(name)", executable: ip, arguments: ["netns", "exec", hosts[name] ?? "", builtProduct("bagpipe-bgp"), "--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": conf])
        }
        let host = { (address: String) in "[BGP]\nlocal_address = \(address)\nmy_as = 64512\npeers = 192.0.2.254\n[API]\nport = 8082\n[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = linux\n" }
        let daemons = [
            try daemon("rr", "[BGP]\nlocal_address = 192.0.2.254\nmy_as = 64512\npeers = 192.0.2.1, 192.0.2.2\nroute_reflector = True\n"), try daemon("a", host("192.0.2.1")), try daemon("b", host("192.0.2.2")),
        ]
        defer { for d in daemons { d.stop() } }
        /// HTTP to a host's API from a socket opened in its namespace (no process per request).
        func api(_ h: String, _ path: String, _ body: String? = nil) throws -> String {
            try Self.http(namespace: hosts[h] ?? "", path: path, body: body)
        }
        for h in ["a", "b"] {
            _ = try await poll(timeout: 30) { (try? api(h, "/looking-glass/summary")) ?? "" } until: { $0.contains(#""BGP_established_peers":1"#) }
        }
        let b = try NetlinkSocket(namespace: hosts["b"] ?? "")
        // B's port in the instance (so that it imports A's routes); A's ports are veth ends.
        try BagpipeLab.run(["ip", "-n", hosts["b"] ?? "", "link", "add", "tap-b", "type", "veth", "peer", "name", "tap-b2"])
        guard try api("b", "/attach_localport", #"{"vpn_type": "evpn", "vpn_instance_id": "net", "mac_address": "52:54:00:00:0b:00", "local_port": "tap-b", "import_rt": "64512:1", "export_rt": "64512:1"}"#) == "null" else {
            throw BenchError("attach on B refused")
        }
        var delays: [Double] = []
        for k in 0..<probes {
            let port = "tap\(k)"
            try BagpipeLab.run(["ip", "-n", hosts["a"] ?? "", "link", "add", port, "type", "veth", "peer", "name", "peer\(k)"])
            let mac = MACAddress(0x5254_00aa_0000 + UInt64(k))
            let body = #"{"vpn_type": "evpn", "vpn_instance_id": "net", "mac_address": "\#(mac)", "local_port": "\#(port)", "import_rt": "64512:1", "export_rt": "64512:1"}"#
            let t0 = now()
            guard try api("a", "/attach_localport", body) == "null" else { throw BenchError("attach \(k) on A refused") }
            let deadline = t0 + 10
            while now() < deadline {
                if try b.fdbEntries().contains(where: { $0.mac == mac && $0.isSelf }) { break }
                usleep(500)
            }
            delays.append(now() - t0)
        }
        return delays.sorted()
    }
}
