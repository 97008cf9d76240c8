import ControllerCore
import Dispatch
import ControllerStore
import Logging
import NeutronModel

/// The controller's state and its one writer. Reads are served from memory; a write runs the
/// operation on a copy of the state, commits what it changed in one database transaction, and only
/// then replaces the state and tells the host watchers. Writes are serialized (one at a time per
/// replica, and across replicas by the database's lock); a write that lost a race with another
/// replica catches up and runs again on the newer state.
public actor Controller {
    public private(set) var state: ControllerState
    let store: ControllerStore
    public let settings: ControllerSettings
    let logger: Logger
    var hub: WatchHub
    private var writing = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(store: ControllerStore, settings: ControllerSettings, logger: Logger) async throws {
        try await store.migrate()
        let (resources, version) = try await store.load()
        let state = ControllerState(loading: resources, version: version)
        self.state = state
        self.store = store
        self.settings = settings
        self.logger = logger
        hub = WatchHub(state: state)
        logger.notice("loaded \(resources.count) resources at version \(version)")
    }

    /// Runs a read on the current state.
    public func read<T: Sendable>(_ body: @Sendable (ControllerState) throws -> T) rethrows -> T { try body(state) }

    /// Runs a write: `operation` changes a copy of the state or throws (nothing is stored then).
    public func write<T: Sendable>(_ operation: @Sendable (inout ControllerState) throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        while true {
            var next = state
            next.clearChanges()
            let result = try operation(&next)
            let changed = next.changed.map { ($0, next.resource($0)) }
            guard !changed.isEmpty else { return result }
            let version: Int64
            do {
                version = try await store.commit(changed, after: state.version)
            } catch is ControllerStore.Behind {
                try await catchUpLocked()
                continue
            }
            let before = state
            next.apply([], version: version)
            state = next
            hub.publish(before: before, after: state, keys: changed.map(\.0), version: version)
            return result
        }
    }

    /// Applies what other replicas committed (after a notification, or on the periodic poll).
    public func catchUp() async throws {
        await acquire()
        defer { release() }
        try await catchUpLocked()
    }

    private func catchUpLocked() async throws {
        guard let changes = try await store.changes(after: state.version) else {
            // The log no longer reaches back to our version: load everything again.
            let (resources, version) = try await store.load()
            logger.warning("change log compacted past version \(state.version): reloaded \(resources.count) resources at version \(version)")
            hub.finishAll()
            state = ControllerState(loading: resources, version: version)
            hub = WatchHub(state: state)
            return
        }
        for change in changes {
            let before = state
            state.apply(change.resources, version: change.version)
            hub.publish(before: before, after: state, keys: change.resources.map(\.0), version: change.version)
        }
    }

    private func acquire() async {
        guard writing else {
            writing = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty { writing = false } else { waiting.removeFirst().resume() }
    }

    // MARK: - Host views

    /// A host's view and the version it is at, to watch from.
    public func listHost(_ host: String) -> (version: Int64, objects: [(ResourceKey, JSONObject)]) {
        hub.track(host, in: state)
        let view = state.hostView(host)
        return (state.version, view.keys.sorted().compactMap { k in view[k].map { (k, $0) } })
    }

    public enum WatchStart: Sendable {
        case events(id: Int, backlog: [WatchEvent], live: AsyncStream<WatchEvent>)
        /// The version is older than what is kept (or newer than the state): list again.
        case gone(oldest: Int64, current: Int64)
    }

    /// `heartbeat`: seconds between bookmarks.
    public func watchHost(_ host: String, from version: Int64, heartbeat: Double) -> WatchStart {
        startTicker()
        do {
            let (id, backlog, live) = try hub.watch(host, from: version, in: state, heartbeat: heartbeat, now: Self.now())
            return .events(id: id, backlog: backlog, live: live)
        } catch WatchHub.ResumeError.gone(let oldest) {
            return .gone(oldest: oldest, current: state.version)
        } catch {
            return .gone(oldest: state.version, current: state.version)
        }
    }

    public func stopWatching(_ host: String, _ id: Int) { hub.stopWatching(host, id) }

    private var ticker: Task<Void, Never>?

    /// One task sends every watcher's bookmarks, every 50 ms at most.
    private func startTicker() {
        guard ticker == nil else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 50_000_000)
                await self?.tick()
            }
        }
    }

    private func tick() { hub.sendBookmarks(now: Self.now(), version: state.version) }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    public var version: Int64 { state.version }

    public func shutdown() {
        ticker?.cancel()
        hub.finishAll()
    }
}
