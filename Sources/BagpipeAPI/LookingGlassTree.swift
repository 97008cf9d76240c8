import BGPEngine
import BGPSession
import BGPWire
import BagpipeVPN
import NIOCore

/// The looking glass (reference §2), built on the engine's loop. Nodes show their big children as
/// `{"href": …}` (the original's SUBTREE and DELEGATE children) and resolve them when addressed;
/// deeper segments are key lookups in objects and `id` lookups in lists.
struct LookingGlassTree {
    let manager: VPNManager
    let speaker: BGPSpeaker
    let engine: RouteEngine
    let base: String
    let info: Info

    /// What the looking glass shows about the process.
    struct Info: Sendable {
        var startTime: String
        var version: String
        /// `/looking-glass/config`: the configuration as read.
        var config: JSONValue
    }

    /// The node at `path` below `/looking-glass` (`base` is its absolute URL: hrefs are absolute),
    /// nil for a 404.
    static func node(_ path: [String], of service: VPNService, base: String, info: Info) -> EventLoopFuture<JSONValue?> {
        service.inspect(dataplaneCopy: showsDataplane(path)) { manager, speaker, engine in
            LookingGlassTree(manager: manager, speaker: speaker, engine: engine, base: base, info: info).resolve(path)
        }
    }

    /// Paths that show dataplane state: the VPN subtree down to an instance as a whole, and any
    /// `dataplane` node. Others (an instance's routes, which clients poll) do not wait for a copy.
    static func showsDataplane(_ path: [String]) -> Bool {
        path.first == "vpns" && (path.count <= 3 || path.contains("dataplane"))
    }

    func href(_ segments: [String]) -> JSONValue {
        .string(([base] + segments.map(\.addingPercentEncodingForPath)).joined(separator: "/"))
    }

    func link(_ segments: [String]) -> JSONValue { .object([("href", href(segments))]) }

    /// Children shown as links in each kind of node.
    static let linkedChildren: [String: Set<String>] = [
        "root": ["config", "bgp", "vpns", "logs"], "bgp": ["peers", "routes", "workers", "adv_routes"], "vpns": ["instances", "dataplane"],
        "instance": ["ports", "received_routes", "best_routes", "adv_routes", "readvertised", "dataplane", "logs"], "peer": ["logs", "adv_routes"],
        "dataplane": ["drivers", "ids"], "driver": ["logs"],
    ]

    /// The node at `path`, nil for a 404.
    func resolve(_ path: [String]) -> JSONValue? {
        var path = path[...]
        // Walk down the structural nodes; each names its kind and its full value.
        var kind = "root", segments: [String] = [], value = root
        while let next = path.first {
            guard let child = structuralChild(kind: kind, segments: segments, name: next) else { break }
            path = path.dropFirst()
            segments.append(next)
            (kind, value) = child
        }
        guard let value else { return nil }
        if path.isEmpty { return collapse(value, kind: kind, at: segments) }
        return Self.lookup(value, Array(path))
    }

    /// A node's children that are nodes of their own: (kind, value).
    func structuralChild(kind: String, segments: [String], name: String) -> (String, JSONValue?)? {
        switch (kind, name) {
        case ("root", "summary"): return ("summary", summary)
        case ("root", "config"): return ("config", info.config)
        case ("root", "logs"): return ("logs", WarningLog.shared.json())
        case ("root", "bgp"): return ("bgp", bgp)
        case ("root", "vpns"): return ("vpns", vpns)
        case ("bgp", "peers"): return ("peers", peerList)
        case ("bgp", "routes"): return ("routes", routes)
        case ("bgp", "workers"): return ("workers", workerList)
        case ("bgp", "route_counts"): return ("route_counts", routeCounts)
        case ("bgp", "adv_routes"): return ("adv_routes", .array(engine.routes(originatedBy: engine.routeTargetConstraintWorker).map { VPNInstance.routeJSON($0, sourceName: "BGPManager") }))
        case ("peers", _): return ("peer", peerNode(name))
        case ("workers", _): return workerNode(name)
        case ("vpns", "instances"): return ("instances", manager.instanceList { self.href(["vpns", "instances", $0]) })
        case ("vpns", "instances_per_vni"): return ("instances_per_vni", manager.instancesPerVNI)
        case ("vpns", "dataplane"): return ("dataplane", .object([("drivers", .null), ("ids", .null)]))
        case ("instances", _): return ("instance", instanceNode(name))
        case ("dataplane", "drivers"): return ("drivers", manager.driverList { self.href(["vpns", "dataplane", "drivers", $0]) })
        case ("dataplane", "ids"): return ("ids", manager.labelAllocations)
        case ("drivers", _): return ("driver", manager.driverNode(name).map { Self.adding($0, [("logs", WarningLog.shared.json(object: "driver-\(name)"))]) })
        default: return nil
        }
    }

    /// The node with its linked children replaced by links.
    func collapse(_ value: JSONValue, kind: String, at segments: [String]) -> JSONValue {
        guard case .object(let fields) = value, let linked = Self.linkedChildren[kind] else { return value }
        return .object(fields.map { key, v in linked.contains(key) ? (key, link(segments + [key])) : (key, v) })
    }

    static func adding(_ value: JSONValue, _ more: [(String, JSONValue)]) -> JSONValue {
        guard case .object(let fields) = value else { return value }
        return .object(fields + more)
    }

