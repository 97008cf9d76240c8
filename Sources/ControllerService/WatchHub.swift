import ControllerCore
import NIOCore
import NeutronModel

/// An event of a host's watch (newline-delimited JSON on the wire).
public struct WatchEvent: Sendable, Equatable {
    public enum EventType: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK" }
    public let type: EventType
    public let version: Int64
    public let key: ResourceKey?
    public let object: JSONObject?

    /// The event as one line of the stream, serialized once however many watchers get it (the
    /// buffer is shared, never copied, by the writes to each watcher's connection).
    public let line: String
    public let buffer: ByteBuffer

    public init(type: EventType, version: Int64, key: ResourceKey? = nil, object: JSONObject? = nil) {
        self.type = type
        self.version = version
        self.key = key
        self.object = object
        var o = JSONObject([("type", .string(type.rawValue)), ("resource_version", .int(version))])
        if let key {
            o["kind"] = .string(key.kind.rawValue)
            o["id"] = .string(key.id)
        }
        if let object { o["object"] = .object(object) }
        line = JSON.object(o).serialized + "\n"
        buffer = ByteBuffer(string: line)
    }

}

/// The per-host views and their recent events, kept by the controller as it applies writes (its
/// own and the other replicas'). Changes are filtered per host here, on the server: a host hears
/// only of objects in its view, and an object entering or leaving the view is ADDED or DELETED.
/// Not thread-safe: owned by the `Controller` actor.
struct WatchHub {
    struct HostState {
        /// Object → digest of its rendered form: a MODIFIED event only when the form changed.
        var members: [ResourceKey: Int] = [:]
        /// Recent events, oldest first; a watcher can resume from any version ≥ `logStart`.
        var log: [WatchEvent] = []
        var logStart: Int64
        var watchers: [Int: AsyncStream<WatchEvent>.Continuation] = [:]
    }

    var hosts: [String: HostState] = [:]
    /// Events kept per host.
    let logLimit: Int
    /// Resuming from before this version needs a new list (410): events before it were not kept.
    var startVersion: Int64
    private var nextWatcher = 0

    init(state: ControllerState, logLimit: Int = 1000) {
        self.logLimit = logLimit
        startVersion = state.version
        for host in state.portsByHost.keys { track(host, in: state) }
    }

    /// Starts keeping a host's view (a host with ports, or one that listed).
    mutating func track(_ host: String, in state: ControllerState) {
        guard hosts[host] == nil else { return }
        var h = HostState(logStart: startVersion)
        for key in state.hostViewKeys(host) { if let o = state.viewObject(key) { h.members[key] = o.serializedHash } }
        hosts[host] = h
    }

    /// A committed write: `before` and `after` the change of `keys`, numbered `version`.
    mutating func publish(before: ControllerState, after: ControllerState, keys: [ResourceKey], version: Int64) {
        var concerned = Set<String>()
        for key in keys {
            concerned.formUnion(before.hostsConcerned(by: key))
            concerned.formUnion(after.hostsConcerned(by: key))
        }
        // Objects are rendered (and events serialized) once per write, not once per host.
        var objects: [ResourceKey: (object: JSONObject, digest: Int)?] = [:]
        func object(_ key: ResourceKey) -> (object: JSONObject, digest: Int)? {
            if let cached = objects[key] { return cached }
            let o = after.viewObject(key).map { ($0, $0.serializedHash) }
            objects[key] = .some(o)
            return o
        }
        var shared: [String: WatchEvent] = [:]
        func event(_ type: WatchEvent.EventType, _ key: ResourceKey, _ o: JSONObject?) -> WatchEvent {
            let id = "\(type.rawValue) \(key)"
            if let e = shared[id] { return e }
            let e = WatchEvent(type: type, version: version, key: key, object: o)
            shared[id] = e
            return e
        }
        for host in concerned.sorted() {
            if hosts[host] == nil { hosts[host] = HostState(logStart: startVersion) }
            let keys = after.hostViewKeys(host)
            guard var h = hosts[host] else { continue }
            var events: [WatchEvent] = []
            for key in h.members.keys.sorted() where !keys.contains(key) {
                events.append(event(.deleted, key, nil))
                h.members[key] = nil
            }
            for key in keys.sorted() {
                guard let (o, digest) = object(key) else { continue }
                switch h.members[key] {
                case nil: events.append(event(.added, key, o))
                case let d? where d != digest: events.append(event(.modified, key, o))
                default: continue
                }
                h.members[key] = digest
            }
            guard !events.isEmpty else { continue }
            h.log += events
            if h.log.count > logLimit {
                let dropped = h.log.count - logLimit
                h.logStart = h.log[dropped - 1].version
                h.log.removeFirst(dropped)
            }
            for e in events { for w in h.watchers.values { w.yield(e) } }
            hosts[host] = h
        }
    }

    enum ResumeError: Error { case gone(oldest: Int64) }

    /// A new watcher of `host` from `version`: the events after it that are kept, then live ones.
    /// When each watcher's next bookmark is due (one ticker sends them all: no timer per watcher).
    struct Heartbeat {
        var host: String
        var interval: Double
        var due: Double
    }
    var heartbeats: [Int: Heartbeat] = [:]

    /// Sends the bookmarks due at `now` (seconds, monotonic).
    mutating func sendBookmarks(now: Double, version: Int64) {
        for (id, beat) in heartbeats where beat.due <= now {
            bookmark(beat.host, id, version: version)
            heartbeats[id]?.due = now + beat.interval
        }
    }

    mutating func watch(_ host: String, from version: Int64, in state: ControllerState, heartbeat: Double, now: Double) throws -> (Int, [WatchEvent], AsyncStream<WatchEvent>) {
        track(host, in: state)
        guard var h = hosts[host] else { throw ResumeError.gone(oldest: startVersion) }
        guard version >= h.logStart, version <= state.version else { throw ResumeError.gone(oldest: h.logStart) }
        let backlog = h.log.filter { $0.version > version }
        let (stream, continuation) = AsyncStream<WatchEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        nextWatcher += 1
        // A first bookmark: the watcher knows the stream is up and where it stands.
        continuation.yield(WatchEvent(type: .bookmark, version: state.version))
        h.watchers[nextWatcher] = continuation
        heartbeats[nextWatcher] = Heartbeat(host: host, interval: heartbeat, due: now + heartbeat)
        hosts[host] = h
        return (nextWatcher, backlog, stream)
    }

    /// A bookmark into one watcher's stream, after every event already sent to it: resuming from
    /// its version loses nothing.
    func bookmark(_ host: String, _ id: Int, version: Int64) {
        hosts[host]?.watchers[id]?.yield(WatchEvent(type: .bookmark, version: version))
    }

    mutating func stopWatching(_ host: String, _ id: Int) {
        heartbeats[id] = nil
        hosts[host]?.watchers.removeValue(forKey: id)?.finish()
    }


    func finishAll() {
        for h in hosts.values { for w in h.watchers.values { w.finish() } }
    }
}

extension JSONObject {
    var serializedHash: Int { JSON.object(self).serialized.hashValue }
}
