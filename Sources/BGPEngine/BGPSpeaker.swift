import BGPRoutes
import BGPSession
import BGPWire
import Logging
import NIOCore
import NIOPosix

/// A BGP speaker: the route engine and its peers on one event loop (as BIRD runs on one thread), so
/// a peer pulls its UPDATEs straight from the Loc-RIB with no locking and no per-peer copy.
/// Local workers (VPN instances) and tests reach the engine through `run`.
public final class BGPSpeaker: @unchecked Sendable {
    public struct PeerConfiguration: Sendable {
        public var address: String
        public var port: Int
        public var session: SessionConfiguration
        /// A route-reflector client (RFC 4456); meaningful when the engine reflects.
        public var client: Bool
        public var localAddress: String?
        /// Keep the peer's routes only in the Loc-RIB (no Adj-RIB-In copy): what a reflector wants at
        /// scale; graceful-restart helper mode and maximum-prefix limits are then off for the peer.
        public var keepsAdjRIBIn: Bool

        public init(address: String, port: Int = 179, session: SessionConfiguration, client: Bool = true, localAddress: String? = nil, keepsAdjRIBIn: Bool = true) {
            self.keepsAdjRIBIn = keepsAdjRIBIn
            self.address = address
            self.port = port
            self.session = session
            self.client = client
            self.localAddress = localAddress
        }
    }

    public let eventLoop: any EventLoop
    public let logger: Logger
    private let engine: RouteEngine
    private var peers: [WorkerID: BGPPeer] = [:]
    private var peersByAddress: [String: BGPPeer] = [:]
    private var handlers: [WorkerID: @Sendable (RouteEngine.LocalEvent) -> Void] = [:]
    /// Events of workers created directly on the engine (VPN instances), on the loop.
    private var otherWorkers: ((WorkerID, RouteEngine.LocalEvent) -> Void)?
    private var afterDelivery: (() -> Void)?
    private var listener: BGPListener?
    /// Our restart in progress (BGPSpeaker+Restart.swift), on the loop.
    var restart: RestartProgress?

