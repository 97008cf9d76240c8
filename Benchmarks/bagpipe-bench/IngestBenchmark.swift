import ArgumentParser
import BGPSession
import BagpipeLab
import BGPWire
import Foundation
import NIOCore
import NIOPosix

/// A feeder sends N VPNv4 routes in full UPDATEs to a receiver; the time from the first UPDATE until
/// the receiver holds every route, and the receiver's resident memory per route. Receivers: our speaker
/// (its own process), gobgpd and FRR's bgpd, in the same harness and run.
struct IngestBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Session ingestion: N VPNv4 routes into the Adj-RIB-In, against gobgpd and FRR.")

    @Option(help: "Routes to send.") var routes = 1_000_000
    @Option(help: "Receivers to measure: ours, gobgpd, frr.") var receivers: [String] = ["ours", "gobgpd", "frr"]

    /// VPNv4 routes in 4096-byte UPDATEs, encoded once before timing.
    static func feed(_ n: Int) -> [ByteBuffer] {
        var elements: [NLRIElement] = []
        elements.reserveCapacity(n)
        for i in 0..<n {
            let prefix = IPPrefix(.v4(IPv4Address(UInt32(0x0A00_0000 + i))), length: 32)
            elements.append(NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [UInt32(16 + i % 1000)]), routeDistinguisher: .as2(64512, UInt32(i % 5000)), prefix: prefix))))
        }
        let attributes = [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100)),
            PathAttribute(.extendedCommunities([.routeTarget(as: 64512, 100)])),
        ]
        return UpdateBuilder().announce(elements, family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 2))), attributes: attributes)
    }

    mutating func run() throws {
        let updates = Self.feed(routes)
        print("feed: \(routes) VPNv4 routes in \(updates.count) UPDATEs")
        print("| receiver | routes | seconds | routes/s | RSS growth | bytes/route |")
        print("|---|---|---|---|---|---|")
        for receiver in receivers {
            do {
                let result = try measure(receiver, updates: updates)
                print("| \(receiver) | \(routes) | \(format(result.seconds, 3)) | \(millions(Double(routes) / result.seconds)) | \(result.rssKB / 1024) MiB | \(result.rssKB * 1024 / routes) |")
            } catch {
                print("| \(receiver) | \(routes) | failed: \(error) | | | |")
            }
        }
    }

    struct Result {
        var seconds: Double
        var rssKB: Int
    }

    func measure(_ receiver: String, updates: [ByteBuffer]) throws -> Result {
        let port = try freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-ingest-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = Process()
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        var count: () -> Int
        switch receiver {
        case "ours":
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            process.arguments = ["ingest-receiver", "--port", "\(port)"]
            let reader = LineReader(output)
            count = { reader.lastInt }
        case "gobgpd":
            let api = try freePort()
            try GoBGPReceiver.configuration(port: port).write(to: directory.appendingPathComponent("gobgpd.toml"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/gobgpd")
            process.arguments = ["-f", directory.appendingPathComponent("gobgpd.toml").path, "--api-hosts=127.0.0.1:\(api)", "--pprof-disable", "-l", "warn"]
            count = { GoBGPReceiver.accepted(api: api) }
        case "frr":
            try FRRReceiver.configuration.write(to: directory.appendingPathComponent("bgpd.conf"), atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/lib/frr/bgpd")
            process.arguments = [
                "-f", directory.appendingPathComponent("bgpd.conf").path, "-S", "-Z", "-n", "-l", "127.0.0.1", "-p", "\(port)", "-P", "0",
                "--vty_socket", directory.path, "-i", directory.appendingPathComponent("bgpd.pid").path, "-u", "root", "-g", "root",
            ]
            count = { FRRReceiver.received(directory) }
        default:
            throw ValidationError("unknown receiver \(receiver)")
        }
        try process.run()
        defer { stop(process) }
        // Wait for it to listen, note its memory, then feed.
        try waitForListener(port: port)
        let baseline = residentKB(process.processIdentifier)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let feeder = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: [.ipv4VPN], holdTime: 180),
            remoteAddress: "127.0.0.1", remotePort: port, localAddress: "127.0.0.2", eventLoop: group.next())
        feeder.start()
        let deadline = Date().addingTimeInterval(30)
        while try feeder.state().wait() != .established {
            guard Date() < deadline else { throw ValidationError("\(receiver): no session") }
            usleep(10_000)
        }
        let start = now()
        _ = feeder.send(updates: updates)
        let end = Date().addingTimeInterval(600)
        while count() < routes {
            guard Date() < end else { throw ValidationError("\(receiver): only \(count()) routes after 10 minutes") }
            usleep(20_000)
        }
        let seconds = now() - start
        let rss = residentKB(process.processIdentifier) - baseline
        feeder.stop()
        return Result(seconds: seconds, rssKB: rss)
    }
}

