import ArgumentParser
import BGPSession
import BagpipeLab
import BGPWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One injector → a route reflector → N clients: the time from the injector's first UPDATE until
/// every client holds every route, and the reflector's resident memory growth per route. The
/// reflectors: our `bagpipe-bgp` (route_reflector = True), gobgpd and FRR's bgpd, each in its own
/// process, in the same harness and run. The clients are our speakers, counting distinct routes
/// without storing them, so the reflector is what is measured.
struct ReflectorBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reflector",
        abstract: "Route reflection: 1 injector, N clients, M VPNv4 routes, against gobgpd and FRR.")

    @Option(parsing: .upToNextOption, help: "Numbers of clients.") var clients: [Int] = [10, 50]
    @Option(parsing: .upToNextOption, help: "Numbers of routes.") var routes: [Int] = [100_000, 1_000_000]
    @Option(parsing: .upToNextOption, help: "Reflectors: ours, gobgpd, frr.") var reflectors: [String] = ["ours", "gobgpd", "frr"]
    @Option(help: "Give up on one run after this many seconds.") var timeout: Double = 600

    mutating func run() throws {
        print("| routes | clients | reflector | seconds | route deliveries/s | reflector RSS growth | bytes/route | vs ours |")
        print("|---|---|---|---|---|---|---|---|")
        for m in routes {
            let updates = IngestBenchmark.feed(m)
            for n in clients {
                var ours: Double?
                for reflector in reflectors {
                    do {
                        let r = try measure(reflector, clients: n, routes: m, updates: updates)
                        if reflector == "ours" { ours = r.seconds }
                        let ratio = ours.map { reflector == "ours" ? "1" : format(r.seconds / $0, 1) + "× slower" } ?? ""
                        print("| \(m) | \(n) | \(reflector) | \(format(r.seconds, 2)) | \(millions(Double(m * n) / r.seconds)) | \(r.rssKB / 1024) MiB | \(r.rssKB * 1024 / m) | \(ratio) |")
                    } catch {
                        print("| \(m) | \(n) | \(reflector) | \(error) | | | | |")
                    }
                    fflush(nil)
                }
            }
        }
    }

    struct Result {
        var seconds: Double
        var rssKB: Int
    }

    static func clientAddress(_ i: Int) -> String { "127.0.1.\(i + 1)" }

    func measure(_ reflector: String, clients n: Int, routes m: Int, updates: [ByteBuffer]) throws -> Result {
        let port = try freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-rrbench-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let peers = ["127.0.0.2"] + (0..<n).map(Self.clientAddress)
        let process = Process()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        switch reflector {
        case "ours":
            let conf = """
                [BGP]
                local_address = 127.0.0.1
                my_as = 64512
                peers = \(peers.joined(separator: ", "))
                route_reflector = True
                listen_port = \(port)
                """
            try conf.write(to: directory.appendingPathComponent("bgp.conf"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bagpipe-bgp")
            process.arguments = ["--config-file", directory.appendingPathComponent("bgp.conf").path]
        case "gobgpd":
            let api = try freePort()
            let conf = GoBGPConfiguration(
                routerID: "192.0.2.1", port: port, localAddress: "127.0.0.1",
                neighbors: peers.map { .init(address: $0, localAddress: "127.0.0.1", passive: true, fastTimers: false, routeReflectorClusterID: "192.0.2.1") }
            ).toml
            try conf.write(to: directory.appendingPathComponent("gobgpd.toml"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/gobgpd")
            process.arguments = ["-f", directory.appendingPathComponent("gobgpd.toml").path, "--api-hosts=127.0.0.1:\(api)", "--pprof-disable", "-l", "warn"]
        case "frr":
            let neighbors = peers.map { " neighbor \($0) remote-as 64512\n neighbor \($0) passive\n" }.joined()
            let activations = peers.map { "  neighbor \($0) activate\n  neighbor \($0) route-reflector-client\n" }.joined()
            let conf = """
                frr defaults traditional
                hostname rrbench
                router bgp 64512
                 bgp router-id 192.0.2.1
                 no bgp default ipv4-unicast
                \(neighbors) address-family ipv4 vpn
                \(activations) exit-address-family
                exit
                """
            try conf.write(to: directory.appendingPathComponent("bgpd.conf"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/lib/frr/bgpd")
            process.arguments = [
                "-f", directory.appendingPathComponent("bgpd.conf").path, "-S", "-Z", "-n", "-l", "127.0.0.1", "-p", "\(port)", "-P", "0",
                "--vty_socket", directory.path, "-i", directory.appendingPathComponent("bgpd.pid").path, "-u", "root", "-g", "root",
            ]
        default:
            throw ValidationError("unknown reflector \(reflector)")
        }
        try process.run()
        defer { stop(process) }
        try waitForListener(port: port)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let counters = (0..<n).map { _ in RouteCounter(routes: m) }
        var speakers: [BGPPeer] = []
        defer { for s in speakers { s.stop() } }
        for (i, counter) in counters.enumerated() {
            let client = BGPPeer(
                configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 3, UInt8(i + 1)), families: [.ipv4VPN], holdTime: 180),
                remoteAddress: "127.0.0.1", remotePort: port, localAddress: Self.clientAddress(i), eventLoop: group.next())
            client.keepsAdjRIBIn = false
            client.onUpdate = { counter.add($0) }
            speakers.append(client)
            client.start()
        }
        let injector = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: [.ipv4VPN], holdTime: 180),
            remoteAddress: "127.0.0.1", remotePort: port, localAddress: "127.0.0.2", eventLoop: group.next())
        speakers.append(injector)
        injector.start()
        let up = Date().addingTimeInterval(60)
        while try speakers.contains(where: { try $0.state().wait() != .established }) {
            guard Date() < up else { throw ValidationError("sessions not up after 60 s") }
            usleep(20_000)
        }
        let baseline = residentKB(process.processIdentifier)
        let start = now()
        _ = injector.send(updates: updates)
        let end = Date().addingTimeInterval(timeout)
        while counters.contains(where: { $0.count < m }) {
            guard Date() < end else {
                let delivered = counters.reduce(0) { $0 + $1.count }
                throw ValidationError("> \(Int(timeout)) s (\(delivered) of \(m * n) deliveries)")
            }
            usleep(10_000)
        }
        let seconds = now() - start
        return Result(seconds: seconds, rssKB: residentKB(process.processIdentifier) - baseline)
    }
}

/// Distinct routes a client received, by the index the feed encodes in the prefix (10.0.0.0 + i).
final class RouteCounter: @unchecked Sendable {
    private var seen: [UInt64]
    private let total = NIOLockedValueBox(0)

    init(routes: Int) { seen = [UInt64](repeating: 0, count: routes / 64 + 1) }

    var count: Int { total.withLockedValue { $0 } }

    /// Called on the client's event loop only.
    func add(_ update: UpdateMessage) {
        var new = 0
        for block in update.announced {
            for element in block {
                guard case .vpnPrefix(let p) = element.nlri, case .v4(let address) = p.prefix.address else { continue }
                let i = Int(address.value &- 0x0A00_0000)
                guard i >= 0, i / 64 < seen.count else { continue }
                let bit = UInt64(1) << UInt64(i % 64)
                if seen[i / 64] & bit == 0 {
                    seen[i / 64] |= bit
                    new += 1
                }
            }
        }
        if new > 0 { total.withLockedValue { $0 += new } }
    }
}
