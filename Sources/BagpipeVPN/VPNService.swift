import BGPEngine
import BGPSession
import BGPWire
import Dataplane
import NIOCore

/// The VPN manager of a running daemon, confined to its BGP speaker's event loop (where the engine
/// is): API handlers on other threads reach it through these futures. The dataplane drivers run on
/// a `DataplaneExecutor` of their own, behind a `DataplaneChannel`: nothing here waits for them on
/// the loop. An attach or a detach still answers only once its dataplane work is done (or with its
/// error), as the original does, or after `dataplaneTimeout` with a 503 while the dataplane is
/// stuck (the work is then done when it answers).
public final class VPNService: @unchecked Sendable {
    public let speaker: BGPSpeaker
    private let configuration: VPNManager.Configuration
    private let makeDrivers: @Sendable () throws -> [VPNType: any DataplaneDriver]
    public let dataplane: DataplaneExecutor
    /// How long an API request waits for its dataplane work before answering 503.
    public let dataplaneTimeout: TimeAmount
    /// Touched on the speaker's loop only.
    private var manager: VPNManager?
    private var channel: DataplaneChannel?
    private var traits: [VPNType: DriverTraits]?
    /// The periodic check of the drivers' dataplane (touched on the speaker's loop only).
    private var reconciling: RepeatedTask?
    /// The looking-glass copy of the dataplane being refreshed, since when (on the speaker's loop only).
    private var glassRefresh: (done: EventLoopFuture<Void>, started: NIODeadline)?
    /// Where attachments are kept across restarts (`[API] attachments_file`), if anywhere.
    private let store: AttachmentStore?

    /// `makeDrivers` runs on the dataplane executor, once: at `start()`, or at the first request.
    public init(
        speaker: BGPSpeaker, configuration: VPNManager.Configuration, attachmentsFile: String? = nil, dataplaneTimeout: TimeAmount = .seconds(30),
        makeDrivers: @escaping @Sendable () throws -> [VPNType: any DataplaneDriver]
    ) {
        self.speaker = speaker
        self.configuration = configuration
        self.makeDrivers = makeDrivers
        self.dataplaneTimeout = dataplaneTimeout
        dataplane = DataplaneExecutor()
        store = attachmentsFile.map(AttachmentStore.init)
    }

    /// Runs `body` on the loop with the manager, then waits (off the loop) for the dataplane work it
    /// caused. When critical dataplane work failed, `undo` runs and the request fails with the error.
    private func withManager<T: Sendable>(
        _ body: @escaping @Sendable (VPNManager) throws -> T, undo: (@Sendable (VPNManager) -> Void)? = nil, done: (@Sendable (T) -> Void)? = nil
    ) -> EventLoopFuture<T> {
        let loop = speaker.eventLoop
        let promise = loop.makePromise(of: T.self)
        loop.execute {
            let manager: VPNManager, channel: DataplaneChannel
            do {
                (manager, channel) = try self.speaker.onLoop { engine in try self.managerOnLoop(engine) }
            } catch {
                return promise.fail(error)
            }
            let outcome = Result { try channel.withTicket { try self.speaker.onLoop { _ in try body(manager) } } }
            let applied = channel.submit()
            guard case .success(let (result, ticket)) = outcome else {
                if case .failure(let error) = outcome { promise.fail(error) }
                return
            }
            // A request that asked nothing of the dataplane (the looking glass) answers now.
            guard ticket.requests > 0 else {
                done?(result)
                return promise.succeed(result)
            }
            // Answered once: by the dataplane's outcome, or by the timeout while it is stuck.
            let answer = Once()
            let timeout = loop.scheduleTask(in: self.dataplaneTimeout) {
                answer.run {
                    promise.fail(VPNError(.dataplaneUnavailable, "the dataplane has not answered within \(self.dataplaneTimeout.nanoseconds / 1_000_000_000) s; the change is applied when it does"))
                }
            }
            // Completes on the loop, where the manager and the ticket live.
            applied.assumeIsolated().whenComplete { _ in
                timeout.cancel()
                if let failure = ticket.failures.first {
                    self.speaker.onLoop { _ in undo?(manager) }
                    channel.submit()
                    answer.run { promise.fail(Self.requestError(failure)) }
                } else {
                    done?(result)
                    answer.run { promise.succeed(result) }
                }
            }
        }
        return promise.futureResult
    }

    /// A dataplane failure as the request's error (`VPNError.dataplane`).
    static func requestError(_ failure: DataplaneExecutor.Failure) -> VPNError {
        .dataplane(failure.error, "the dataplane could not \(failure.request)")
    }

    /// The drivers' traits: read when they are made on the executor (`start()`, off the loop), else
    /// now (a service used without `start()`, in tests).
    private func driverTraits() throws -> [VPNType: DriverTraits] {
        if let traits { return traits }
        let t = try dataplane.start(makeDrivers)
        traits = t
        return t
    }

