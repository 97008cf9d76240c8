import BGPWire
import Dataplane
import NIOCore

/// The BGP loop's side of the `DataplaneExecutor`. The VPN instances call their dataplane through
/// `QueuedDriver` and `QueuedInstance`, which only append requests here; the requests of one turn
/// of the loop go to the executor as one batch (ending with a flush of each driver they touched),
/// and the loop never waits for them. A request that wants to know how it went (a plug, whose route
/// is advertised only once the port is plugged) gets its callback back on the loop.
///
/// Confined to `eventLoop`; `@unchecked Sendable` only so that the executor's completion can hop back.
public final class DataplaneChannel: @unchecked Sendable {
    /// The API request being handled: the failures of what it asked for are its answer.
    public final class Ticket {
        public internal(set) var failures: [DataplaneExecutor.Failure] = []
        /// Requests made while it was current (none: nothing to wait for).
        public internal(set) var requests = 0
    }

    public let executor: DataplaneExecutor
    let eventLoop: any EventLoop
    private var pending: [DataplaneRequest] = []
    private var callbacks: [Int: (Error?) -> Void] = [:]
    private var tickets: [Int: Ticket] = [:]
    private var touched: Set<VPNType> = []
    private var scheduled = false
    private var serial: UInt64 = 0
    private var reconciling: Set<VPNType> = []
    /// The last batch sent: batches complete in order, so it completing means all before it did.
    private var lastBatch: EventLoopFuture<Void>?
    /// What the batches sent wait to report, by batch number.
    private var inFlight: [UInt64: (callbacks: [Int: (Error?) -> Void], tickets: [Int: Ticket])] = [:]
    private var batchNumber: UInt64 = 0
    /// Set while an API request runs: its critical requests report to it.
    private var ticket: Ticket?

    /// Runs the callbacks of a completed batch: they advertise routes, so the speaker must deliver
    /// what they changed to the peers afterwards (`BGPSpeaker.onLoop`).
    private let around: (() -> Void) -> Void

    public init(executor: DataplaneExecutor, eventLoop: any EventLoop, around: @escaping (() -> Void) -> Void = { $0() }) {
        self.executor = executor
        self.eventLoop = eventLoop
        self.around = around
    }

    func newInstanceRef(_ type: VPNType, id: UInt32) -> DataplaneInstanceRef {
        serial += 1
        return DataplaneInstanceRef(type: type, serial: serial, id: id)
    }

    /// Queues a request. `critical`: its failure fails the API request that made it (a plug, an
    /// instance creation); other failures are only logged, as they always were.
    func enqueue(_ request: DataplaneRequest, critical: Bool = false, then callback: ((Error?) -> Void)? = nil) {
        let index = pending.count
        pending.append(request)
        touched.insert(request.vpnType)
        if let callback { callbacks[index] = callback }
        if let ticket {
            ticket.requests += 1
            if critical { tickets[index] = ticket }
        }
        if !scheduled {
            // Whatever the loop does next, the batch leaves at the end of this turn.
            scheduled = true
            eventLoop.execute { _ = self.submit() }
        }
    }

    /// One reconcile at a time per driver: behind a switch that does not answer, the periodic
    /// check must not pile up.
    func enqueueReconcile(_ type: VPNType) {
        guard reconciling.insert(type).inserted else { return }
        enqueue(.reconcile(type)) { _ in self.reconciling.remove(type) }
    }

    /// Runs `body` (an API request) with a ticket that collects the failures of its critical requests.
    func withTicket<T>(_ body: () throws -> T) rethrows -> (T, Ticket) {
        let t = Ticket()
        ticket = t
        defer { ticket = nil }
        return (try body(), t)
    }

    /// Sends what is pending; the future completes on the loop once the executor has applied it (and
    /// everything sent before) and the callbacks have run.
    @discardableResult
    public func submit() -> EventLoopFuture<Void> {
        scheduled = false
        guard !pending.isEmpty else { return lastBatch ?? eventLoop.makeSucceededVoidFuture() }
        var batch = pending
        for type in touched.sorted(by: { $0.rawValue < $1.rawValue }) { batch.append(.flush(type)) }
        batchNumber += 1
        let number = batchNumber
        inFlight[number] = (callbacks, tickets)
        (pending, callbacks, tickets, touched) = ([], [:], [:], [])
        let promise = eventLoop.makePromise(of: Void.self)
        executor.submit(batch) { failures in
            self.eventLoop.execute {
                let (callbacks, tickets) = self.inFlight.removeValue(forKey: number) ?? ([:], [:])
                let failed = Dictionary(failures.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
                self.around {
                    for index in callbacks.keys.sorted() { callbacks[index]?(failed[index]?.error) }
                }
                for (index, failure) in failed { tickets[index]?.failures.append(failure) }
                promise.succeed()
            }
        }
        lastBatch = promise.futureResult
        return promise.futureResult
    }
}

/// A driver as the BGP loop sees it: its traits, and requests to the executor.
final class QueuedDriver: DataplaneDriver {
    let traits: DriverTraits
    unowned let channel: DataplaneChannel

