import BGPWire
import Dataplane
import Dispatch
import Logging
import NIOConcurrencyHelpers

/// The thread the dataplane drivers run on. Drivers block (an `ovs-ofctl` process, a netlink dump,
/// a switch that does not answer), so they never run on the BGP event loop: the loop sends
/// `DataplaneRequest` values here in batches and goes on with keepalives, the API and route
/// processing. One serial queue for every driver of the daemon, not one each, because requests of
/// different drivers depend on each other's order (an E-VPN instance's gateway port is the veth
/// pair the IP VPN driver creates just before).
///
/// The drivers and their instances are touched on `queue` only. What the loop reads (the looking
/// glass of each, the queue depth) is copied under `lock`.
public final class DataplaneExecutor: @unchecked Sendable {
    /// A request that failed, by its index in the batch.
    public struct Failure: Sendable {
        public var index: Int
        public var request: DataplaneRequest
        public var error: any Error
    }

    private let queue = DispatchQueue(label: "bagpipe.dataplane")
    private let logger = Logger(label: "bagpipe.dataplane")

    // Confined to `queue`.
    private var drivers: [VPNType: any DataplaneDriver] = [:]
    private var instances: [DataplaneInstanceRef: any DataplaneInstance] = [:]
    /// Instances whose creation failed: what is asked of them fails with this reason.
    private var failedInstances: [DataplaneInstanceRef: String] = [:]
    private var initialized: Set<VPNType> = []
    private var failingReconciles: Set<VPNType> = []
    /// A restart that keeps forwarding: drivers adopt what the earlier run left (`adoptState`)
    /// instead of removing it, until `sweepStale`.
    private var adopting = false

    // Under `lock`.
    private let lock = NIOLock()
    private var driverGlass: [VPNType: JSONValue] = [:]
    private var driverDifferences: [VPNType: [String]] = [:]
    private var instanceGlass: [DataplaneInstanceRef: JSONValue] = [:]
    private var queuedRequests = 0
    /// Every driver says it never blocks (the dummy drivers): requests run on the caller's thread,
    /// still one at a time through `queue`, without two thread hops per API request.
    private var inline = false

    public init() {}

    /// Makes the drivers on the executor (their checks of the host run processes); their traits.
    /// `adopting`: a restart that keeps forwarding (see `adopting`).
    public func start(adopting: Bool = false, _ make: @escaping @Sendable () throws -> [VPNType: any DataplaneDriver]) throws -> [VPNType: DriverTraits] {
        try queue.sync {
            self.adopting = adopting
            drivers = try make()
            let neverBlock = drivers.values.allSatisfy(\.neverBlocks)
            lock.withLock { inline = neverBlock }
            return drivers.mapValues(DriverTraits.init)
        }
    }

    /// Requests waiting for the executor or being applied (a gauge for `/metrics`).
    public var depth: Int { lock.withLock { queuedRequests } }

    /// Applies a batch in order, then calls `completion` (on the executor) with the failures.
    public func submit(_ batch: [DataplaneRequest], completion: @escaping @Sendable ([Failure]) -> Void) {
        let now = lock.withLock {
            queuedRequests += batch.count
            return inline
        }
        let work: @Sendable () -> Void = {
            var failures: [Failure] = []
            for (index, request) in batch.enumerated() {
                do {
                    try self.apply(request)
                } catch {
                    self.logger.warning("dataplane: \(request) failed: \(error)")
                    failures.append(Failure(index: index, request: request, error: error))
                }
                self.lock.withLock { self.queuedRequests -= 1 }
            }
            completion(failures)
        }
        if now { queue.sync(execute: work) } else { queue.async(execute: work) }
    }

    /// Copies the looking glass of every driver and instance for the loop to read; calls `done`
    /// (on the executor) once copied. Behind a stalled driver this waits: the loop answers from
    /// the previous copy meanwhile.
    public func refreshLookingGlass(_ done: @escaping @Sendable () -> Void) {
        queue.async {
            let differences = self.checkConsistency()
            let d = self.drivers.mapValues(\.lookingGlass).map { type, glass in
                (type, glass.adding("dataplane_differences", .array((differences[type] ?? []).map { .string($0) })))
            }
            let i = self.instances.mapValues(\.lookingGlass)
            self.lock.withLock { (self.driverGlass, self.instanceGlass) = (Dictionary(uniqueKeysWithValues: d), i) }
            done()
        }
    }

    /// On the queue: each initialized driver's differences with its instances (kept for `/metrics`).
    private func checkConsistency() -> [VPNType: [String]] {
        var found: [VPNType: [String]] = [:]
        for type in initialized { found[type] = drivers[type]?.differences() ?? [] }
        lock.withLock { driverDifferences = found }
        return found
    }

    /// The differences the last check found, per driver type.
    public var differences: [VPNType: [String]] { lock.withLock { driverDifferences } }