    private func managerOnLoop(_ engine: RouteEngine) throws -> (VPNManager, DataplaneChannel) {
        if let manager, let channel { return (manager, channel) }
        let channel = DataplaneChannel(executor: dataplane, eventLoop: speaker.eventLoop) { [speaker] body in speaker.onLoop { _ in body() } }
        let drivers = try driverTraits().mapValues { QueuedDriver(traits: $0, channel: channel) as any DataplaneDriver }
        let manager = VPNManager(configuration: configuration, engine: engine, drivers: drivers)
        (self.manager, self.channel) = (manager, channel)
        speaker.setHandlerForOtherWorkers { [unowned manager] worker, event in manager.deliver(worker, event) }
        speaker.setAfterDelivery { channel.submit() }
        if let interval = manager.reconcileInterval {
            let delay = TimeAmount.milliseconds(Int64(interval * 1000))
            reconciling = speaker.eventLoop.scheduleRepeatedTask(initialDelay: delay, delay: delay) { [weak self] _ in
                guard let self, let manager = self.manager else { return }
                self.speaker.onLoop { _ in manager.reconcileDrivers() }
            }
        }
        return (manager, channel)
    }

    /// Makes the drivers (whose checks of the host may fail) on the dataplane executor and the
    /// manager, then plugs again the attachments of the store; returns how many were replayed, and
    /// the ones refused (which leave the store, with the reason).
    /// `parse` reads a stored attachment (the API's request JSON) back into a request.
    /// `restarting`: the dataplane kept forwarding across our restart; the drivers take over what
    /// the earlier run left, until `sweepStale` (graceful restart).
    public func start(restarting: Bool = false, parse: @escaping @Sendable (JSONValue) throws -> AttachRequest) -> EventLoopFuture<(replayed: Int, refused: [String])> {
        do {
            let t = try dataplane.start(adopting: restarting, makeDrivers)
            let stored = try store?.load() ?? []
            let hints = (try? store?.loadIdentifiers()) ?? [:]
            return speaker.eventLoop.flatSubmit {
                self.traits = t
                if let manager = try? self.speaker.onLoop({ engine in try self.managerOnLoop(engine) }).0 { manager.identifierHints = hints }
                return self.replay(stored, parse: parse)
            }
        } catch {
            return speaker.eventLoop.makeFailedFuture(error)
        }
    }

    private func replay(_ stored: [JSONValue], parse: (JSONValue) throws -> AttachRequest) -> EventLoopFuture<(replayed: Int, refused: [String])> {
        var requests: [AttachRequest] = []
        var refused: [String] = []
        for json in stored {
            do {
                requests.append(try parse(json))
            } catch {
                refused.append("\(json.serialized().prefix(200)): \((error as? VPNError)?.message ?? "\(error)")")
            }
        }
        // One at a time, as the API would: a refused one is undone before the next.
        let loop = speaker.eventLoop
        var chain = loop.makeSucceededFuture((replayed: 0, refused: refused))
        for r in requests {
            chain = chain.flatMap { tally in
                self.attach(r).map { (tally.replayed + 1, tally.refused) }.flatMapErrorThrowing { error in
                    (tally.replayed, tally.refused + ["\(r.vpnInstanceID) \(r.mac): \((error as? VPNError)?.message ?? "\(error)")"])
                }
            }
        }
        let replayed = requests
        return chain.map { tally in
            let manager = self.manager
            manager?.identifierHints = [:]
            self.store?.replace(with: replayed.filter { r in !tally.refused.contains { $0.hasPrefix("\(r.vpnInstanceID) \(r.mac):") } }, identifiers: manager?.identifiers ?? [:])
            return tally
        }
    }

    /// Fails with a `VPNError` when refused (nothing changed then).
    public func attach(_ request: AttachRequest) -> EventLoopFuture<Void> {
        withManager({ m in try m.attach(request) }, undo: { $0.rollBack(request) }, done: { _ in self.store?.attached(request, identifiers: self.manager?.identifiers ?? [:]) })
    }

    public func detach(_ request: DetachRequest) -> EventLoopFuture<Void> {
        withManager({ m in try m.detach(request) }, done: { _ in self.store?.detached(request, identifiers: self.manager?.identifiers ?? [:]) })
    }

    /// Whether the attachments file holds attachments (a restart with state to take over).
    public var hasStoredAttachments: Bool { ((try? store?.load()) ?? []).map { !$0.isEmpty } ?? false }

    /// Our restart is over (the routes are back): the dataplane loses what nothing accounts for any
    /// more. The future has what was removed.
    public func sweepStale() -> EventLoopFuture<[String]> {
        let loop = speaker.eventLoop
        return loop.flatSubmit {
            // What the routes received so far asked of the dataplane goes first (one serial queue).
            self.channel?.submit()
            let promise = loop.makePromise(of: [String].self)
            self.dataplane.sweepStale { removed in promise.succeed(removed.values.flatMap { $0 }) }
            return promise.futureResult
        }
    }

