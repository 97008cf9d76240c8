import BGPEngine
import BGPWire
import BGPSession
import NIOCore

/// The VPN manager of a running daemon, confined to its BGP speaker's event loop (where the engine
/// is): API handlers on other threads reach it through these futures.
public final class VPNService: @unchecked Sendable {
    public let speaker: BGPSpeaker
    private let configuration: VPNManager.Configuration
    private let makeDrivers: @Sendable () throws -> [VPNType: any DataplaneDriver]
    /// Touched on the speaker's loop only.
    private var manager: VPNManager?
    /// The periodic check of the drivers' dataplane (touched on the speaker's loop only).
    private var reconciling: RepeatedTask?
    /// Where attachments are kept across restarts (`[API] attachments_file`), if anywhere.
    private let store: AttachmentStore?

    /// `makeDrivers` runs on the loop, once: at `start()`, or at the first request.
    public init(
        speaker: BGPSpeaker, configuration: VPNManager.Configuration, attachmentsFile: String? = nil,
        makeDrivers: @escaping @Sendable () throws -> [VPNType: any DataplaneDriver]
    ) {
        self.speaker = speaker
        self.configuration = configuration
        self.makeDrivers = makeDrivers
        store = attachmentsFile.map(AttachmentStore.init)
    }

    private func withManager<T: Sendable>(_ body: @escaping @Sendable (VPNManager) throws -> T) -> EventLoopFuture<T> {
        let promise = speaker.eventLoop.makePromise(of: T.self)
        speaker.eventLoop.execute {
            do {
                // What the drivers queued is applied before the answer.
                let result = try self.speaker.onLoop { engine in
                    let manager = try self.manager ?? self.makeManager(engine)
                    defer { manager.flushDrivers() }
                    return try body(manager)
                }
                promise.succeed(result)
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    private func makeManager(_ engine: RouteEngine) throws -> VPNManager {
        let manager = VPNManager(configuration: configuration, engine: engine, drivers: try makeDrivers())
        self.manager = manager
        speaker.setHandlerForOtherWorkers { [unowned manager] worker, event in manager.deliver(worker, event) }
        speaker.setAfterDelivery { [unowned manager] in manager.flushDrivers() }
        if let interval = manager.reconcileInterval {
            let delay = TimeAmount.milliseconds(Int64(interval * 1000))
            reconciling = speaker.eventLoop.scheduleRepeatedTask(initialDelay: delay, delay: delay) { [weak self] _ in
                guard let self, let manager = self.manager else { return }
                self.speaker.onLoop { _ in manager.reconcileDrivers() }
            }
        }
        return manager
    }

    /// Makes the drivers (whose checks of the host may fail) and the manager, then plugs again the
    /// attachments of the store; returns how many were replayed, and the ones refused (which leave
    /// the store, with the reason).
    public func start() -> EventLoopFuture<(replayed: Int, refused: [String])> {
        withManager { m in
            guard let store = self.store else { return (0, []) }
            var replayed = 0
            var refused: [String] = []
            for json in try store.load() {
                do throws(APIError) {
                    let r = try AttachRequest(json: json)
                    do throws(APIError) {
                        try m.attach(r)
                        store.attached(r)
                        replayed += 1
                    } catch {
                        refused.append("\(r.vpnInstanceID) \(r.mac): \(error.message)")
                    }
                } catch {
                    refused.append("\(json.serialized().prefix(200)): \(error.message)")
                }
            }
            store.save()  // exactly what was plugged again
            return (replayed, refused)
        }
    }

    /// Fails with an `APIError` when refused (nothing changed then).
    public func attach(_ request: AttachRequest) -> EventLoopFuture<Void> {
        withManager {
            try $0.attach(request)
            self.store?.attached(request)
        }
    }

    public func detach(_ request: DetachRequest) -> EventLoopFuture<Void> {
        withManager {
            try $0.detach(request)
            self.store?.detached(request)
        }
    }

    public func stop() -> EventLoopFuture<Void> {
        withManager {
            self.reconciling?.cancel()
            self.reconciling = nil
            $0.stopAll()
        }
    }

    /// What the metrics endpoint shows of the daemon's state.
    public struct MetricsSnapshot: Sendable {
        public var peersByState: [String: Int] = [:]
        public var routes: [(family: String, local: Int, received: Int)] = []
        public var instances: [String: Int] = [:]
        public var endpoints = 0
        public var warnings = 0
    }

    public func metrics() -> EventLoopFuture<MetricsSnapshot> {
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
                return s
            }
        }
    }
}

extension VPNService {
    /// What the looking glass shows about the process.
    public struct Info: Sendable {
        public var startTime: String
        public var version: String
        /// `/looking-glass/config`: the configuration as read.
        public var config: JSONValue

        public init(startTime: String, version: String, config: JSONValue) {
            self.startTime = startTime
            self.version = version
            self.config = config
        }
    }

    /// A looking-glass node (reference §2): `path` below `/looking-glass`, `base` the absolute URL of
    /// `/looking-glass` (hrefs are absolute). Nil: no such node (a 404).
    public func lookingGlass(path: [String], base: String, info: Info) -> EventLoopFuture<JSONValue?> {
        withManager { m in
            self.speaker.onLoop { engine in LookingGlassTree(manager: m, speaker: self.speaker, engine: engine, base: base, info: info).resolve(path) }
        }
    }
}