    public init(configuration: RouteEngine.Configuration, eventLoop: any EventLoop, logger: Logger = Logger(label: "bagpipe.bgp.engine")) {
        engine = RouteEngine(configuration: configuration)
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// Runs `body` on the engine's loop, then delivers what it caused (local events, UPDATEs).
    public func run<T: Sendable>(_ body: @escaping @Sendable (RouteEngine) -> T) -> EventLoopFuture<T> {
        eventLoop.submit {
            let result = body(self.engine)
            self.deliver()
            return result
        }
    }

    /// Adds a peer and starts it (it connects, or waits for the peer when `session.active` is false).
    @discardableResult
    public func addPeer(_ configuration: PeerConfiguration) -> EventLoopFuture<WorkerID> {
        eventLoop.submit {
            let external = configuration.session.localAS != configuration.session.peerAS
            let address = (try? SocketAddress(ipAddress: configuration.address, port: 0)).map(Self.sixteenBytes) ?? IPv6Address(high: 0, low: 0)
            let source = PathSource(kind: .peer(external: external, client: configuration.client), routerID: IPv4Address(0), address: address)
            let id = self.engine.addPeer(name: configuration.address, source: source)
            // The looking glass shows each peer's warnings under its worker name.
            var logger = self.logger
            logger[metadataKey: "lg"] = .string("BGP-\(configuration.address)")
            let peer = BGPPeer(
                configuration: configuration.session, remoteAddress: configuration.address, remotePort: configuration.port,
                localAddress: configuration.localAddress, eventLoop: self.eventLoop, logger: logger, interner: self.engine.attributeSets)
            peer.outbound = EngineOutbound(speaker: self, peer: id)
            peer.keepsAdjRIBIn = configuration.keepsAdjRIBIn
            let dropRoutes = !configuration.keepsAdjRIBIn
            peer.onEstablished = { [unowned self] session in
                self.engine.setRouterID(of: id, session.peerRouterID)
                self.engine.peerEstablished(id, families: Set(session.families))
                self.restart?.established(id, families: Set(session.families), sendsEndOfRIB: session.peerGracefulRestart != nil)
                self.checkRestart()
                self.deliver()
            }
            peer.onRoutes = { [unowned self] family, changes in
                self.engine.receive(from: id, family: family, changes)
                self.deliver()
            }
            peer.onDown = { [unowned self] _ in
                self.engine.peerDown(id, dropRoutes: dropRoutes)
                self.deliver()
            }
            peer.onKeepStale = { [unowned self] families in self.engine.markStale(id, families: families) }
            peer.onSweepStale = { [unowned self] family in
                let n = self.engine.sweepStale(id, family: family)
                if n > 0 { logger.notice("\(n) \(family) routes of the peer were not sent again after its restart: withdrawn") }
                self.deliver()
            }
            peer.onEndOfRIB = { [unowned self] family in self.endOfRIBReceived(from: id, family: family) }
            if let restart = self.restart, !restart.done { peer.holdsEndOfRIB = restart.holdsEndOfRIB }
            self.peers[id] = peer
            self.peersByAddress[configuration.address] = peer
            peer.start()
            return id
        }
    }

    /// Listens for the configured peers (passive peers wait for this).
    public func listen(host: String, port: Int) -> EventLoopFuture<Int> {
        eventLoop.flatSubmit {
            BGPListener.listen(host: host, port: port, group: self.eventLoop, peers: self.peersByAddress, logger: self.logger).map { listener in
                self.listener = listener
                return listener.port ?? port
            }
        }
    }

    /// A local worker whose events go to `handler` (on the engine's loop).
    public func addLocalWorker(name: String, handler: @escaping @Sendable (RouteEngine.LocalEvent) -> Void) -> EventLoopFuture<WorkerID> {
        eventLoop.submit {
            let id = self.engine.addLocalWorker(name: name)
            self.handlers[id] = handler
            return id
        }
    }

    /// On the loop only: runs `body` on the engine, then delivers what it caused. For owners that
    /// live on the loop with the engine (the VPN manager), which keep non-Sendable state.
    public func onLoop<T>(_ body: (RouteEngine) throws -> T) rethrows -> T {
        eventLoop.preconditionInEventLoop()
        defer { deliver() }
        return try body(engine)
    }

    /// On the loop only: called once after a burst of events was delivered (a dataplane driver that
    /// batches its changes applies them then).
    public func setAfterDelivery(_ hook: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        afterDelivery = hook
    }

    /// On the loop only: where events of workers without a handler go.
    public func setHandlerForOtherWorkers(_ handler: @escaping (WorkerID, RouteEngine.LocalEvent) -> Void) {
        eventLoop.preconditionInEventLoop()
        otherWorkers = handler
    }

    /// On the loop only: every peer, by address, with its worker in the engine.
    public var peersOnLoop: [(address: String, worker: WorkerID, peer: BGPPeer)] {
        eventLoop.preconditionInEventLoop()
        return peers.map { ($0.value.remoteAddress, $0.key, $0.value) }.sorted { $0.address < $1.address }
    }

    public func peer(_ id: WorkerID) -> EventLoopFuture<BGPPeer?> { eventLoop.submit { self.peers[id] } }

    /// Stops every peer (with a Cease, a Hard Reset under RFC 8538) and the listener.
    /// `preservingForwarding`: a stop for a restart, so that graceful-restart helpers keep our
    /// routes while we restart (RFC 4724 §4.2): a Cease that RFC 8538 makes graceful where the peer
    /// negotiated it, else the connection closed without a NOTIFICATION.
    public func stop(preservingForwarding: Bool = false) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            for peer in self.peers.values { if preservingForwarding { peer.restartStop() } else { peer.stop() } }
            return self.listener?.close() ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    private func deliver() {
        // A handler can cause more events (an instance that re-advertises): deliver until quiet.
        var events = engine.takeLocalEvents()
        let delivered = !events.isEmpty
        while !events.isEmpty {
            for (worker, event) in events {
                if let handler = handlers[worker] { handler(event) } else { otherWorkers?(worker, event) }
            }
            events = engine.takeLocalEvents()
        }
        if delivered { afterDelivery?() }
        for id in engine.takeReadyPeers() { peers[id]?.outboundChanged() }
    }

    fileprivate func takePending(peer: WorkerID, limit: Int) -> RouteEngine.OutboundBatch? {
        engine.takePending(peer: peer, limit: limit)
    }

    fileprivate func takeEncoded(peer: WorkerID, limit: Int, context: WireContext) -> (family: AddressFamily, messages: [ByteBuffer])? {
        engine.takeEncoded(peer: peer, limit: limit, context: context)
    }

    fileprivate func hasPending(peer: WorkerID) -> Bool { engine.hasPending(peer) }
    fileprivate func resend(peer: WorkerID, families: [AddressFamily]) { engine.resend(peer: peer, families: families) }

    static func sixteenBytes(_ address: SocketAddress) -> IPv6Address {
        switch address {
        case .v4(let a):
            return IPv6Address(high: 0, low: 0xFFFF_0000_0000 | UInt64(UInt32(bigEndian: a.address.sin_addr.s_addr)))
        case .v6(let a):
            let bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return IPv6Address(high: high, low: low)
        default:
            return IPv6Address(high: 0, low: 0)
        }
    }
}

/// A peer's outbound side, read from the engine (the peer and the engine share the loop).
final class EngineOutbound: OutboundRoutes {
    unowned let speaker: BGPSpeaker
    let peer: WorkerID

    init(speaker: BGPSpeaker, peer: WorkerID) {
        self.speaker = speaker
        self.peer = peer
    }

    func takePending(limit: Int) -> (family: AddressFamily, announce: [(AttributeSet, [NLRIElement])], withdraw: [NLRIElement])? {
        speaker.takePending(peer: peer, limit: limit).map { ($0.family, $0.announce, $0.withdraw) }
    }

    func takeEncoded(limit: Int, context: WireContext) -> (family: AddressFamily, messages: [ByteBuffer])? {
        speaker.takeEncoded(peer: peer, limit: limit, context: context)
    }

    var hasPending: Bool { speaker.hasPending(peer: peer) }
    func resend(_ families: [AddressFamily]) { speaker.resend(peer: peer, families: families) }
}
