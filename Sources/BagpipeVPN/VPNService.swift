import BGPEngine
import BGPWire
import NIOCore

/// The VPN manager of a running daemon, confined to its BGP speaker's event loop (where the engine
/// is): API handlers on other threads reach it through these futures.
public final class VPNService: @unchecked Sendable {
    public let speaker: BGPSpeaker
    private let configuration: VPNManager.Configuration
    private let makeDrivers: @Sendable () -> [VPNType: any DataplaneDriver]
    /// Touched on the speaker's loop only.
    private var manager: VPNManager?

    /// `makeDrivers` runs on the loop, once, at the first request.
    public init(speaker: BGPSpeaker, configuration: VPNManager.Configuration, makeDrivers: @escaping @Sendable () -> [VPNType: any DataplaneDriver]) {
        self.speaker = speaker
        self.configuration = configuration
        self.makeDrivers = makeDrivers
    }

    private func withManager<T>(_ body: @escaping (VPNManager) throws -> T) -> EventLoopFuture<T> {
        let promise = speaker.eventLoop.makePromise(of: T.self)
        speaker.eventLoop.execute {
            do {
                let result = try self.speaker.onLoop { engine in
                    let manager = self.manager ?? self.makeManager(engine)
                    return try body(manager)
                }
                promise.succeed(result)
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    private func makeManager(_ engine: RouteEngine) -> VPNManager {
        let manager = VPNManager(configuration: configuration, engine: engine, drivers: makeDrivers())
        self.manager = manager
        speaker.setHandlerForOtherWorkers { [unowned manager] worker, event in manager.deliver(worker, event) }
        return manager
    }

    /// Fails with an `APIError` when refused (nothing changed then).
    public func attach(_ request: AttachRequest) -> EventLoopFuture<Void> { withManager { try $0.attach(request) } }
    public func detach(_ request: DetachRequest) -> EventLoopFuture<Void> { withManager { try $0.detach(request) } }

    /// One instance's state (nil: no such instance), or every instance's.
    public func lookingGlass(instance: String? = nil) -> EventLoopFuture<JSONValue?> {
        withManager { m in instance.map { m.instance($0)?.lookingGlass } ?? m.lookingGlass }
    }

    public func stop() -> EventLoopFuture<Void> { withManager { $0.stopAll() } }
}
