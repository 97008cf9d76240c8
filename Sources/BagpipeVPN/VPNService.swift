import BGPEngine
import BGPWire
import BGPSession
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

    private func withManager<T: Sendable>(_ body: @escaping @Sendable (VPNManager) throws -> T) -> EventLoopFuture<T> {
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

    public func stop() -> EventLoopFuture<Void> { withManager { $0.stopAll() } }
}

extension VPNService {
    /// A looking-glass node (reference §2): `path` below `/looking-glass`, `base` the absolute URL of
    /// `/looking-glass` (hrefs are absolute). Deeper segments are key lookups in objects and `id`
    /// lookups in lists. Nil: no such node (a 404).
    public func lookingGlass(path: [String], base: String, startTime: String, version: String) -> EventLoopFuture<JSONValue?> {
        withManager { m in
            self.speaker.onLoop { engine in
                LookingGlassTree(manager: m, speaker: self.speaker, engine: engine, base: base, startTime: startTime, version: version).resolve(path)
            }
        }
    }
}

/// Builds looking-glass nodes on the engine's loop.
struct LookingGlassTree {
    let manager: VPNManager
    let speaker: BGPSpeaker
    let engine: RouteEngine
    let base: String
    let startTime: String
    let version: String

    func href(_ segments: [String]) -> JSONValue {
        let encoded = segments.map { $0.addingPercentEncodingForPath }
        return .string(([base] + encoded).joined(separator: "/"))
    }

    func link(_ segments: [String]) -> JSONValue { .object([("href", href(segments))]) }

    func resolve(_ path: [String]) -> JSONValue? {
        // The structural nodes; anything deeper is a lookup inside the node's value.
        let known: [[String]] = [["vpns", "instances"], ["bgp", "peers"], ["bgp", "route_counts"], ["vpns", "instances_per_vni"], ["summary"], ["bgp"], ["vpns"], []]
        for prefix in known where path.starts(with: prefix) {
            if prefix == ["vpns", "instances"], path.count > 2 {
                guard let node = manager.instanceNode(path[2]) else { return nil }
                return Self.lookup(node, Array(path.dropFirst(3)))
            }
            if prefix == ["bgp", "peers"], path.count > 2 {
                guard let node = peerNode(path[2]) else { return nil }
                return Self.lookup(node, Array(path.dropFirst(3)))
            }
            guard let node = node(prefix) else { return nil }
            return Self.lookup(node, Array(path.dropFirst(prefix.count)))
        }
        return nil
    }

    func node(_ path: [String]) -> JSONValue? {
        switch path {
        case []: return .object([("summary", summary), ("bgp", link(["bgp"])), ("vpns", link(["vpns"]))])
        case ["summary"]: return summary
        case ["bgp"]: return .object([("peers", link(["bgp", "peers"])), ("route_counts", routeCounts)])
        case ["bgp", "peers"]:
            return .array(speaker.peersOnLoop.map { .object([("id", .string($0.address)), ("state", .string($0.peer.stateOnLoop.rawValue)), ("href", href(["bgp", "peers", $0.address]))]) })
        case ["bgp", "route_counts"]: return routeCounts
        case ["vpns"]: return .object([("instances", link(["vpns", "instances"])), ("instances_per_vni", manager.instancesPerVNI)])
        case ["vpns", "instances"]: return manager.instanceList { self.href(["vpns", "instances", $0]) }
        case ["vpns", "instances_per_vni"]: return manager.instancesPerVNI
        default: return nil
        }
    }

    var routeCounts: JSONValue {
        let counts = engine.routeCounts()
        return .object([("local_routes_count", JSONValue(counts.local)), ("received_routes_count", JSONValue(counts.received))])
    }

    var summary: JSONValue {
        .object([
            ("BGP_established_peers", JSONValue(speaker.peersOnLoop.filter { $0.peer.stateOnLoop == .established }.count)), ("route_counts", routeCounts),
            ("vpn_instances_count", JSONValue(manager.instanceCount)), ("start_time", .string(startTime)), ("version", .string(version)),
        ])
    }

    func peerNode(_ address: String) -> JSONValue? {
        guard let peer = speaker.peersOnLoop.first(where: { $0.address == address })?.peer else { return nil }
        let c = peer.configuration
        let negotiated = peer.negotiatedOnLoop
        return .object([
            ("peeringAddresses", .object([("peer_address", .string(address)), ("local_address", .string(peer.localAddress ?? "\(c.routerID)"))])),
            ("as_info", .object([("local", JSONValue(c.localAS)), ("peer", JSONValue(c.peerAS))])),
            ("rtc", .object([("active", .bool(negotiated?.families.contains(.routeTargetConstraint) ?? false)), ("enabled", .bool(c.families.contains(.routeTargetConstraint)))])),
            ("active_families", .array((negotiated?.families ?? []).map { .string("\($0)") })),
            ("protocol", .object([("state", .string(peer.stateOnLoop.rawValue)), ("hold_time", negotiated.map { JSONValue($0.holdTime) } ?? .null)])),
            ("name", .string("BGP-\(address)")),
        ])
    }

    /// Key lookups in objects, `id` lookups in lists.
    static func lookup(_ value: JSONValue, _ path: [String]) -> JSONValue? {
        guard let first = path.first else { return value }
        switch value {
        case .object: return value[first].flatMap { lookup($0, Array(path.dropFirst())) }
        case .array(let items):
            return items.first { $0["id"]?.stringValue == first }.flatMap { lookup($0, Array(path.dropFirst())) }
        default: return nil
        }
    }
}

extension String {
    /// Percent-encoding of one path segment (RFC 3986 unreserved characters kept).
    var addingPercentEncodingForPath: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
