import AgentCore
import AgentService
import AsyncHTTPClient
import BagpipeLab
import ControllerLab
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NeutronModel
import Synchronization
import Testing

/// A recording stand-in for bagpipe-bgp's REST API: it answers `GET /ping` with a number the test
/// sets, records every `attach_localport` and `detach_localport` body in order, can be told to fail
/// calls, and serves looking-glass instances the test gives.
final class RecordingBagpipeBGP: Sendable {
    struct Call: Sendable, CustomStringConvertible {
        var path: String
        var body: JSONObject
        var isAttach: Bool { path == "/attach_localport" }
        var instance: String { body["vpn_instance_id"]?.stringValue ?? "" }
        var description: String { "\(isAttach ? "attach" : "detach") \(JSON.object(body).serialized)" }
    }

    struct State: Sendable {
        var calls: [Call] = []
        var ping = "340282366920938463463374607431768211455"
        var pingFails = false
        /// Attach and detach calls answer 500 while this is above 0 (it counts down).
        var failures = 0
        /// Calls to these paths answer 500.
        var failingPaths: Set<String> = []
        /// Instances of the looking glass: id → (name, the `ports` subtree).
        var lookingGlass: [String: (name: String, ports: JSON)] = [:]
    }

    let state = NIOLockedValueBox(State())
    let port: Int
    private let server: Task<Void, any Error>

    init() async throws {
        let router = Router()
        let state = self.state
        router.get("/ping") { _, _ -> Response in
            let (text, fails) = state.withLockedValue { ($0.ping, $0.pingFails) }
            return Response(status: fails ? .serviceUnavailable : .ok, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        for path in ["/attach_localport", "/detach_localport"] {
            router.post(RouterPath(stringLiteral: path)) { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                guard let o = try? JSON.parse(String(buffer: body)).objectValue else { return Response(status: .badRequest) }
                let fail = state.withLockedValue { s -> Bool in
                    s.calls.append(Call(path: path, body: o))
                    if s.failingPaths.contains(path) { return true }
                    if s.failures > 0 {
                        s.failures -= 1
                        return true
                    }
                    return false
                }
                return Response(status: fail ? .internalServerError : .ok, body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
        }
        router.get("/looking-glass/vpns/instances") { _, _ -> Response in
            let list = state.withLockedValue { $0.lookingGlass.map { ($0.key, $0.value.name) }.sorted { $0.0 < $1.0 } }
            return Self.json(.array(list.map { .object(JSONObject([("id", .string($0.0)), ("name", .string($0.1))])) }))
        }
        router.get("/looking-glass/vpns/instances/{id}/ports") { _, context -> Response in
            let node = state.withLockedValue { $0.lookingGlass[context.parameters.get("id") ?? ""]?.ports }
            return node.map(Self.json) ?? Response(status: .notFound)
        }
        // Port 0: the kernel picks a free one, which the running server tells (no race with another
        // test taking a port found free).
        let bound = NIOLockedValueBox<Int?>(nil)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { channel in bound.withLockedValue { $0 = channel.localAddress?.port } },
            logger: Logger(label: "fake-bagpipe-bgp"))
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        self.server = server
        // A loaded CI machine can take a while to start it.
        guard try await eventually(timeout: 60, { bound.withLockedValue { $0 } != nil }), let port = bound.withLockedValue({ $0 }) else {
            server.cancel()
            throw ControllerTestError("the fake bagpipe-bgp did not start within 60 s")
        }
        self.port = port
    }

    static func json(_ v: JSON) -> Response { Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: v.serialized))) }

    func stop() { server.cancel() }

    var calls: [Call] { state.withLockedValue { $0.calls } }
    /// The calls after the first `from`.
    func calls(since from: Int) -> [Call] { Array(calls.dropFirst(from)) }
}

/// Ports plugged as the test says: a port's interface is "there" once the test plugs it.
final class FixedPortPlugger: PortPlugger {
    let plugs = Mutex<[String: PortPlug]>([:])
    let patchPorts: OVSPatchPorts?
    init(patchPorts: OVSPatchPorts? = nil) { self.patchPorts = patchPorts }
    func setUp() async throws {}
    func scan(wanted: [String: ViewPort]) async throws -> [String: PortPlug] {
        plugs.withLock { p in p.filter { wanted[$0.key] != nil } }
    }
    func plug(_ port: String, _ plug: PortPlug) { plugs.withLock { $0[port] = plug } }
    func unplug(_ port: String) { _ = plugs.withLock { $0.removeValue(forKey: port) } }
}

/// A real controller, the recording bagpipe-bgp, and an agent for host compute-1 between them.
/// These tests hold the agent to the OpenStack agent's calls: the controller runs without
/// distributed routing (which adds each router's own route target), unless a test asks for it.
final class AgentHarness: @unchecked Sendable {
    private(set) var controller: ControllerDaemon
    let bagpipe: RecordingBagpipeBGP
    let plugger: FixedPortPlugger
    let admin: String
    let agentToken: String
    var configuration: AgentConfiguration
    private(set) var agent: Agent
    private var running: Task<Void, any Error>?
    static let http = HTTPClient(eventLoopGroupProvider: .singleton)

    let controllerExtra: String

