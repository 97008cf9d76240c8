import BGPRoutes
import BGPSession
import BGPWire

public typealias WorkerID = Int

/// One path to a destination: who sent it, its NLRI as sent (labels, ESI…) and its attributes.
struct Path {
    /// The worker, stored in 4 bytes (paths are the bulk of the Loc-RIB).
    private var sourceID: Int32
    var source: WorkerID { Int(sourceID) }
    /// RFC 7911 path identifier from the source (0 without add-path): a source can send several paths.
    var pathID: UInt32
    /// The NLRI with its path identifier removed (we send without add-path).
    var element: NLRIElement
    var attributes: AttributeSet

    init(source: WorkerID, pathID: UInt32, element: NLRIElement, attributes: AttributeSet) {
        sourceID = Int32(truncatingIfNeeded: source)
        self.pathID = pathID
        self.element = element
        self.attributes = attributes
    }
}

/// Which peers were sent a destination: one bit per peer slot, the first 64 inline.
struct PeerBits {
    private var low: UInt64 = 0
    private var high: [UInt64]? = nil

    var isEmpty: Bool { low == 0 && (high?.allSatisfy { $0 == 0 } ?? true) }

    func contains(_ slot: Int) -> Bool {
        if slot < 64 { return low & (1 << UInt64(slot)) != 0 }
        let word = slot / 64 - 1
        guard let high, word < high.count else { return false }
        return high[word] & (1 << UInt64(slot % 64)) != 0
    }

    mutating func insert(_ slot: Int) {
        if slot < 64 { low |= 1 << UInt64(slot); return }
        let word = slot / 64 - 1
        var h = high ?? []
        while h.count <= word { h.append(0) }
        h[word] |= 1 << UInt64(slot % 64)
        high = h
    }

    mutating func remove(_ slot: Int) {
        if slot < 64 { low &= ~(1 << UInt64(slot)); return }
        let word = slot / 64 - 1
        guard var h = high, word < h.count else { return }
        h[word] &= ~(1 << UInt64(slot % 64))
        high = h.allSatisfy { $0 == 0 } ? nil : h
    }
}

/// Every path to one NLRI, the best one, and which peers hold our advertisement of it.
struct Destination {
    var key: RouteKey
    var paths = PathList()
    var advertised = PeerBits()
    /// Index in `paths` of the best path for peers (-1: none eligible).
    var best: Int16 = -1
    /// Sequence number of this destination's latest entry in the change log (older entries are skipped).
    var changeSeq = UInt32.max

    init(key: RouteKey) { self.key = key }

    var bestPath: Path? { best >= 0 ? paths[Int(best)] : nil }
}

/// The Loc-RIB of one family: destinations in a slot array (stable indices, so peers queue small
/// integers and walk the table with a cursor), a hash index by key, and an index by route target.
final class FamilyTable {
    let family: AddressFamily
    private(set) var slots: [Destination?] = []
    private var free: [Int32] = []
    private var index = SlotIndex()
    /// Destinations having at least one path with the route target.
    private(set) var byRouteTarget: [RouteTargetKey: Set<Int32>] = [:]
    /// EVPN MAC/IP routes by (RD, MAC): the routes of one MAC in one EVI (its IPs, a move between
    /// hosts) are found without a scan. Empty for other families.
    private(set) var byMAC: [MACKey: [Int32]] = [:]

    struct MACKey: Hashable {
        var routeDistinguisher: RouteDistinguisher
        var mac: MACAddress
    }

    static func macKey(_ key: RouteKey) -> MACKey? {
        guard case .evpn(.macIPAdvertisement(let r)) = key.element.nlri else { return nil }
        return MACKey(routeDistinguisher: r.routeDistinguisher, mac: r.mac)
    }
    private(set) var pathCount = 0

    /// Destinations whose advertisement may have changed, in order. Every peer reads it from its own
    /// position, so a change costs one append, not one insertion per peer; a destination that changes
    /// again while a peer lags is sent once (only its latest entry counts).
    private(set) var changeLog: [Int32] = []
    /// Sequence number of `changeLog[0]`.
    private(set) var logBase = 0
    var logEnd: Int { logBase + changeLog.count }

    init(family: AddressFamily) { self.family = family }

    func logChange(_ slot: Int32) {
        guard slots[Int(slot)] != nil else { return }
        slots[Int(slot)]!.changeSeq = UInt32(truncatingIfNeeded: logEnd)
        changeLog.append(slot)
    }

