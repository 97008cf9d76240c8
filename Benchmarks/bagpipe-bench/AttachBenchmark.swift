import ArgumentParser
import BagpipeLab
import BagpipeCLI
import Foundation

/// Issue 5, acceptance 5: two compute-node daemons (A and B) peer through our route reflector, all
/// real processes on loopback. Measured for our `bagpipe-bgp` and for the original Python one
/// (networking-bagpipe 23.0.0 with ExaBGP 4.2.25, the last release whose sessions come up), in the
/// same harness and run:
/// - attach throughput: 1,000 E-VPN ports over 100 instances posted one after the other to A's API;
/// - until B holds all of them (its looking glass counts the received routes);
/// - the delay from one attach on A until its route is among the best routes of B's instance.
struct AttachBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach throughput and attach-to-remote-route delay, ours against the original Python bagpipe-bgp.",
        discussion: """
            The original runs from a virtualenv (--python-venv); when it is missing it is made with:
              python3 -m venv V && V/bin/pip install networking-bagpipe==23.0.0 && V/bin/pip install --no-deps exabgp==4.2.25
            """)

    @Option(help: "Ports attached on host A.") var ports = 1000
    @Option(help: "VPN instances they are spread over.") var instances = 100
    @Option(help: "Single attaches whose delay to host B is measured.") var probes = 20
    @Option(parsing: .upToNextOption, help: "Daemons: ours, python.") var daemons: [String] = ["ours", "python"]
    @Option(help: "Virtualenv of the original (networking-bagpipe 23.0.0).") var pythonVenv = ".build/python-bagpipe-23"

    func run() async throws {
        print("| daemon | attach \(ports) ports over \(instances) instances | attaches/s | until B holds them all | attach on A → route at B (median, p90) | vs ours |")
        print("|---|---|---|---|---|---|")
        var ours: Result?
        for daemon in daemons {
            do {
                if daemon == "python" { try ensurePython() }
                let r = try await measure(daemon)
                if daemon == "ours" { ours = r }
                let ratio = ours.map { o in daemon == "ours" ? "1" : "throughput \(format(o.attachesPerSecond / r.attachesPerSecond, 1))×, delay \(format(r.delayMedian / o.delayMedian, 1))× lower" } ?? ""
                print("| \(daemon) | \(format(r.attachSeconds, 2)) s | \(Int(r.attachesPerSecond)) | \(format(r.allAtB, 2)) s | \(format(r.delayMedian * 1000, 1)) ms, \(format(r.delayP90 * 1000, 1)) ms | \(ratio) |")
            } catch {
                print("| \(daemon) | \(error) | | | | |")
            }
            fflush(nil)
        }
    }

    struct Result {
        var attachSeconds: Double
        var attachesPerSecond: Double
        var allAtB: Double
        var delayMedian: Double
        var delayP90: Double
    }

    func ensurePython() throws { try PythonOriginal.ensure(venv: pythonVenv, version: "23.0.0") }

    struct BenchmarkError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    func host(_ daemon: String, address: String, rrPort: Int, apiPort: Int) throws -> Daemon {
        let conf = "[BGP]\nlocal_address = \(address)\nmy_as = 64512\npeers = 127.0.0.3\nbgp_port = \(rrPort)\n[API]\nport = \(apiPort)\n"
        if daemon == "ours" {
            return try Daemon(name: "bagpipe-bgp", executable: builtProduct("bagpipe-bgp"), arguments: ["--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": conf])
        }
        let python = URL(fileURLWithPath: pythonVenv).standardizedFileURL.path
        return try Daemon(name: "bagpipe-bgp-py", executable: "\(python)/bin/bagpipe-bgp", arguments: ["--config-file", "$DIR/bgp.conf", "--log-file", "$DIR/bagpipe.log"], files: ["bgp.conf": conf])
    }

    /// Polls every millisecond (the delays measured are a few milliseconds for ours).
    func waitFor(timeout: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = now() + timeout
        while now() < deadline {
            if try await condition() { return true }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        return false
    }

    func receivedRoutes(_ port: Int) async throws -> Int {
        let summary = try BagpipeCLI.json(try await BagpipeCLI.request("http://127.0.0.1:\(port)/looking-glass/summary").body)
        guard case .int(let n)? = summary["route_counts"]?["received_routes_count"] else { return 0 }
        return Int(n)
    }

    func attach(_ port: Int, instance: Int, mac: Int, address: String) async throws {
        let body = """
            {"vpn_type": "evpn", "vpn_instance_id": "net-\(instance)", "mac_address": "52:54:\(String(format: "%02x:%02x:%02x:%02x", (mac >> 24) & 0xFF, (mac >> 16) & 0xFF, (mac >> 8) & 0xFF, mac & 0xFF))", "ip_address": "\(address)", "local_port": "tap\(mac)", "import_rt": ["64512:\(1000 + instance)"], "export_rt": ["64512:\(1000 + instance)"]}
            """
        let r = try await BagpipeCLI.request("http://127.0.0.1:\(port)/attach_localport", method: .POST, json: body)
        guard r.status == 200 else { throw BenchmarkError("attach refused: \(r.status) \(r.body.prefix(200))") }
    }

    func measure(_ daemon: String) async throws -> Result {
        let rrPort = try freePort(host: "127.0.0.3")
        let rr = try Daemon(
            name: "bagpipe-rr", executable: builtProduct("bagpipe-bgp"), arguments: ["--config-file", "$DIR/bgp.conf"],
            files: ["bgp.conf": "[BGP]\nlocal_address = 127.0.0.3\nmy_as = 64512\npeers = 127.0.0.2, 127.0.0.4\nroute_reflector = True\nlisten_port = \(rrPort)\n"])
        let (apiA, apiB) = (try freePort(), try freePort())
        let a = try host(daemon, address: "127.0.0.2", rrPort: rrPort, apiPort: apiA)
        let b = try host(daemon, address: "127.0.0.4", rrPort: rrPort, apiPort: apiB)
        defer {
            for d in [a, b, rr] { d.stop() }
        }
        for port in [apiA, apiB] {
            let up = try await eventually(timeout: 60) {
                let s = try? BagpipeCLI.json(try await BagpipeCLI.request("http://127.0.0.1:\(port)/looking-glass/summary").body)
                return s?["BGP_established_peers"] == .int(1)
            }
            guard up else { throw BenchmarkError("\(daemon) on API port \(port) did not come up: \(a.log.suffix(500)) \(b.log.suffix(500))") }
        }
        // B imports every instance (one port each), so that A's routes are for it.
        for i in 0..<instances { try await attach(apiB, instance: i, mac: 0x0100_0000 + i, address: "10.\(i / 250).\(i % 250).200") }
        let base = try await receivedRoutes(apiB)
        // The burst: every port, one request after the other.
        let start = now()
        for p in 0..<ports { try await attach(apiA, instance: p % instances, mac: p, address: "10.\(p % instances / 250).\(p % instances % 250).\(p / instances + 1)") }
        let attachSeconds = now() - start
        // A's ports and one type-3 route per instance.
        let expected = base + ports + instances
        guard try await eventually(timeout: 300, { try await receivedRoutes(apiB) >= expected }) else {
            throw BenchmarkError("B holds \(try await receivedRoutes(apiB)) of \(expected) routes")
        }
        let allAtB = now() - start
        // One attach at a time, until B's instance has its route.
        var delays: [Double] = []
        for k in 0..<probes {
            let mac = 0x0200_0000 + k, instance = k % instances
            let text = String(format: "52:54:%02x:%02x:%02x:%02x", (mac >> 24) & 0xFF, (mac >> 16) & 0xFF, (mac >> 8) & 0xFF, mac & 0xFF)
            let t0 = now()
            try await attach(apiA, instance: instance, mac: mac, address: "10.\(instance / 250).\(instance % 250).\(240 + k % 10)")
            guard try await waitFor(timeout: 30, {
                // The original writes MACs in upper case.
                (try? await BagpipeCLI.request("http://127.0.0.1:\(apiB)/looking-glass/vpns/instances/net-\(instance)/best_routes"))?.body.lowercased().contains(text) == true
            }) else { throw BenchmarkError("probe \(k) never reached B") }
            delays.append(now() - t0)
        }
        delays.sort()
        return Result(
            attachSeconds: attachSeconds, attachesPerSecond: Double(ports) / attachSeconds, allAtB: allAtB, delayMedian: delays[delays.count / 2],
            delayP90: delays[min(delays.count - 1, delays.count * 9 / 10)])
    }
}