    init(
        extensions: Set<AgentExtension> = [.bagpipe, .bagpipeBGPVPN], dataplane: AgentConfiguration.DataplaneKind = .linux, patchPorts: OVSPatchPorts? = nil,
        distributedRouting: Bool = false
    ) async throws {
        controllerExtra = "[distributed_routing]\nenabled = \(distributedRouting ? "True" : "False")"
        controller = try await ControllerDaemon(extra: controllerExtra)
        do {
            bagpipe = try await RecordingBagpipeBGP()
        } catch {
            controller.stop()
            throw error
        }
        plugger = FixedPortPlugger(patchPorts: patchPorts)
        admin = try await controller.token("admin")
        agentToken = try await controller.token("compute-1")
        var c = AgentConfiguration()
        c.host = "compute-1"
        c.controllerURL = controller.url
        c.username = "compute-1"
        c.password = "secret"
        c.dataplane = dataplane
        c.extensions = extensions
        c.pollingInterval = 0.05
        c.pingInterval = 0.1
        c.watchHeartbeat = 0.5
        c.requestTimeout = 30
        c.bagpipeBGPPort = bagpipe.port
        configuration = c
        agent = Self.makeAgent(c, plugger)
    }

    static func makeAgent(_ c: AgentConfiguration, _ plugger: FixedPortPlugger) -> Agent {
        var logger = Logger(label: "bagpipe.agent")
        logger.logLevel = ProcessInfo.processInfo.environment["BAGPIPE_TEST_AGENT_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return Agent(
            configuration: c, controller: ControllerClient(configuration: c, http: http), bagpipe: BagpipeBGPClient(baseURL: c.bagpipeBGPURL, http: http, timeout: c.requestTimeout),
            plugger: plugger, logger: logger)
    }

    func start() {
        let agent = self.agent
        running = Task { try await agent.run() }
    }

    /// The agent process "dies" and a new one starts with nothing in memory.
    func restartAgent() async {
        running?.cancel()
        _ = await running?.result
        agent = Self.makeAgent(configuration, plugger)
        start()
    }

    /// The controller process stops and starts again on its database and port.
    func restartController() async throws {
        controller.daemon.kill()
        controller = try await ControllerDaemon(directory: controller.daemon.directory, port: controller.port, extra: controllerExtra)
    }

    func stopAgent() async {
        running?.cancel()
        _ = await running?.result
        running = nil
    }

    /// Everything the harness started goes, synchronously (a `defer` can call it).
    func stop() {
        running?.cancel()
        bagpipe.stop()
        controller.stop()
    }

    /// Waits until the agent has seen every change of its host's view up to now and bagpipe-bgp holds
    /// what it means.
    func settle(_ sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await controller.request(.GET, "/v2.0/agent/hosts/compute-1/view", token: agentToken)
        guard case .int(let version)? = r.json?["resource_version"] else { throw ControllerTestError("view: \(r.status) \(r.body)") }
        let agent = self.agent
        let seen = try await eventually(timeout: 30) { await agent.viewVersion >= version }
        // Then a look at the interfaces that began after the agent had that version, and nothing
        // left to send.
        let scans = await agent.statistics.scans + 2
        let done = try await eventually(timeout: seen ? 30 : 0) {
            let scanned = await agent.statistics.scans >= scans
            let converged = await agent.isConverged
            return scanned && converged
        }
        #expect(done, "the agent did not converge; calls: \(bagpipe.calls)", sourceLocation: sourceLocation)
    }

    // MARK: - The controller's API

    @discardableResult
    func create(_ path: String, _ body: String, _ member: String) async throws -> JSON {
        let r = try await controller.request(.POST, path, token: admin, body: body)
        guard r.status == 201, let o = r.json?[member] else { throw ControllerTestError("POST \(path): \(r.status) \(r.body)") }
        return o
    }

    func id(_ o: JSON) -> String { o["id"]?.stringValue ?? "" }

    func update(_ path: String, _ body: String) async throws {
        let r = try await controller.request(.PUT, path, token: admin, body: body)
        guard r.status == 200 else { throw ControllerTestError("PUT \(path): \(r.status) \(r.body)") }
    }

    func delete(_ path: String) async throws {
        let r = try await controller.request(.DELETE, path, token: admin)
        guard r.status == 204 else { throw ControllerTestError("DELETE \(path): \(r.status) \(r.body)") }
    }

    /// A VXLAN network with the given VNI and an IPv4 subnet.
    func network(vni: Int, cidr: String) async throws -> (network: String, subnet: JSON) {
        let n = id(try await create("/v2.0/networks", #"{"network": {"name": "n\#(vni)", "provider:network_type": "vxlan", "provider:segmentation_id": \#(vni)}}"#, "network"))
        let s = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(n)", "cidr": "\#(cidr)", "ip_version": 4}}"#, "subnet")
        return (n, s)
    }

    /// A VM port bound to compute-1.
    func port(_ network: String, host: String = "compute-1") async throws -> JSON {
        try await create("/v2.0/ports", #"{"port": {"network_id": "\#(network)", "binding:host_id": "\#(host)", "device_owner": "compute:nova"}}"#, "port")
    }

    func bgpvpn(_ fields: String) async throws -> String {
        id(try await create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {\#(fields)}}"#, "bgpvpn"))
    }

    func associate(_ bgpvpn: String, network: String) async throws -> String {
        id(try await create("/v2.0/bgpvpn/bgpvpns/\(bgpvpn)/network_associations", #"{"network_association": {"network_id": "\#(network)"}}"#, "network_association"))
    }
}

/// A JSON object from pairs, in order (the tests write expected bodies as the reference does).
func object(_ pairs: KeyValuePairs<String, JSON>) -> JSONObject { JSONObject(pairs.map { ($0.key, $0.value) }) }