    var root: JSONValue? { .object([("summary", summary), ("config", .null), ("bgp", .null), ("vpns", .null), ("logs", .null)]) }

    var bgp: JSONValue {
        .object([("peers", .null), ("routes", .null), ("workers", .null), ("route_counts", routeCounts), ("adv_routes", .null)])
    }

    var vpns: JSONValue { .object([("instances", .null), ("dataplane", .null), ("instances_per_vni", manager.instancesPerVNI)]) }

    var routeCounts: JSONValue {
        let counts = engine.routeCounts()
        return .object([("local_routes_count", JSONValue(counts.local)), ("received_routes_count", JSONValue(counts.received))])
    }

    var summary: JSONValue {
        .object([
            ("BGP_established_peers", JSONValue(speaker.peersOnLoop.filter { $0.peer.stateOnLoop == .established }.count)), ("route_counts", routeCounts),
            ("vpn_instances_count", JSONValue(manager.instanceCount)), ("warnings_and_errors", JSONValue(WarningLog.shared.count)),
            ("start_time", .string(info.startTime)), ("version", .string(info.version)),
        ])
    }

    func sourceName(_ worker: WorkerID) -> String { VPNInstance.sourceName(worker, engine) }

    var routes: JSONValue {
        .object(engine.families.map { family in
            ("\(VPNInstance.familyNames[family] ?? "\(family)"),*", .array(engine.routes(family).map { VPNInstance.routeJSON($0, sourceName: sourceName($0.source)) }))
        })
    }

    var peerList: JSONValue {
        .array(speaker.peersOnLoop.map { .object([("id", .string($0.address)), ("state", .string($0.peer.stateOnLoop.rawValue)), ("href", href(["bgp", "peers", $0.address]))]) })
    }

    /// Workers with subscriptions: established peers, then VPN instances.
    var workerList: JSONValue {
        let peers = speaker.peersOnLoop.filter { $0.peer.stateOnLoop == .established }.map { "BGP-\($0.address)" }
        let instances = manager.instanceWorkers.map(\.name)
        return .array((peers + instances).map { .object([("id", .string($0)), ("href", href(["bgp", "workers", $0]))]) })
    }

    func workerNode(_ name: String) -> (String, JSONValue?) {
        if name.hasPrefix("BGP-") { return ("peer", peerNode(String(name.dropFirst(4)))) }
        guard let w = manager.instanceWorkers.first(where: { $0.name == name }) else { return ("instance", nil) }
        return ("instance", instanceNode(w.externalID))
    }

    func instanceNode(_ externalID: String) -> JSONValue? {
        guard let node = manager.instanceNode(externalID, instanceHref: { self.href(["vpns", "instances", $0]) }, driverHref: { self.href(["vpns", "dataplane", "drivers", $0]) }),
            let name = manager.instance(externalID)?.name
        else { return nil }
        return Self.adding(node, [("logs", WarningLog.shared.json(object: name))])
    }

    func peerNode(_ address: String) -> JSONValue? {
        guard let (_, worker, peer) = speaker.peersOnLoop.first(where: { $0.address == address }) else { return nil }
        let c = peer.configuration
        let negotiated = peer.negotiatedOnLoop
        let statistics = peer.statisticsOnLoop
        let requested = engine.requestedRouteTargets(worker)
        // What this peer is sent: our own routes its RT-Constraint routes ask for (all without RTC).
        let advertised = engine.families.filter { $0 != .routeTargetConstraint && negotiated?.families.contains($0) == true }.flatMap { family in
            engine.routes(family).filter { route in !engine.isPeer(route.source) && (requested.map { r in route.routeTargets.contains(where: r.contains) } ?? true) }
        }
        return .object([
            ("peeringAddresses", .object([("peer_address", .string(address)), ("local_address", .string(peer.localAddress ?? "\(c.routerID)"))])),
            ("as_info", .object([("local", JSONValue(c.localAS)), ("peer", JSONValue(c.peerAS))])),
            ("rtc", .object([("active", .bool(negotiated?.families.contains(.routeTargetConstraint) ?? false)), ("enabled", .bool(c.families.contains(.routeTargetConstraint)))])),
            ("active_families", .array((negotiated?.families ?? []).map { .string("\($0)") })),
            ("protocol", .object([
                ("state", .string(statistics.state.rawValue)), ("previous_state", .string("(\(statistics.previousState?.rawValue ?? "Idle"))")),
                ("hold_time", negotiated.map { JSONValue($0.holdTime) } ?? .null),
                ("last_transition_time", .string(statistics.lastStateChangeWallClock > 0 ? WarningLog.timestamp(statistics.lastStateChangeWallClock) : "")),
            ])),
            ("name", .string("BGP-\(address)")),
            ("internals", .object([
                ("event queue length", 0), ("subscriptions", .array((requested.map { $0.sorted().map { .string("\($0)") } }) ?? [.string("*")])),
                ("messages_received", .object(statistics.messagesReceived.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) })),
                ("messages_sent", .object(statistics.messagesSent.sorted { $0.key < $1.key }.map { ($0.key, JSONValue($0.value)) })),
            ])),
            ("logs", WarningLog.shared.json(object: "BGP-\(address)")),
            ("adv_routes", .array(advertised.map { VPNInstance.routeJSON($0, sourceName: sourceName($0.source)) })),
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
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count < 2 ? "0" + hex : hex)
            }
        }
        return out
    }
}