    /// Waits until the attachments file has every change (off the loop: it blocks).
    public func syncStore() { store?.sync() }

    /// Every instance stops, then the drivers; waits for the dataplane up to `dataplaneTimeout`.
    public func stop() -> EventLoopFuture<Void> {
        withManager {
            self.reconciling?.cancel()
            self.reconciling = nil
            $0.stopAll()
        }.flatMapError { error in
            (error as? VPNError)?.kind == .dataplaneUnavailable ? self.speaker.eventLoop.makeSucceededVoidFuture() : self.speaker.eventLoop.makeFailedFuture(error)
        }
    }

    /// What the metrics endpoint shows of the daemon's state.
    public struct MetricsSnapshot: Sendable {
        public var peersByState: [String: Int] = [:]
        public var routes: [(family: String, local: Int, received: Int)] = []
        public var instances: [String: Int] = [:]
        public var endpoints = 0
        public var warnings = 0
        /// Dataplane requests not applied yet (a stuck driver shows here).
        public var dataplaneQueue = 0
        /// Entries where the dataplane and the instances disagree, per driver type, as of the last
        /// consistency check (each scrape runs one).
        public var dataplaneDifferences: [VPNType: Int] = [:]
    }

    public func metrics() -> EventLoopFuture<MetricsSnapshot> {
        speaker.eventLoop.flatSubmit { self.dataplaneGlassCopied() }.flatMap { self.snapshot() }
    }

    private func snapshot() -> EventLoopFuture<MetricsSnapshot> {
        withManager { m in
            self.speaker.onLoop { engine in
                var s = MetricsSnapshot()
                for state in SessionStateMachine.State.allCases { s.peersByState[state.rawValue] = 0 }
                for p in self.speaker.peersOnLoop { s.peersByState[p.peer.stateOnLoop.rawValue, default: 0] += 1 }
                for family in engine.families {
                    let routes = engine.routes(family)
                    let received = routes.filter { engine.isPeer($0.source) }.count
                    s.routes.append(("\(family)", routes.count - received, received))
                }
                for id in m.externalIDs {
                    guard let i = m.instance(id) else { continue }
                    s.instances[i is EVPNInstance ? "evpn" : "ipvpn", default: 0] += 1
                }
                s.endpoints = m.endpointCount
                s.warnings = WarningLog.shared.count
                s.dataplaneQueue = self.dataplane.depth
                s.dataplaneDifferences = self.dataplane.differences.mapValues(\.count)
                return s
            }
        }
    }
}

extension VPNService {
    /// Runs `body` on the BGP loop with the VPN manager and the route engine: the read-only view the
    /// looking glass is built from. With `dataplaneCopy`, first waits for a fresh copy of the
    /// dataplane's looking-glass state (at most 50 ms while the dataplane is busy).
    public func inspect<T: Sendable>(dataplaneCopy: Bool, _ body: @escaping @Sendable (VPNManager, BGPSpeaker, RouteEngine) -> T) -> EventLoopFuture<T> {
        let read: @Sendable () -> EventLoopFuture<T> = {
            self.withManager { m in self.speaker.onLoop { engine in body(m, self.speaker, engine) } }
        }
        guard dataplaneCopy else { return read() }
        return speaker.eventLoop.flatSubmit { self.dataplaneGlassCopied() }.flatMap { read() }
    }

    /// On the loop: completes once the dataplane's looking-glass copy is fresh, or after at most
    /// 50 ms while the dataplane is busy (the copy then shows it as last seen). One refresh at a
    /// time: behind a stuck driver, requests neither pile up on the executor nor each wait.
    private func dataplaneGlassCopied() -> EventLoopFuture<Void> {
        let loop = speaker.eventLoop
        let now = NIODeadline.now()
        if glassRefresh == nil {
            let refreshed = loop.makePromise(of: Void.self)
            glassRefresh = (refreshed.futureResult, now)
            dataplane.refreshLookingGlass {
                loop.execute {
                    self.glassRefresh = nil
                    refreshed.succeed()
                }
            }
        }
        guard let (done, started) = glassRefresh else { return loop.makeSucceededVoidFuture() }
        let wait = started + .milliseconds(50) - now
        guard wait > .zero else { return loop.makeSucceededVoidFuture() }
        let answered = loop.makePromise(of: Void.self)
        let once = Once()
        let deadline = loop.scheduleTask(in: wait) { once.run { answered.succeed() } }
        done.whenComplete { _ in
            deadline.cancel()
            once.run { answered.succeed() }
        }
        return answered.futureResult
    }
}

/// Runs its body the first time only; used on one event loop.
final class Once: @unchecked Sendable {
    private var done = false
    func run(_ body: () -> Void) {
        guard !done else { return }
        done = true
        body()
    }
}