    /// The restart is over (the routes are back): each driver removes what its instances did not
    /// take over; adoption ends. Calls `done` on the executor with what was removed.
    public func sweepStale(_ done: @escaping @Sendable ([VPNType: [String]]) -> Void) {
        queue.async {
            var removed: [VPNType: [String]] = [:]
            for type in self.initialized { removed[type] = self.drivers[type]?.sweepStale() ?? [] }
            // Drivers not used since the restart still hold what the earlier run left.
            for (type, driver) in self.drivers where !self.initialized.contains(type) && self.adopting {
                do { try driver.resetState() } catch { self.logger.warning("\(type.rawValue) dataplane driver: cleaning up an earlier run failed: \(error)") }
            }
            self.adopting = false
            _ = self.checkConsistency()
            done(removed)
        }
    }

    public func lookingGlass(of type: VPNType) -> JSONValue? { lock.withLock { driverGlass[type] } }
    public func lookingGlass(of instance: DataplaneInstanceRef) -> JSONValue? { lock.withLock { instanceGlass[instance] } }

    /// Runs `body` with a driver, on the executor, and waits (`bagpipe-bgp-cleanup`, tests).
    public func withDriver<T: Sendable>(_ type: VPNType, _ body: @Sendable (any DataplaneDriver) throws -> T) throws -> T? {
        try queue.sync { try drivers[type].map(body) }
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    private func driver(_ type: VPNType) throws -> any DataplaneDriver {
        guard let d = drivers[type] else { throw Refused(description: "no \(type.rawValue) dataplane driver") }
        return d
    }

    private func instance(_ ref: DataplaneInstanceRef) throws -> any DataplaneInstance {
        if let i = instances[ref] { return i }
        throw Refused(description: failedInstances[ref].map { "\(ref) was not created: \($0)" } ?? "\(ref) does not exist")
    }

    /// Reference §9.1: before a type's first instance, leftovers of an earlier run go (errors only
    /// logged), then the driver prepares the host (an error fails the request, and the next
    /// instance tries again).
    private func initialize(_ type: VPNType) throws {
        guard !initialized.contains(type) else { return }
        let d = try driver(type)
        if adopting {
            do { try d.adoptState() } catch { logger.warning("\(type.rawValue) dataplane driver: taking over an earlier run's state failed: \(error)") }
        } else {
            do { try d.resetState() } catch { logger.warning("\(type.rawValue) dataplane driver: cleaning up an earlier run failed: \(error)") }
        }
        do { try d.initialize() } catch { throw Refused(description: "the \(type.rawValue) dataplane driver could not initialize: \(error)") }
        initialized.insert(type)
    }

    private func apply(_ request: DataplaneRequest) throws {
        switch request {
        case .makeInstance(let ref, let externalID, let label, let options):
            do {
                try initialize(ref.type)
                instances[ref] = try driver(ref.type).makeInstance(id: ref.id, externalID: externalID, label: label, options: options)
            } catch {
                failedInstances[ref] = "\(error)"
                throw error
            }
        case .plug(let ref, let e): try instance(ref).plug(e)
        case .unplug(let ref, let e, let last): try instance(ref).unplug(e, lastEndpointOfPort: last)
        case .setUp(let ref, let r): try instance(ref).setUp(r)
        case .remove(let ref, let r): try instance(ref).remove(r)
        case .addFlood(let ref, let f): try instance(ref).addFlood(f)
        case .removeFlood(let ref, let f): try instance(ref).removeFlood(f)
        case .addTrafficClassifier(let ref, let c, let to): try instance(ref).addTrafficClassifier(c, redirectTo: to)
        case .removeTrafficClassifier(let ref, let c): try instance(ref).removeTrafficClassifier(c)
        case .setGatewayPort(let ref, let port, let gateway): try instance(ref).setGatewayPort(port, gateway: gateway)
        case .gatewayPortDown(let ref, let port): try instance(ref).gatewayPortDown(port)
        case .updateFallback(let ref, let fallback): (try instance(ref)).updateFallback(fallback)
        case .cleanup(let ref):
            failedInstances[ref] = nil
            guard let i = instances.removeValue(forKey: ref) else { return }
            lock.withLock { instanceGlass[ref] = nil }
            i.cleanup()
        case .createGatewayLink(let type, let link):
            try initialize(type)
            try driver(type).createGatewayLink(link)
        case .deleteGatewayLink(let type, let link): (try driver(type)).deleteGatewayLink(link)
        case .flush(let type):
            guard initialized.contains(type) else { return }
            try driver(type).flush()
        case .reconcile(let type):
            guard initialized.contains(type) else { return }
            // A failure is logged once until the driver succeeds again (ovs-vswitchd may be down a while).
            do {
                if let repaired = try driver(type).reconcile() { logger.warning("\(type.rawValue) dataplane driver: \(repaired)", metadata: ["lg": "driver-\(type.rawValue)"]) }
                failingReconciles.remove(type)
            } catch {
                if failingReconciles.insert(type).inserted { logger.warning("\(type.rawValue) dataplane driver: cannot check the dataplane (will retry): \(error)") }
            }
        case .stop(let type): (try driver(type)).stop()
        }
    }
}
