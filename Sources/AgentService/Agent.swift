import AgentCore
import Foundation
import Logging
import NeutronModel

/// The agent: it keeps the host's view (listed, then watched), the ports whose interface is plugged,
/// and the attachments bagpipe-bgp holds, and converges bagpipe-bgp on what the view means. Nothing
/// here replays events: every change only marks the state dirty, and one reconcile sends the
/// difference between what should be attached and what is (reference §2.4, §4.4).
public actor Agent {
    let configuration: AgentConfiguration
    let controller: any ControllerAPI
    let bagpipe: any BagpipeBGPAPI
    let plugger: any PortPlugger
    let logger: Logger

    var cache = ViewCache()
    var model = HostViewModel()
    var plugged: [String: PortPlug] = [:]
    /// The status last reported for each port (true: ACTIVE).
    var reported: [String: Bool] = [:]
    var applied: [AttachmentKey: Attachment] = [:]
    /// Attachments bagpipe-bgp refused (4xx): not sent again until they change.
    var refused: [AttachmentKey: JSONObject] = [:]
    /// bagpipe-bgp's start number (GET /ping) and whether it answers.
    var bagpipeNumber: String?
    var bagpipeUp = false
    var retryDelay = Backoff()
    /// Grows at each replay: an answer to a call sent before it does not count as applied.
    var epoch = 0
    private let kicks: AsyncStream<Void>
    private let kick: AsyncStream<Void>.Continuation
    /// Looks at the interfaces wanted: on a change the dataplane reports, a change of the view's
    /// ports, and every polling interval.
    private let scanKicks: AsyncStream<Void>
    private let scanKick: AsyncStream<Void>.Continuation
    /// What the tests and the metrics read.
    public private(set) var statistics = Statistics()

    public struct Statistics: Sendable, Equatable {
        public var reconciles = 0
        public var attachCalls = 0
        public var detachCalls = 0
        public var failedCalls = 0
        public var replays = 0
        public var relists = 0
        /// Looks at the host's interfaces begun.
        public var scans = 0
    }

    public init(configuration: AgentConfiguration, controller: any ControllerAPI, bagpipe: any BagpipeBGPAPI, plugger: any PortPlugger, logger: Logger) {
        self.configuration = configuration
        self.controller = controller
        self.bagpipe = bagpipe
        self.plugger = plugger
        self.logger = logger
        (kicks, kick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (scanKicks, scanKick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Runs until cancelled.
    public func run() async throws {
        try await plugger.setUp()
        await listUntilDone()
        await scanOnce()
        await startUp()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watchLoop() }
            group.addTask { await self.pingLoop() }
            group.addTask { await self.scanLoop() }
            group.addTask { await self.scanTicker() }
            group.addTask {
                for await _ in self.plugger.changes() { await self.kickScan() }
            }
            group.addTask { await self.reconcileLoop() }
            await group.waitForAll()
        }
    }

    // MARK: - The view

    func listUntilDone() async {
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                try cache.load(view: try await controller.view())
                refreshModel()
                logger.info("listed the host's view", metadata: ["version": "\(cache.version)", "ports": "\(model.ports.count)", "networks": "\(model.networks.count)"])
                return
            } catch {
                logger.warning("cannot list the host's view from the controller, retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff.current)s"])
                await backoff.sleep()
            }
        }
    }

    func refreshModel() {
        let (m, skipped) = cache.model()
        for s in skipped { logger.error("an object of the view does not read; left out", metadata: ["object": "\(s)"]) }
        if m.ports != model.ports { scanKick.yield() }
        model = m
        kick.yield()
    }

    func kickScan() { scanKick.yield() }

    /// The watch from the cache's version; after a break it resumes from the last version seen, after
    /// 410 it lists again. A stream silent for three heartbeats is dead: it is dropped and reopened.
    func watchLoop() async {
        var backoff = Backoff()
        let heartbeat = configuration.watchHeartbeat
        while !Task.isCancelled {
            do {
                let stream = try await controller.watch(from: cache.version, heartbeat: heartbeat)
                backoff.reset()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let watchdog = Watchdog(limit: heartbeat * 3)
                    group.addTask {
                        for try await event in stream {
                            await watchdog.touch()
                            try await self.apply(event)
                        }
                    }
                    group.addTask {
                        try await watchdog.run()
                        throw ControllerClient.Failure(description: "no event nor heartbeat for \(heartbeat * 3) s", status: nil)
                    }
                    try await group.next()
                    group.cancelAll()
                }
            } catch is ControllerClient.Gone {
                logger.info("the controller no longer keeps version \(cache.version): listing again")
                statistics.relists += 1
                await listUntilDone()
            } catch {
                if Task.isCancelled { return }
                logger.warning("the watch broke, resuming", metadata: ["version": "\(cache.version)", "error": "\(error)", "retry_in": "\(backoff.current)s"])
                await backoff.sleep()
            }
        }
    }

    /// One event updates the one object of the typed view it names; a change the agent does not read
    /// (a port's status, which its own reports cause) kicks nothing.
    func apply(_ event: JSON) throws {
        guard case .changed(let key, let object) = try cache.apply(event: event) else { return }
        do {
            guard try model.set(key, object) else { return }
        } catch {
            logger.error("an object of the view does not read; left out", metadata: ["object": "\(key): \(error)"])
        }
        // The ports wanted changed: look at the interfaces for them.
        if key.kind == .port { scanKick.yield() }
        kick.yield()
    }

    // MARK: - Ports

    func scanLoop() async {
        for await _ in scanKicks {
            if Task.isCancelled { return }
            await scanOnce()
        }
    }

    func scanTicker() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(configuration.pollingInterval))
            await repairDataplane()
            scanKick.yield()
        }
    }

    /// The host's layout back after its dataplane lost it (ovs-vswitchd restarted).
    func repairDataplane() async {
        do {
            if try await plugger.repairIfReset() {
                logger.notice("the dataplane lost the agent's layout (ovs-vswitchd restarted?): laid out again")
                kick.yield()
            }
        } catch {
            logger.error("cannot check the dataplane's layout", metadata: ["error": "\(error)"])
        }
    }

    func scanOnce() async {
        statistics.scans += 1
        do {
            let now = try await plugger.scan(wanted: model.ports)
            if now != plugged {
                for id in Set(now.keys).subtracting(plugged.keys).sorted() { logger.info("port plugged", metadata: ["port": "\(id)"]) }
                for id in Set(plugged.keys).subtracting(now.keys).sorted() { logger.info("port unplugged", metadata: ["port": "\(id)"]) }
                plugged = now
                kick.yield()
            }
        } catch {
            logger.error("cannot look at the host's interfaces", metadata: ["error": "\(error)"])
        }
        await reportStatus()
    }

    /// ACTIVE for a plugged port of the view, DOWN for one that was and no longer is; a report that
    /// fails is made again on the next scan.
    func reportStatus() async {
        var wanted: [String: Bool] = [:]
        for id in model.ports.keys { wanted[id] = plugged[id] != nil }
        let changes = wanted.filter { id, up in reported[id] != up && (up || reported[id] != nil) }
        if !changes.isEmpty {
            // One controller write for all of them (the L2 agent's update_device_list).
            do {
                let unknown = Set(try await controller.setPortStatuses(changes))
                for (id, up) in changes where !unknown.contains(id) { reported[id] = up }
            } catch {
                if Task.isCancelled { return }
                logger.warning("cannot report the ports' status; reported again on the next look", metadata: ["ports": "\(changes.count)", "error": "\(error)"])
            }
        }
        for id in reported.keys where wanted[id] == nil { reported[id] = nil }
    }

    // MARK: - bagpipe-bgp

    /// After the agent's own start: bagpipe-bgp's endpoints that an agent attached and that do not
    /// belong to the view any more are detached; the rest is sent again (an attach is idempotent).
    func startUp() async {
        await pingOnce()
        guard bagpipeUp else { return }
        do {
            let present = try await bagpipe.agentEndpoints()
            let wanted = Set(desiredAttachments().map { EndpointIdentity($0.key) })
            for e in present where !wanted.contains(EndpointIdentity(e)) {
                var body = JSONObject([("vpn_instance_id", .string(e.vpnInstanceID)), ("vpn_type", .string(e.vpnType.rawValue)), ("mac_address", .string(e.macAddress))])
                if let ip = e.ipAddress { body["ip_address"] = .string(ip) }
                body["local_port"] = .object(JSONObject([("linuxif", .string(e.linuxif))]))
                logger.info("detaching what no longer belongs", metadata: ["instance": "\(e.vpnInstanceID)", "port": "\(e.portID ?? "?")", "mac": "\(e.macAddress)"])
                do {
                    statistics.detachCalls += 1
                    try await bagpipe.detach(body)
                } catch {
                    statistics.failedCalls += 1
                    logger.error("detach failed", metadata: ["instance": "\(e.vpnInstanceID)", "error": "\(error)"])
                }
            }
        } catch {
            logger.warning("cannot read bagpipe-bgp's looking glass: stale attachments of a previous run stay", metadata: ["error": "\(error)"])
        }
    }

    func pingLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(configuration.pingInterval))
            await pingOnce()
        }
    }

    /// A new number is a restarted bagpipe-bgp: everything is sent again. So is bagpipe-bgp coming
    /// back with the same number after failed pings (the original stays DOWN then, §2.6).
    func pingOnce() async {
        do {
            let number = try await bagpipe.ping()
            if number != bagpipeNumber || !bagpipeUp {
                if bagpipeNumber != nil {
                    logger.notice("bagpipe-bgp is back: sending every attachment again", metadata: ["number": "\(number)", "restarted": "\(number != bagpipeNumber)"])
                    statistics.replays += 1
                }
                bagpipeNumber = number
                bagpipeUp = true
                epoch += 1
                applied = [:]
                refused = [:]
                kick.yield()
            }
        } catch {
            if Task.isCancelled { return }
            if bagpipeUp { logger.error("bagpipe-bgp does not answer GET /ping: attaches wait", metadata: ["error": "\(error)"]) }
            bagpipeUp = false
        }
    }

    /// What bagpipe-bgp should hold: every plugged port's attachments, but those it refused as they
    /// are (they wait for a change).
    func desiredAttachments() -> [Attachment] {
        let dataplane: AttachmentPlanner.Dataplane
        switch configuration.dataplane {
        case .linux: dataplane = .linux
        case .ovs: dataplane = .ovs(plugger.patchPorts ?? OVSPatchPorts(mplsFromTun: 0, mplsToInt: 0))
        }
        let planner = AttachmentPlanner(extensions: configuration.extensions, asNumbers: configuration.asNumbers, dataplane: dataplane)
        return planner.plan(model, plugged: plugged).filter { refused[$0.key] != $0.attach }
    }

    // MARK: - Convergence

    func reconcileLoop() async {
        for await _ in kicks {
            if Task.isCancelled { return }
            await reconcile()
        }
    }

    /// Sends the difference; a failed call leaves its attachment to the next round, which comes
    /// after a growing delay. A failed detach does not stop the attaches that follow (§2.7).
    public func reconcile() async {
        guard bagpipeUp else { return }
        statistics.reconciles += 1
        let desired = desiredAttachments()
        do {
            try await plugger.redirectGateways(GatewayRedirect.plan(desired))
        } catch {
            logger.error("cannot write the gateway rules", metadata: ["error": "\(error)"])
        }
        let plan = Reconciliation(desired: desired, applied: applied)
        guard !plan.isEmpty else {
            retryDelay.reset()
            return
        }
        var failed = false
        let epoch = self.epoch
        let bagpipe = self.bagpipe
        // Phase by phase (§2.4): IP VPN detaches, E-VPN detaches, E-VPN attaches, IP VPN attaches;
        // the calls of one phase go out together, a few at a time.
        for (attach, type) in [(false, VPNType.ipvpn), (false, .evpn), (true, .evpn), (true, .ipvpn)] {
            let batch = (attach ? plan.attaches : plan.detaches).filter { $0.key.vpnType == type }
            if attach { statistics.attachCalls += batch.count } else { statistics.detachCalls += batch.count }
            let results = await concurrently(batch, limit: Self.callsInFlight) { a in
                await Result(catching: { attach ? try await bagpipe.attach(a.attach) : try await bagpipe.detach(a.detach) })
            }
            let verb = attach ? "attach" : "detach"
            for (a, result) in zip(batch, results) {
                switch result {
                case .success:
                    if epoch == self.epoch { applied[a.key] = attach ? a : nil }
                    logger.info("\(verb)ed", metadata: ["attachment": "\(a.key)"])
                case .failure(let f as BagpipeBGPClient.Failure) where f.refused && !attach:
                    // bagpipe-bgp does not hold it: nothing to undo.
                    applied[a.key] = nil
                    logger.warning("bagpipe-bgp refused a detach; taken as detached", metadata: ["attachment": "\(a.key)", "error": "\(f)"])
                case .failure(let f as BagpipeBGPClient.Failure) where f.refused:
                    refused[a.key] = a.attach
                    statistics.failedCalls += 1
                    logger.error("bagpipe-bgp refused an attachment; not sent again until it changes", metadata: ["attachment": "\(a.key)", "error": "\(f)"])
                case .failure(let error):
                    failed = true
                    statistics.failedCalls += 1
                    logger.error("\(verb) failed; retried later", metadata: ["attachment": "\(a.key)", "error": "\(error)"])
                }
            }
        }
        if failed {
            let delay = retryDelay.next()
            Task {
                try? await Task.sleep(for: .seconds(delay))
                self.kickAgain()
            }
        } else {
            retryDelay.reset()
        }
    }

    func kickAgain() { kick.yield() }

    /// For tests: what bagpipe-bgp holds according to the agent.
    public var appliedAttachments: [Attachment] { applied.values.sorted { $0.key < $1.key } }
    public var viewVersion: Int64 { cache.version }
    public var bagpipeBGPIsUp: Bool { bagpipeUp }
    public var appliedCount: Int { applied.count }
    /// The attachments applied whose import route targets hold `routeTarget`.
    public func appliedCount(withRouteTarget routeTarget: String) -> Int {
        applied.values.filter { $0.attach["import_rt"]?.arrayValue?.contains(.string(routeTarget)) == true }.count
    }
    /// True when bagpipe-bgp answers and holds what the view means (nothing left to send).
    public var isConverged: Bool { bagpipeUp && Reconciliation(desired: desiredAttachments(), applied: applied).isEmpty }
}

