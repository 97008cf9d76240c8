import ArgumentParser
import AsyncHTTPClient
import BGPSession
import BGPWire
import BagpipeLab
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NeutronModel

/// The whole control plane at scale, on loopback: bagpipe-controller, our route reflector, and
/// `--hosts` simulated compute nodes. Each node is a watch of its host's view (its agent) and a BGP
/// session with the reflector (its bagpipe-bgp): it imports the route targets `<AS>:<VNI>` of the
/// networks it has ports on (RT-Constraint), and when its watch shows a new port it advertises the
/// port's E-VPN MAC/IP route, as agent and bagpipe-bgp do. Timed: a port created through the API
/// until every node that has its network holds its route. Counted: the routes each node holds,
/// beside what an l2population fan-out sends every node (every port of every network).
///
/// `--real-nodes` of the nodes are real instead (ScaleRealNodes.swift): bagpipe-agent and bagpipe-bgp
/// with the Linux drivers in namespaces, their ports plugged as tap devices; a port created on one
/// travels controller → its agent's watch → the agent's attach → bagpipe-bgp → the reflector, and
/// its arrival at a real node is read from that node's looking glass.
struct ScaleBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale", abstract: "Port created → its route on every host of its network: controller, watches and our reflector, with simulated hosts.")

    @Option(help: "Simulated compute nodes.") var hosts = 1000
    @Option(help: "Networks.") var networks = 200
    @Option(help: "Networks a node has ports on (each picked with a skew: a few networks are on many nodes).") var networksPerHost = 4
    @Option(help: "Ports created and timed, one at a time.") var ports = 100
    @Option(help: "Seed of the spread.") var seed: UInt64 = 15
    @Option(help: "Nodes that are real (bagpipe-agent and bagpipe-bgp in namespaces; needs root). One timed port in four is created on one of them.")
    var realNodes = 8

    static func address(_ i: Int) -> String { "127.1.\(i / 250).\(i % 250 + 1)" }
    static func vniTarget(_ vni: Int) -> ExtendedCommunity { .routeTarget(as: 64512, UInt32(vni)) }

    func run() async throws {
        guard realNodes <= 0 || ProcessInfo.processInfo.environment[ScaleRealNodes.coreVariable] != nil else { return try ScaleRealNodes.runInsideCore() }
        let realIndices = realNodes > 0 ? Array(Set((0..<min(realNodes, hosts)).map { $0 * hosts / min(realNodes, hosts) })).sorted() : []
        let real = try ProcessInfo.processInfo.environment[ScaleRealNodes.coreVariable].map { try ScaleRealNodes(core: $0, nodes: realIndices) }
        defer { real?.stop() }
        let isReal = Set(realIndices)
        let (controller, apiPort) = try ControllerBenchmark.startController(database: nil, bindHost: real == nil ? "127.0.0.1" : "0.0.0.0", accounts: real?.accounts ?? [])
        defer { controller.stop() }
        let api = ControllerBenchmark.API(http: HTTPClient.shared, base: "http://127.0.0.1:\(apiPort)")
        guard try await eventually(timeout: 20, { (try? await api.call(.GET, "/", nil)) != nil }) else { throw ValidationError("the controller did not start:\n\(controller.log)") }
        try await api.login()

        // The spread: node h has ports on `networksPerHost` networks, network n picked with
        // probability falling with n (u² skew), one port each to start with.
        var rng = SplitMix64(seed: seed)
        let spread: [[Int]] = (0..<hosts).map { _ in
            var picked = Set<Int>()
            while picked.count < min(networksPerHost, networks) {
                let u = Double(rng.next() % 1_000_000) / 1_000_000
                picked.insert(Int(Double(networks) * u * u))
            }
            return picked.sorted()
        }
        var vni: [Int] = []
        var networkIDs: [String] = []
        for n in 0..<networks {
            let text = try await api.call(.POST, "/v2.0/networks", #"{"network": {"name": "scale-\#(n)"}}"#)
            let net = (try JSON.parse(Array(text.utf8)))["network"]
            guard let id = net?["id"]?.stringValue, case .int(let v)? = net?["provider:segmentation_id"] else { throw ValidationError("network: \(text.prefix(200))") }
            _ = try await api.create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(id)", "cidr": "10.\#(n % 256).0.0/16", "ip_version": 4}}"#, "subnet")
            networkIDs.append(id)
            vni.append(Int(v))
        }
        var portsOf = [[MACAddress]](repeating: [], count: hosts)  // what each node advertises
        var portNetwork: [MACAddress: Int] = [:]
        var next: UInt64 = 0x02_00_00_00_00_00
        func newMAC() -> MACAddress {
            next += 1
            return MACAddress(next)
        }
        print("creating \(spread.joined().count) ports over \(networks) networks for \(hosts) nodes …")
        for (h, nets) in spread.enumerated() {
            for n in nets {
                let mac = newMAC()
                let id = try await api.create("/v2.0/ports", #"{"port": {"network_id": "\#(networkIDs[n])", "binding:host_id": "node-\#(h)", "mac_address": "\#(mac)"}}"#, "port")
                if isReal.contains(h) { try real?.plug(port: id, mac: "\(mac)", node: h) }
                portsOf[h].append(mac)
                portNetwork[mac] = n
            }
        }

        // The reflector, and a session per node: its memberships and its ports' routes.
        // With real nodes, the reflector is 192.0.2.254 on their underlay, in the core namespace
        // with the simulated nodes, which reach it over its loopback.
        let rrAddress = real == nil ? "127.0.0.2" : ScaleRealNodes.coreAddress
        let bgpPort = try real == nil ? freePort(host: rrAddress) : 179
        let simulated = (0..<hosts).filter { !isReal.contains($0) }
        let rr = try Daemon(
            name: "scale-rr", executable: builtProduct("bagpipe-bgp"), arguments: ["--config-file", "$DIR/bgp.conf"],
            files: [
                "bgp.conf":
                    "[BGP]\nlocal_address = \(rrAddress)\nlisten_address = \(rrAddress)\nmy_as = 64512\nroute_reflector = True\nlisten_port = \(bgpPort)\npeers = \((simulated.map(Self.address) + (real?.peerAddresses ?? [])).joined(separator: ", "))\n"
            ])
        defer { rr.stop() }
        try waitForListener(port: bgpPort, host: rrAddress)
        try real?.startSpeakers()
        try real?.startAgents(controllerPort: apiPort)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let received = ReceivedRoutes(hosts: hosts)
        let base = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
        let vniOf = vni
        /// A node's E-VPN MAC/IP route for a port of network n, as its bagpipe-bgp advertises it.
        let route = { @Sendable (h: Int, mac: MACAddress, n: Int) -> (NLRIElement, [PathAttribute]) in
            let v = vniOf[n]
            let pe = IPv4Address(Self.address(h)) ?? IPv4Address(127, 1, 0, 1)
            let nlri = NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: .ipv4(pe, UInt16(v % 65536)), mac: mac, ip: nil, labelField1: UInt32(v)))))
            return (nlri, base + [PathAttribute(.extendedCommunities([Self.vniTarget(v), .encapsulation(.vxlan)]))])
        }
        var quiet = Logger(label: "bagpipe.bench.node")
        quiet.logLevel = .error  // a thousand sessions' state changes would bury the results
        var peers: [BGPPeer?] = []
        for h in 0..<hosts {
            guard !isReal.contains(h) else {
                peers.append(nil)
                continue
            }
            let pe = IPv4Address(Self.address(h)) ?? IPv4Address(127, 1, 0, 1)
            let peer = BGPPeer(
                configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: pe, families: [.evpn, .routeTargetConstraint], holdTime: 180, connectRetryTime: 1),
                remoteAddress: rrAddress, remotePort: bgpPort, localAddress: Self.address(h), eventLoop: group.next(), logger: quiet)
            peer.keepsAdjRIBIn = false
            peer.onUpdate = { received.add(h, $0) }
            let memberships = Set(spread[h].map { vni[$0] }).sorted().map { NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: Self.vniTarget($0)))) }
            peer.announce(memberships, family: .routeTargetConstraint, nextHop: .ipv4(pe), attributes: base)
            for mac in portsOf[h] {
                let (nlri, attributes) = route(h, mac, portNetwork[mac] ?? 0)
                peer.announce([nlri], family: .evpn, nextHop: .ipv4(pe), attributes: attributes)
            }
            peers.append(peer)
            peer.start()
        }
        let up = Date().addingTimeInterval(120)
        while try peers.contains(where: { try $0.map { try $0.state().wait() != .established } ?? false }) {
            guard Date() < up else { throw ValidationError("sessions not all up after 120 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Every node's initial routes, counted once: those of its networks' ports on other nodes.
        let expected = (0..<hosts).map { h in spread.enumerated().filter { $0.offset != h }.reduce(0) { n, other in n + other.element.filter { spread[h].contains($0) }.count } }
        let settled = try await eventually(timeout: 120) {
            for h in 0..<hosts {
                let count = isReal.contains(h) ? (await real?.macs(h).subtracting(portsOf[h].map { "\($0)".lowercased() }).count ?? 0) : received.count(h)
                if count < expected[h] { return false }
            }
            return true
        }
        guard settled else { throw ValidationError("the initial routes did not all arrive\n\(real?.logs() ?? "")") }
        print("\(hosts) sessions up, initial routes in place; \(hosts) watches opening …")

        // The watches: a node that sees its new port advertises its route.
        var versions: [Int64] = []
        for h in 0..<hosts {
            let view = try await api.call(.GET, "/v2.0/agent/hosts/node-\(h)/view", nil)
            guard case .int(let v)? = (try? JSON.parse(Array(view.utf8)))?["resource_version"] else { throw ValidationError("no view for node-\(h)") }
            versions.append(v)
        }
        let watchGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let watches = WatchClients(count: hosts)
        let awaitedPort = NIOLockedValueBox<(host: Int, mac: MACAddress, network: Int)?>(nil)
        let agentTimes = NIOLockedValueBox<Double?>(nil)
        let sessions = peers
        watches.onArrival.withLockedValue {
            $0 = { index in
                guard let awaited = awaitedPort.withLockedValue({ $0 }), awaited.host == index else { return }
                agentTimes.withLockedValue { $0 = now() }
                guard let session = sessions[index] else { return }  // a real node: its agent does the rest
                let (nlri, attributes) = route(index, awaited.mac, awaited.network)
                session.announce([nlri], family: .evpn, nextHop: .ipv4(IPv4Address(Self.address(index)) ?? IPv4Address(127, 1, 0, 1)), attributes: attributes)
            }
        }
        let requests = (0..<hosts).map { "GET /v2.0/agent/hosts/node-\($0)/watch?resource_version=\(versions[$0])&heartbeat=30 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: \(api.token)\r\n\r\n" }
        try await watches.connect(port: apiPort, requests: requests, group: watchGroup)
        guard try await eventually(timeout: 60, { watches.answered.withLockedValue { $0 } == hosts }) else { throw ValidationError("only \(watches.answered.withLockedValue { $0 }) watches answered") }

        // The timed ports.
        var timed: [Timed] = []
        for i in 0..<ports {
            let h = !realIndices.isEmpty && i % 4 == 0 ? realIndices[Int(rng.next() % UInt64(realIndices.count))] : Int(rng.next() % UInt64(hosts))
            let n = spread[h][Int(rng.next() % UInt64(spread[h].count))]
            let mac = newMAC()
            portNetwork[mac] = n
            let receivers = (0..<hosts).filter { $0 != h && spread[$0].contains(n) }
            received.await(mac, hosts: receivers.filter { !isReal.contains($0) })
            watches.await("\(mac)")
            awaitedPort.withLockedValue { $0 = (h, mac, n) }
            agentTimes.withLockedValue { $0 = nil }
            let start = now()
            let id = try await api.create("/v2.0/ports", #"{"port": {"network_id": "\#(networkIDs[n])", "binding:host_id": "node-\#(h)", "mac_address": "\#(mac)"}}"#, "port")
            // The real receivers' looking glasses are read while the port is plugged.
            let realReceivers = receivers.filter { isReal.contains($0) }
            async let arrivedAtReal = real?.arrival(of: "\(mac)", at: realReceivers, deadline: start + 30)
            if isReal.contains(h) { try real?.plug(port: id, mac: "\(mac)", node: h) }
            let realArrival = await arrivedAtReal
            guard real == nil || realArrival != nil, try await eventually(timeout: 30, { received.allArrived() }) else {
                throw ValidationError("port \(mac) did not reach every node of its network\n\(real?.logs() ?? "")")
            }
            timed.append(
                Timed(
                    onRealNode: isReal.contains(h), total: (max(received.lastArrival(), realArrival ?? 0) - start) * 1000,
                    toWatch: ((agentTimes.withLockedValue { $0 } ?? start) - start) * 1000, receivers: receivers.count, realReceivers: realReceivers.count))
            portsOf[h].append(mac)
        }
        watches.close()
        for p in peers { p?.stop() }
        try? await watchGroup.shutdownGracefully()
        try? await group.shutdownGracefully()
        print("")
        print("| nodes (real) | networks | ports | timed ports created on | count | port created → on every node of its network: median | p90 | p99 | max | of which API → the node's watch (median) | nodes per port (median) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for (label, rows) in [("any node", timed), ("a simulated node", timed.filter { !$0.onRealNode }), ("a real node", timed.filter(\.onRealNode))] where !rows.isEmpty {
            let total = rows.map(\.total).sorted(), toWatch = rows.map(\.toWatch).sorted(), receivers = rows.map(\.receivers).sorted()
            func p(_ a: [Double], _ q: Double) -> String { format(a[min(a.count - 1, Int(Double(a.count) * q))], 1) }
            print("| \(hosts) (\(realIndices.count)) | \(networks) | \(portNetwork.count) | \(label) | \(rows.count) | \(p(total, 0.5)) ms | \(p(total, 0.9)) ms | \(p(total, 0.99)) ms | \(format(total.last ?? 0, 1)) ms | \(p(toWatch, 0.5)) ms | \(receivers[receivers.count / 2]) |")
        }
        if !realIndices.isEmpty { print("(\(timed.filter { $0.realReceivers > 0 }.count) of the timed ports also had real nodes among their receivers, read from their looking glasses)") }

        // What each node holds, against what an l2population fan-out would send it.
        let allPorts = portNetwork.count
        var held: [Int] = []
        for h in 0..<hosts {
            if isReal.contains(h), let real {
                held.append((await real.macs(h)).subtracting(portsOf[h].map { "\($0)".lowercased() }).count)
            } else {
                held.append(received.count(h))
            }
        }
        held.sort()
        let fanOut = (0..<hosts).map { allPorts - portsOf[$0].count }.sorted()
        held = held.isEmpty ? [0] : held
        print("")
        print("| routes a node holds (RT-Constraint): median | p99 | max | an l2population fan-out sends each node: median | ratio |")
        print("|---|---|---|---|---|")
        print("| \(held[held.count / 2]) | \(held[min(held.count - 1, held.count * 99 / 100)]) | \(held.last ?? 0) | \(fanOut[fanOut.count / 2]) | \(format(Double(fanOut[fanOut.count / 2]) / Double(max(1, held[held.count / 2])), 1))× fewer |")
    }

    /// One timed port: where it was created, and how long until every node of its network held it.
    struct Timed {
        var onRealNode: Bool
        var total: Double
        var toWatch: Double
        var receivers: Int
        var realReceivers: Int
    }
}

/// The E-VPN MAC/IP routes each simulated node received (distinct MACs), and the arrival of one
/// awaited MAC at the nodes that should get it.
final class ReceivedRoutes: @unchecked Sendable {
    private let lock = NIOLock()
    private var macs: [Set<MACAddress>]
    private var awaited: MACAddress?
    private var waiting: Set<Int> = []
    private var last = 0.0

    init(hosts: Int) { macs = [Set<MACAddress>](repeating: [], count: hosts) }

    func count(_ h: Int) -> Int { lock.withLock { macs[h].count } }

    func await(_ mac: MACAddress, hosts: [Int]) {
        lock.withLock {
            awaited = mac
            waiting = Set(hosts)
            last = 0
        }
    }

    func allArrived() -> Bool { lock.withLock { waiting.isEmpty } }
    func lastArrival() -> Double { lock.withLock { last } }

    /// On the node's event loop.
    func add(_ h: Int, _ update: UpdateMessage) {
        var got: [MACAddress] = []
        for block in update.announced {
            for element in block { if case .evpn(.macIPAdvertisement(let r)) = element.nlri { got.append(r.mac) } }
        }
        guard !got.isEmpty else { return }
        let t = now()
        lock.withLock {
            macs[h].formUnion(got)
            if let a = awaited, waiting.contains(h), got.contains(a) {
                waiting.remove(h)
                last = max(last, t)
            }
        }
    }
}
