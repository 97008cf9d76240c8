import ArgumentParser
import AsyncHTTPClient
import BagpipeLab
import Foundation
import NIOCore

/// The sample of real compute nodes in `bagpipe-bench scale`: each a namespace on a lab underlay
/// with bagpipe-bgp (Linux drivers) and bagpipe-agent, peering with the benchmark's reflector and
/// watching its controller. Both of those, and the simulated nodes' sockets, then have to live in a
/// namespace the underlay reaches: the benchmark runs itself again inside a "core" namespace
/// (192.0.2.254 on the underlay, the simulated nodes on its loopback), so no traffic ever leaves
/// namespaces the benchmark created.
final class ScaleRealNodes: @unchecked Sendable {
    static let coreVariable = "BAGPIPE_SCALE_CORE"
    static let coreAddress = "192.0.2.254"

    /// In the outer run: creates the core namespace, runs the same command inside it, and removes
    /// the namespace whatever happens.
    static func runInsideCore() throws {
        guard getuid() == 0 else { throw ValidationError("--real-nodes needs root (it creates network namespaces); --real-nodes 0 runs simulated nodes only") }
        let spaces = TestNamespaces()
        defer { spaces.remove() }
        let core = try spaces.add("scale-core")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/usr/bin/ip")
        process.arguments = ["netns", "exec", core, URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path] + CommandLine.arguments.dropFirst()
        process.environment = ProcessInfo.processInfo.environment.merging([coreVariable: core]) { $1 }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ExitCode(process.terminationStatus) }
    }

    let lab: Lab
    /// The node indices that are real, and each one's underlay address.
    let nodes: [Int]
    private let address: [Int: String]

    /// Inside the core namespace `core`: the underlay, and a namespace per real node.
    init(core: String, nodes: [Int]) throws {
        lab = try Lab()
        self.nodes = nodes
        var address: [Int: String] = [:]
        for (k, h) in nodes.enumerated() { address[h] = "192.0.2.\(k + 1)" }
        self.address = address
        try lab.plugIntoUnderlay("core", namespace: core)
        try run(["ip", "-n", core, "addr", "add", "\(Self.coreAddress)/24", "dev", "eth0"])
        lab.hosts["core"] = core
        lab.addresses["core"] = Self.coreAddress
        for h in nodes { try lab.addHost(Self.name(h), address: address[h] ?? "") }
    }

    static func name(_ h: Int) -> String { "node-\(h)" }
    var peerAddresses: [String] { nodes.compactMap { address[$0] } }
    /// The controller's accounts for the real agents.
    var accounts: [String] { nodes.map { "\(Self.name($0)) = secret, service, agent" } }

    /// bagpipe-bgp on every real node, its API also on the underlay so the benchmark can read its
    /// looking glass; the reflector listens on 179 in the core namespace.
    func startSpeakers() throws {
        for h in nodes { try lab.startHost(Self.name(h), reflector: "core", extra: "host = 0.0.0.0") }
    }

    func startAgents(controllerPort: Int) throws {
        for h in nodes {
            let host = Self.name(h)
            guard let ns = lab.hosts[host] else { continue }
            lab.daemons["agent-\(host)"] = try Daemon(
                name: "agent-\(host)", executable: lab.ipCommand, arguments: ["netns", "exec", ns, builtProduct("bagpipe-agent"), "--config-file", "$DIR/agent.conf"],
                files: [
                    "agent.conf": """
                    [DEFAULT]
                    host = \(host)
                    [controller]
                    url = http://\(Self.coreAddress):\(controllerPort)
                    username = \(host)
                    password = secret
                    [agent]
                    dataplane = linux
                    extensions = bagpipe
                    [BAGPIPE]
                    bagpipe_bgp_ip = 127.0.0.1
                    bagpipe_bgp_port = 8082
                    [ml2_bagpipe_extension]
                    as_number = 64512
                    """
                ])
        }
    }

    /// What Nova's Linux plugging leaves for a port: its tap device on the host (here a veth whose
    /// other end stays on the host too; no packet is sent).
    func plug(port id: String, mac: String, node h: Int) throws {
        guard let ns = lab.hosts[Self.name(h)] else { return }
        let tap = "tap" + id.prefix(11), peer = "v" + id.prefix(11)
        try run(["ip", "-n", ns, "link", "add", tap, "up", "type", "veth", "peer", "name", peer, "address", mac])
    }

    /// The node's BGP routes as its looking glass shows them.
    func routes(_ h: Int) async -> String {
        guard let a = address[h] else { return "" }
        var request = HTTPClientRequest(url: "http://\(a):8082/looking-glass/bgp/routes")
        request.method = .GET
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)), let body = try? await response.body.collect(upTo: 1 << 24) else { return "" }
        return String(buffer: body)
    }

    /// The E-VPN MAC/IP routes the node holds: distinct MACs in its `type2:` NLRIs.
    func macs(_ h: Int) async -> Set<String> {
        var found = Set<String>()
        for piece in await routes(h).components(separatedBy: "type2:").dropFirst() {
            // type2:<RD>:<MAC>[:<IP>] — the RD is `a.b.c.d:n` or `as:n`, the MAC six hex pairs.
            let fields = piece.prefix(while: { $0 != "\"" }).split(separator: ":")
            guard fields.count >= 8 else { continue }
            found.insert(fields[2..<8].joined(separator: ":").lowercased())
        }
        return found
    }

    /// Polls the real receivers' looking glasses until each holds `mac`; the time the last got it.
    func arrival(of mac: String, at receivers: [Int], deadline: Double) async -> Double? {
        var last = 0.0
        var waiting = Set(receivers)
        while !waiting.isEmpty {
            guard now() < deadline else { return nil }
            for h in waiting where await macs(h).contains(mac.lowercased()) {
                waiting.remove(h)
                last = now()
            }
            if !waiting.isEmpty { try? await Task.sleep(for: .milliseconds(2)) }
        }
        return last
    }

    func logs() -> String { lab.logs() }
    func stop() { lab.stop() }
}