    init(traits: DriverTraits, channel: DataplaneChannel) {
        self.traits = traits
        self.channel = channel
    }

    var vpnType: VPNType { traits.vpnType }
    var encapsulations: [TunnelType] { traits.encapsulations }
    var supportsECMP: Bool { traits.supportsECMP }
    var localAddress: IPv4Address { traits.localAddress }
    var directions: Set<Direction> { traits.directions }
    var needsCleanupAssist: Bool { traits.needsCleanupAssist }
    var reconcileInterval: Double? { traits.reconcileInterval }

    // Reset and initialization run on the executor before the first instance (`makeInstance`).
    func resetState() throws {}
    func initialize() throws {}

    func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        let ref = channel.newInstanceRef(vpnType, id: id)
        channel.enqueue(.makeInstance(ref, externalID: externalID, label: label, options: options), critical: true)
        return QueuedInstance(ref: ref, channel: channel)
    }

    func stop() { channel.enqueue(.stop(vpnType)) }
    func createGatewayLink(_ link: GatewayLink) throws { channel.enqueue(.createGatewayLink(vpnType, link), critical: true) }
    func deleteGatewayLink(_ link: GatewayLink) { channel.enqueue(.deleteGatewayLink(vpnType, link)) }

    func reconcile() throws -> String? {
        channel.enqueueReconcile(vpnType)
        return nil
    }

    /// Every batch ends with a flush of the drivers it touched.
    func flush() {}

    /// As of the executor's last copy (`DataplaneExecutor.refreshLookingGlass`).
    var lookingGlass: JSONValue {
        channel.executor.lookingGlass(of: vpnType)
            ?? .object([
                ("name", .string(traits.name)), ("local_address", .string("\(localAddress)")),
                ("supported_encaps", .array(encapsulations.map { .string("\($0)") })), ("ecmp_support", .bool(supportsECMP)),
            ])
    }
}

/// An instance's dataplane as the BGP loop sees it: every call is a request to the executor.
final class QueuedInstance: DataplaneInstance {
    let ref: DataplaneInstanceRef
    unowned let channel: DataplaneChannel

    init(ref: DataplaneInstanceRef, channel: DataplaneChannel) {
        self.ref = ref
        self.channel = channel
    }

    func plug(_ endpoint: Endpoint) throws { channel.enqueue(.plug(ref, endpoint), critical: true) }
    func plug(_ endpoint: Endpoint, applied: @escaping (Bool) -> Void) throws {
        channel.enqueue(.plug(ref, endpoint), critical: true) { applied($0 == nil) }
    }
    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws { channel.enqueue(.unplug(ref, endpoint, lastEndpointOfPort: lastEndpointOfPort)) }
    func setUp(_ remote: RemoteEndpoint) throws { channel.enqueue(.setUp(ref, remote)) }
    func remove(_ remote: RemoteEndpoint) throws { channel.enqueue(.remove(ref, remote)) }
    func addFlood(_ flood: FloodEndpoint) throws { channel.enqueue(.addFlood(ref, flood)) }
    func removeFlood(_ flood: FloodEndpoint) throws { channel.enqueue(.removeFlood(ref, flood)) }
    func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws {
        channel.enqueue(.addTrafficClassifier(ref, classifier, redirectTo: instance))
    }
    func removeTrafficClassifier(_ classifier: TrafficClassifier) throws { channel.enqueue(.removeTrafficClassifier(ref, classifier)) }
    func setGatewayPort(_ linuxif: String, gateway: IPAddress) throws { channel.enqueue(.setGatewayPort(ref, linuxif: linuxif, gateway: gateway), critical: true) }
    func gatewayPortDown(_ linuxif: String) throws { channel.enqueue(.gatewayPortDown(ref, linuxif: linuxif)) }
    func updateFallback(_ fallback: Fallback?) { channel.enqueue(.updateFallback(ref, fallback)) }
    func cleanup() { channel.enqueue(.cleanup(ref)) }

    var lookingGlass: JSONValue { channel.executor.lookingGlass(of: ref) ?? .object([]) }
}