    /// The slot logged at `seq`, if that entry is its latest.
    func loggedSlot(_ seq: Int) -> Int32? {
        let slot = changeLog[seq - logBase]
        guard let d = slots[Int(slot)], d.changeSeq == UInt32(truncatingIfNeeded: seq) else { return nil }
        return slot
    }

    /// Forgets entries every peer has read.
    func trimLog(before seq: Int) {
        let n = min(seq - logBase, changeLog.count)
        guard n > 0, n >= 1024 || n == changeLog.count else { return }
        changeLog.removeFirst(n)
        logBase += n
    }

    var destinationCount: Int { index.count }
    var slotCount: Int { slots.count }

    /// Slots in use, in slot order.
    var liveSlots: [Int32] { slots.indices.compactMap { slots[$0] == nil ? nil : Int32($0) } }

    func slot(for key: RouteKey) -> Int32? {
        index.find(hash: key.hashValue) { slots[Int($0)]?.key == key }
    }

    /// The slot of `key`, created when missing.
    func slot(creating key: RouteKey) -> Int32 {
        let hash = key.hashValue
        if let s = index.find(hash: hash, matches: { slots[Int($0)]?.key == key }) { return s }
        let s: Int32
        if let reused = free.popLast() {
            s = reused
            slots[Int(s)] = Destination(key: key)
        } else {
            s = Int32(slots.count)
            slots.append(Destination(key: key))
        }
        index.insert(s, hash: hash) { slots[Int($0)]?.key.hashValue ?? 0 }
        if let mac = Self.macKey(key) { byMAC[mac, default: []].append(s) }
        return s
    }

    subscript(slot: Int32) -> Destination? {
        get { slots[Int(slot)] }
    }

    /// Mutates a destination in place, keeping the route-target index and path count right.
    func modify<R>(_ slot: Int32, _ body: (inout Destination) -> R) -> R {
        guard var d = slots[Int(slot)] else { fatalError("modify of a free slot") }
        slots[Int(slot)] = nil  // unique reference while it changes: no copy of its paths
        let setsBefore = d.paths.count == 1 ? d.paths.attributes(at: 0) : nil
        let before = FamilyTable.routeTargets(of: d.paths)
        let pathsBefore = d.paths.count
        let result = body(&d)
        pathCount += d.paths.count - pathsBefore
        // One path before and after with the same attribute set: the route targets are the same.
        if let setsBefore, d.paths.count == 1, d.paths.attributes(at: 0) === setsBefore {
            slots[Int(slot)] = d
            return result
        }
        let after = FamilyTable.routeTargets(of: d.paths)
        if before != after {
            for rt in before where !after.contains(rt) {
                byRouteTarget[rt]?.remove(slot)
                if byRouteTarget[rt]?.isEmpty == true { byRouteTarget[rt] = nil }
            }
            for rt in after where !before.contains(rt) { byRouteTarget[rt, default: []].insert(slot) }
        }
        slots[Int(slot)] = d
        return result
    }

    /// Runs `body` on a destination in place (no copy of its key and paths); nil for a free slot.
    /// It must not change the paths (the route-target index is kept by `modify`).
    func update<R>(_ slot: Int32, _ body: (inout Destination) -> R) -> R? {
        guard slots[Int(slot)] != nil else { return nil }
        return body(&slots[Int(slot)]!)
    }

    /// Records whether a peer holds our advertisement of a destination (no index upkeep needed).
    func setAdvertised(_ slot: Int32, bit: Int, _ value: Bool) {
        guard slots[Int(slot)] != nil else { return }
        if value { slots[Int(slot)]!.advertised.insert(bit) } else { slots[Int(slot)]!.advertised.remove(bit) }
    }

    /// Frees a destination no path and no peer needs any more.
    func releaseIfUnused(_ slot: Int32) {
        guard let d = slots[Int(slot)], d.paths.isEmpty, d.advertised.isEmpty else { return }
        index.remove(slot, hash: d.key.hashValue)
        if let mac = Self.macKey(d.key) {
            byMAC[mac]?.removeAll { $0 == slot }
            if byMAC[mac]?.isEmpty == true { byMAC[mac] = nil }
        }
        slots[Int(slot)] = nil
        free.append(slot)
    }

    static func routeTargets(of paths: PathList) -> [RouteTargetKey] {
        if paths.count == 1 { return paths[0].attributes.routeTargetKeys }
        var all: [RouteTargetKey] = []
        for p in paths { for rt in p.attributes.routeTargetKeys where !all.contains(rt) { all.append(rt) } }
        return all
    }

}