/// Prints the number of routes in its Adj-RIB-In as they arrive (one line each 10,000).
struct IngestReceiver: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingest-receiver", abstract: "Our speaker as the receiver of `ingest`.", shouldDisplay: false)

    @Option var port: Int

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let peer = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 1), families: [.ipv4VPN], holdTime: 180, active: false),
            remoteAddress: "127.0.0.2", eventLoop: group.next())
        let counter = Counter()
        peer.onRoutes = { _, changes in
            let before = counter.value / 10_000
            counter.value += changes.count
            if counter.value / 10_000 != before { print(counter.value); fflush(nil) }
        }
        _ = try BGPListener.listen(host: "127.0.0.1", port: port, group: group, peers: ["127.0.0.2": peer]).wait()
        peer.start()
        print(0)
        fflush(nil)
        while true { sleep(60) }
    }
}

final class Counter: @unchecked Sendable { var value = 0 }

/// Reads the last integer a child process printed.
final class LineReader: @unchecked Sendable {
    private let lock = NSLock()
    private var last = 0
    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            guard let self, let value = text.split(separator: "\n").last.flatMap({ Int($0) }) else { return }
            self.lock.lock()
            self.last = max(self.last, value)
            self.lock.unlock()
        }
    }
    var lastInt: Int {
        lock.lock()
        defer { lock.unlock() }
        return last
    }
}

enum GoBGPReceiver {
    static func configuration(port: Int) -> String {
        GoBGPConfiguration(
            routerID: "192.0.2.1", port: port, localAddress: "127.0.0.1",
            neighbors: [.init(address: "127.0.0.2", localAddress: "127.0.0.1", passive: true, fastTimers: false)]
        ).toml
    }

    static func accepted(api: Int) -> Int {
        guard let out = capture("gobgp -u 127.0.0.1 -p \(api) neighbor 127.0.0.2 -a vpnv4 2>/dev/null") else { return 0 }
        // "Accepted:" line of the neighbor detail.
        for line in out.split(separator: "\n") where line.contains("Accepted:") {
            return Int(line.split(separator: ":").last?.trimmingCharacters(in: " ") ?? "") ?? 0
        }
        return 0
    }
}

enum FRRReceiver {
    static let configuration = """
        frr defaults traditional
        hostname bench
        router bgp 64512
         bgp router-id 192.0.2.1
         no bgp default ipv4-unicast
         neighbor 127.0.0.2 remote-as 64512
         neighbor 127.0.0.2 passive
         address-family ipv4 vpn
          neighbor 127.0.0.2 activate
         exit-address-family
        exit
        """

    static func received(_ directory: URL) -> Int {
        guard let out = capture("vtysh --vty_socket \(directory.path) -d bgpd -c 'show bgp ipv4 vpn summary json' 2>/dev/null") else { return 0 }
        guard let range = out.range(of: "\"pfxRcd\":") else { return 0 }
        return Int(out[range.upperBound...].prefix(while: { $0.isNumber || $0 == " " }).trimmingCharacters(in: " ")) ?? 0
    }
}

/// SIGTERM, then SIGKILL if the process is still there after 5 seconds.
func stop(_ process: Process) {
    process.terminate()
    let deadline = Date().addingTimeInterval(5)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
}

func residentKB(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

func waitForListener(port: Int, host: String = "127.0.0.1") throws {
    let deadline = Date().addingTimeInterval(20)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    while Date() < deadline {
        if let channel = try? ClientBootstrap(group: group).connect(host: host, port: port).wait() {
            try? channel.close().wait()
            return
        }
        usleep(50_000)
    }
    throw ValidationError("nothing listens on port \(port)")
}
