import BGPRoutes
import BGPSession
import BGPWire

/// A hash index from destination keys to slot numbers that stores only the slot numbers (4 bytes
/// each, open addressing with linear probing): the keys stay in the slots themselves, so a route's key
/// is held once. With a dictionary it was held twice (88 bytes more per route).
struct SlotIndex {
    private static let empty: Int32 = -1
    private static let deleted: Int32 = -2
    private var table = [Int32](repeating: SlotIndex.empty, count: 16)
    private(set) var count = 0
    private var used = 0  // live + deleted markers

    /// The slot whose key matches, probing from `hash`.
    func find(hash: Int, matches: (Int32) -> Bool) -> Int32? {
        let mask = table.count - 1
        var i = hash & mask
        while true {
            let s = table[i]
            if s == Self.empty { return nil }
            if s >= 0 && matches(s) { return s }
            i = (i + 1) & mask
        }
    }

    /// Adds a slot (its key must not be present). `hashOf` rehashes existing slots when the table grows.
    mutating func insert(_ slot: Int32, hash: Int, hashOf: (Int32) -> Int) {
        if (used + 1) * 2 > table.count { rehash(capacity: count + 1 > table.count / 4 ? table.count * 2 : table.count, hashOf: hashOf) }
        let mask = table.count - 1
        var i = hash & mask
        while table[i] >= 0 { i = (i + 1) & mask }
        if table[i] == Self.empty { used += 1 }
        table[i] = slot
        count += 1
    }

    mutating func remove(_ slot: Int32, hash: Int) {
        let mask = table.count - 1
        var i = hash & mask
        while table[i] != Self.empty {
            if table[i] == slot {
                table[i] = Self.deleted
                count -= 1
                return
            }
            i = (i + 1) & mask
        }
    }

    private mutating func rehash(capacity: Int, hashOf: (Int32) -> Int) {
        let old = table
        table = [Int32](repeating: Self.empty, count: max(16, capacity))
        used = 0
        count = 0
        let mask = table.count - 1
        for s in old where s >= 0 {
            var i = hashOf(s) & mask
            while table[i] != Self.empty { i = (i + 1) & mask }
            table[i] = s
            used += 1
            count += 1
        }
    }
}

/// The paths of a destination, the first one inline: most destinations have one path, and an
/// array per destination would cost a heap block (about 160 bytes) each.
struct PathList: RandomAccessCollection {
    private var first: Path?
    private var rest: [Path] = []

    init() {}

    var startIndex: Int { 0 }
    var endIndex: Int { first == nil ? 0 : 1 + rest.count }

    subscript(i: Int) -> Path {
        get { i == 0 ? first! : rest[i - 1] }
        set { if i == 0 { first = newValue } else { rest[i - 1] = newValue } }
    }

    // Field reads without copying a whole path.
    func source(at i: Int) -> WorkerID { i == 0 ? first!.source : rest[i - 1].source }
    func attributes(at i: Int) -> AttributeSet { i == 0 ? first!.attributes : rest[i - 1].attributes }
    func element(at i: Int) -> NLRIElement { i == 0 ? first!.element : rest[i - 1].element }

    mutating func append(_ path: Path) {
        if first == nil { first = path } else { rest.append(path) }
    }

    mutating func remove(at i: Int) {
        if i == 0 {
            first = rest.isEmpty ? nil : rest.removeFirst()
        } else {
            rest.remove(at: i - 1)
        }
    }
}
