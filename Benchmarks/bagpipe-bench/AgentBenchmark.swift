import AgentCore
import AgentService
import ArgumentParser
import BGPWire
import AsyncHTTPClient
import BagpipeLab
import ControllerLab
import Foundation
import Logging
import Netlink
import NeutronModel

/// Issue 14, acceptance 4:
/// - one agent with 1,000 ports over 100 networks (a real controller and a real bagpipe-bgp with the
///   dummy dataplane; every port's interface taken as present): the agent's start until bagpipe-bgp
///   holds every attachment, and one controller write that changes all of them (a BGPVPN's route
///   targets, associated with every network) until bagpipe-bgp holds the new ones;
/// - two compute nodes in namespaces (controller, agents, bagpipe-bgp with the Linux drivers, our
///   reflector): a port bound to host A and its tap created there, until its MAC is in host B's FDB.
struct AgentBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agent", abstract: "bagpipe-agent: attachments applied, and the bind-to-remote-FDB delay.")

    @Option(help: "Ports of the agent's host.") var ports = 1000
    @Option(help: "Networks they are spread over.") var networks = 100
    @Option(help: "Ports bound and plugged on host A whose MAC is awaited in host B's FDB.") var probes = 30
    @Flag(help: "Only the two-host delay.") var delayOnly = false

    func run() async throws {
        print("| one agent, \(ports) ports over \(networks) networks | attachments | seconds | attachments/s |")
        print("|---|---|---|---|")
        if !delayOnly { try await applyAll() }
        fflush(nil)
        let (delays, _) = try await bindToRemoteFDB()
        func at(_ p: Double) -> String { format(delays[min(delays.count - 1, Int(Double(delays.count) * p))] * 1000, 1) + " ms" }
        print("")
        print("| port bound to host A (its POST answered) and plugged there → its MAC in host B's FDB | probes | median | p90 | max |")
        print("|---|---|---|---|---|")
        print("| two compute nodes (agent, bagpipe-bgp with the Linux drivers), controller, our reflector | \(delays.count) | \(at(0.5)) | \(at(0.9)) | \(at(1)) |")

    }

    // MARK: - One agent, many ports

    /// Every port of the view taken as plugged on a Linux bridge: what the host's interfaces would say.
    final class EveryPortPlugged: PortPlugger {
        var patchPorts: OVSPatchPorts? { nil }
        func setUp() async throws {}
        func scan(wanted: [String: ViewPort]) async throws -> [String: PortPlug] {
            wanted.mapValues { .linux(tap: NeutronDeviceNames.tap($0.id), bridge: NeutronDeviceNames.bridge($0.networkID)) }
        }
    }

    func applyAll() async throws {
        let controller = try await ControllerDaemon()
        defer { controller.stop() }
        let apiPort = try freePort()
        let bgp = try Daemon(
            name: "bagpipe-bgp-bench", executable: builtProduct("bagpipe-bgp"), arguments: ["--config-file", "$DIR/bgp.conf"],
            files: ["bgp.conf": "[BGP]\nlocal_address = 127.0.0.1\nmy_as = 64512\npeers =\n[API]\nport = \(apiPort)\n"])
        defer { bgp.stop() }
        let admin = try await controller.token("admin")
        func create(_ path: String, _ body: String, _ member: String) async throws -> String {
            let r = try await controller.request(.POST, path, token: admin, body: body)
            guard r.status == 201, let id = r.json?[member]?["id"]?.stringValue else { throw FDBBenchmark.BenchError("POST \(path): \(r.status) \(r.body.prefix(300))") }
            return id
        }
        var networkIDs: [String] = []
        for i in 0..<networks {
            let n = try await create("/v2.0/networks", #"{"network": {"name": "bench-\#(i)"}}"#, "network")
            _ = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(n)", "cidr": "10.\#(i / 250).\#(i % 250).0/24", "ip_version": 4}}"#, "subnet")
            networkIDs.append(n)
        }
        let perClient = ports / 4
        let ids = networkIDs
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<4 {
                group.addTask {
                    for i in 0..<perClient {
                        _ = try await create("/v2.0/ports", #"{"port": {"network_id": "\#(ids[(c * perClient + i) % ids.count])", "binding:host_id": "compute-1", "device_owner": "compute:nova"}}"#, "port")
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = perClient * 4
        guard try await eventually(timeout: 20, { (try? await ControllerDaemon.get("http://127.0.0.1:\(apiPort)/ping")) != nil }) else { throw FDBBenchmark.BenchError("bagpipe-bgp did not start:\n\(bgp.log)") }

        var c = AgentConfiguration()
        c.host = "compute-1"
        c.controllerURL = controller.url
        c.username = "compute-1"
        c.password = "secret"
        c.dataplane = .linux
        c.bagpipeBGPPort = apiPort
        c.pingInterval = 10
        c.watchHeartbeat = 1
        var logger = Logger(label: "bagpipe.agent")
        logger.logLevel = .warning
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let agent = Agent(
            configuration: c, controller: ControllerClient(configuration: c, http: http), bagpipe: BagpipeBGPClient(baseURL: c.bagpipeBGPURL, http: http), plugger: EveryPortPlugged(),
            logger: logger)

        // 1. The agent starts with every port in its view.
        var start = now()
        let running = Task { try await agent.run() }
        defer { running.cancel() }
        guard try await eventually(timeout: 120, { await agent.appliedCount == total }) else { throw FDBBenchmark.BenchError("the agent applied \(await agent.appliedCount) of \(total)") }
        let cold = now() - start
        print("| the agent starts: list, then every E-VPN attachment | \(total) | \(format(cold, 3)) | \(Int(Double(total) / cold)) |")

        // 2. A BGPVPN on every network: an IP VPN attachment per port.
        let vpn = try await create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"name": "bench", "route_targets": ["64512:1"]}}"#, "bgpvpn")
        start = now()
        for n in networkIDs { _ = try await create("/v2.0/bgpvpn/bgpvpns/\(vpn)/network_associations", #"{"network_association": {"network_id": "\#(n)"}}"#, "network_association") }
        let written = now() - start
        guard try await eventually(timeout: 120, { await agent.appliedCount == 2 * total }) else { throw FDBBenchmark.BenchError("the agent applied \(await agent.appliedCount) of \(2 * total)") }
        let associated = now() - start
        print("| \(networks) network associations written (\(format(written, 2)) s), until every IP VPN attachment | \(total) | \(format(associated, 3)) | \(Int(Double(total) / associated)) |")

        // 3. One write (the BGPVPN's route targets) that changes every IP VPN attachment.
        let before = await agent.statistics
        start = now()
        let r = try await controller.request(.PUT, "/v2.0/bgpvpn/bgpvpns/\(vpn)", token: admin, body: #"{"bgpvpn": {"route_targets": ["64512:2"]}}"#)
        guard r.status == 200 else { throw FDBBenchmark.BenchError("PUT bgpvpn: \(r.status)") }
        guard try await eventually(timeout: 120, {
            let done = await agent.appliedCount(withRouteTarget: "64512:2")
            let converged = await agent.isConverged
            return done == total && converged
        }) else {
            throw FDBBenchmark.BenchError("the agent re-attached \(await agent.appliedCount(withRouteTarget: "64512:2")) of \(total)")
        }
        let updated = now() - start
        let after = await agent.statistics
        if ProcessInfo.processInfo.environment["BAGPIPE_BENCH_DEBUG"] != nil { print("reconciles \(after.reconciles - before.reconciles), attach calls \(after.attachCalls - before.attachCalls)") }
        print("| one write (the BGPVPN's route targets) until bagpipe-bgp holds every new attachment | \(total) | \(format(updated, 3)) | \(Int(Double(total) / updated)) |")
        running.cancel()
        _ = await running.result
        try await http.shutdown()
    }

    // MARK: - Two hosts

    func bindToRemoteFDB() async throws -> (delays: [Double], posts: [Double]) {
        let lab = try ComputeLab(hosts: ["compute-1", "compute-2"])
        defer { lab.stop() }
        try await lab.start()
        let net = try await lab.network(vni: 1700, cidr: "10.70.0.0/24")
        // A port of the network on B: B imports the network's routes (RT-Constraint).
        _ = try await lab.bootVM("b1", network: net, host: "compute-2", gateway: "10.70.0.1")
        guard let a = lab.lab.hosts["compute-1"], let b = lab.lab.hosts["compute-2"] else { throw FDBBenchmark.BenchError("no hosts") }
        let fdb = try NetlinkSocket(namespace: b), hostA = try NetlinkSocket(namespace: a)
        var delays: [Double] = [], posts: [Double] = [], taps: [Double] = [], afterPlug: [Double] = []
        for _ in 0..<probes {
            let start = now()
            let port = try await lab.create("/v2.0/ports", #"{"port": {"network_id": "\#(net)", "binding:host_id": "compute-1", "device_owner": "compute:nova"}}"#, "port")
            let bound = now()
            posts.append(bound - start)
            guard let id = port["id"]?.stringValue, let macText = port["mac_address"]?.stringValue, let mac = MACAddress(macText) else { throw FDBBenchmark.BenchError("no port") }
            // The VM's interface: a veth whose other end stays on the host (no VM behind it), made
            // over netlink (an `ip` process would take longer than the agent).
            try hostA.performAll(LinkRequests.createVeth(NeutronDeviceNames.tap(id), peer: "vm\(delays.count)", alias: nil))
            let plugged = now()
            taps.append(plugged - bound)
            // Polled every millisecond (a netlink dump of B's FDB).
            while try !fdb.fdbEntries().contains(where: { $0.mac == mac && $0.destination != nil }) {
                guard now() - bound < 30 else { throw FDBBenchmark.BenchError("\(macText) never reached B's FDB:\n\(lab.diagnostics())") }
                try await Task.sleep(nanoseconds: 1_000_000)
            }
            delays.append(now() - bound)
            afterPlug.append(now() - plugged)
        }
        func median(_ v: [Double]) -> String { format(v.sorted()[v.count / 2] * 1000, 1) + " ms" }
        print("(medians: the POST that binds the port \(median(posts)); creating its tap \(median(taps)); from the tap to B's FDB \(median(afterPlug)))")
        return (delays.sorted(), posts.sorted())
    }
}
