import ArgumentParser
import AsyncHTTPClient
import BagpipeLab
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import NeutronModel

/// bagpipe-controller's API throughput (ports created and listed) and watch fan-out (one BGPVPN
/// route-target update seen by every host watching a network it is associated with).
struct ControllerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "controller", abstract: "API throughput and watch fan-out of bagpipe-controller.")

    @Option(help: "Ports created.") var ports = 10_000
    @Option(help: "Networks they are spread over.") var networks = 100
    @Option(help: "Concurrent API clients.") var clients = 4
    @Option(help: "Hosts watching (one port each on the associated network).") var watchers = 1000
    @Option(help: "Route-target updates whose fan-out is timed.") var updates = 20
    @Option(help: "[database] connection; default a SQLite file in a temporary folder.") var database: String?
    @Option(help: "A running neutron-server (noauth) measured the same way, side by side: scripts/neutron-anchor.sh starts one.") var neutronURL: String?
    @Option(help: "Ports created on neutron-server (it takes about 0.2 s each); default as --ports.") var neutronPorts: Int?

    /// A bagpipe-controller on 127.0.0.1 (its SQLite file in its folder unless `database`), with the
    /// file-descriptor limit raised for a thousand watchers; its port.
    /// `bindHost`: where it listens; `accounts`: `[identity]` lines besides admin's.
    static func startController(database: String?, bindHost: String = "127.0.0.1", accounts: [String] = []) throws -> (Daemon, Int) {
        var limit = rlimit(rlim_cur: 65536, rlim_max: 65536)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let port = try freePort()
        let conf = """
            [DEFAULT]
            bind_host = \(bindHost)
            bind_port = \(port)
            [database]
            connection = \(database ?? "sqlite:///$DIR/controller.db")
            [ml2_type_vxlan]
            vni_ranges = 1000:9999
            [identity]
            admin = secret, admin, admin
            \(accounts.joined(separator: "\n"))
            """
        let daemon = try Daemon(name: "controller-bench", executable: URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bagpipe-controller").path,
                                arguments: ["--config-file", "$DIR/controller.conf", "--log-level", "warning"], files: ["controller.conf": conf])
        return (daemon, port)
    }

    func run() async throws {
        let (daemon, port) = try Self.startController(database: database)
        defer { daemon.stop() }
        var config = HTTPClient.Configuration()
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = watchers + clients + 8
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        do {
            try await measure(http: http, port: port, daemon: daemon)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try? await http.shutdown()
    }

    func measure(http: HTTPClient, port: Int, daemon: Daemon) async throws {
        let api = API(http: http, base: "http://127.0.0.1:\(port)")
        guard try await eventually(timeout: 20, { (try? await api.call(.GET, "/", nil)) != nil }) else { throw ValidationError("the controller did not start:\n\(daemon.log)") }
        try await api.login()
        print("| server | what | count | seconds | per second |")
        print("|---|---|---|---|---|")
        let ours = try await throughput(api, name: "bagpipe-controller (\(database == nil ? "SQLite" : "PostgreSQL"))", ports: ports)
        if let neutronURL {
            let neutron = API(http: http, base: neutronURL, noauth: true)
            let theirs = try await throughput(neutron, name: "neutron-server + networking-bgpvpn", ports: neutronPorts ?? ports)
            print("")
            print("create: \(String(format: "%.1f", ours.create / theirs.create))× neutron-server; list: \(String(format: "%.1f", ours.list / theirs.list))×")
        }
        try await fanOut(api, daemon: daemon, http: http)
    }

    /// Ports created and listed per second.
    func throughput(_ api: API, name: String, ports: Int) async throws -> (create: Double, list: Double) {
        let networks = self.networks, clients = self.clients
        // 1. API throughput: networks with a subnet each, then the ports, from `clients` clients.
        var networkIDs: [String] = []
        for i in 0..<networks {
            let n = try await api.create("/v2.0/networks", #"{"network": {"name": "bench-\#(i)"}}"#, "network")
            _ = try await api.create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(n)", "cidr": "10.\#(i / 250).\#(i % 250).0/24", "ip_version": 4}}"#, "subnet")
            networkIDs.append(n)
        }
        let perClient = ports / clients
        let ids = networkIDs
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    for k in 0..<perClient {
                        let i = c * perClient + k
                        _ = try await api.create("/v2.0/ports", #"{"port": {"network_id": "\#(ids[i % ids.count])", "name": "p\#(i)"}}"#, "port")
                    }
                }
            }
            try await group.waitForAll()
        }
        let createSeconds = Date().timeIntervalSince(start)
        let listStart = Date()
        let listed = try await api.call(.GET, "/v2.0/ports", nil)
        let listSeconds = Date().timeIntervalSince(listStart)
        let count = (try? JSON.parse(Array(listed.utf8)))?["ports"]?.arrayValue?.count ?? 0
        print("| \(name) | create ports (\(clients) clients, \(networks) networks) | \(perClient * clients) | \(String(format: "%.2f", createSeconds)) | \(Int(Double(perClient * clients) / createSeconds)) |")
        print("| \(name) | list all ports (one request) | \(count) | \(String(format: "%.3f", listSeconds)) | \(Int(Double(count) / listSeconds)) |")
        return (Double(perClient * clients) / createSeconds, Double(count) / listSeconds)
    }

    func fanOut(_ api: API, daemon: Daemon, http: HTTPClient) async throws {
        let watchers = self.watchers, clients = self.clients, updates = self.updates

        // 2. Watch fan-out: `watchers` hosts with a port on one network associated to a BGPVPN.
        let net = try await api.create("/v2.0/networks", #"{"network": {"name": "fanout"}}"#, "network")
        _ = try await api.create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(net)", "cidr": "172.16.0.0/20"}}"#, "subnet")
        let bgpvpn = try await api.create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"route_targets": ["64512:1"]}}"#, "bgpvpn")
        _ = try await api.create("/v2.0/bgpvpn/bgpvpns/\(bgpvpn)/network_associations", #"{"network_association": {"network_id": "\#(net)"}}"#, "network_association")
        let hosts = (0..<watchers).map { "host-\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, chunk) in stride(from: 0, to: hosts.count, by: hosts.count / clients + 1).map({ Array(hosts[$0..<min($0 + hosts.count / clients + 1, hosts.count)]) }).enumerated() {
                _ = i
                group.addTask { for h in chunk { _ = try await api.create("/v2.0/ports", #"{"port": {"network_id": "\#(net)", "binding:host_id": "\#(h)"}}"#, "port") } }
            }
            try await group.waitForAll()
        }
        // Every host lists its view first; memory is measured between the lists and the watches,
        // so that it counts what the watchers hold.
        var versions: [String: Int64] = [:]
        for h in hosts {
            let view = try await api.call(.GET, "/v2.0/agent/hosts/\(h)/view", nil)
            guard case .int(let v)? = (try? JSON.parse(Array(view.utf8)))?["resource_version"] else { throw ValidationError("no view for \(h)") }
            versions[h] = v
        }
        let idleRSS = residentKB(daemon.process.processIdentifier)
        let clientsGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let watchClients = WatchClients(count: hosts.count)
        let requests = hosts.map { h in
            "GET /v2.0/agent/hosts/\(h)/watch?resource_version=\(versions[h] ?? 0)&heartbeat=30 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: \(api.token)\r\n\r\n"
        }
        try await watchClients.connect(port: Int(URL(string: api.base)?.port ?? 0), requests: requests, group: clientsGroup)
        defer { watchClients.close() }
        // Every watch answered (its 200): the controller holds them all.
        guard try await eventually(timeout: 60, { watchClients.answered.withLockedValue { $0 } == watchers }) else { throw ValidationError("only \(watchClients.answered.withLockedValue { $0 }) watches answered") }
        let watchingRSS = residentKB(daemon.process.processIdentifier)
        var delays: [Double] = []
        for u in 1...updates {
            // The association's MODIFIED event carries the new route target.
            watchClients.await("\"64512:\(u + 1)\"")
            let sent = now()
            _ = try await api.call(.PUT, "/v2.0/bgpvpn/bgpvpns/\(bgpvpn)", #"{"bgpvpn": {"route_targets": ["64512:\#(u + 1)"]}}"#)
            guard try await eventually(timeout: 30, { watchClients.arrivals.withLockedValue { $0.allSatisfy { $0 != nil } } }) else {
                throw ValidationError("update \(u) did not reach every watcher")
            }
            let last = watchClients.arrivals.withLockedValue { $0.compactMap { $0 }.max() } ?? sent
            delays.append((last - sent) * 1000)
        }
        watchClients.close()
        try? await clientsGroup.shutdownGracefully()
        delays.sort()
        func percentile(_ p: Double) -> Double { delays[min(delays.count - 1, Int(Double(delays.count) * p))] }
        print("")
        print("| watchers | updates | update → every watcher has it: median | p99 | max | controller RSS per idle watcher |")
        print("|---|---|---|---|---|---|")
        print("| \(watchers) | \(updates) | \(String(format: "%.1f", percentile(0.5))) ms | \(String(format: "%.1f", percentile(0.99))) ms | \(String(format: "%.1f", delays.last ?? 0)) ms | \((watchingRSS - idleRSS) * 1024 / max(1, watchers)) bytes |")
    }

    struct API: Sendable {
        let http: HTTPClient
        let base: String
        /// neutron-server without Keystone: the project and roles in headers, the project in bodies.
        var noauth = false
        let tokenBox = NIOLockedValueBox("")
        var token: String { tokenBox.withLockedValue { $0 } }

        func login() async throws {
            var request = HTTPClientRequest(url: "\(base)/v3/auth/tokens")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: #"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}}}}}"#))
            let r = try await http.execute(request, timeout: .seconds(10))
            guard let t = r.headers.first(name: "X-Subject-Token") else { throw ValidationError("login failed: \(r.status)") }
            tokenBox.withLockedValue { $0 = t }
        }

        func call(_ method: HTTPMethod, _ path: String, _ body: String?) async throws -> String {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            var body = body
            if noauth {
                request.headers.add(name: "X-Project-Id", value: "bench")
                request.headers.add(name: "X-Roles", value: "admin")
                if method == .POST, let b = body, let brace = b.range(of: ": {") { body = b.replacingCharacters(in: brace, with: #": {"project_id": "bench", "#) }
            } else {
                request.headers.add(name: "X-Auth-Token", value: token)
            }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let r = try await http.execute(request, timeout: .seconds(60))
            let text = String(buffer: try await r.body.collect(upTo: 1 << 28))
            guard r.status.code < 300 else { throw ValidationError("\(method) \(path): \(r.status) \(text.prefix(300))") }
            return text
        }

        func create(_ path: String, _ body: String, _ member: String) async throws -> String {
            let text = try await call(.POST, path, body)
            guard let id = (try? JSON.parse(Array(text.utf8)))?[member]?["id"]?.stringValue else { throw ValidationError("POST \(path): \(text.prefix(300))") }
            return id
        }
    }
}
