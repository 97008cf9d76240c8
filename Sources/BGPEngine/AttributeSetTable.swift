import BGPSession
import BGPWire

/// The engine's attribute sets: one object per distinct set, counted by identity so that releasing
/// a path costs no hashing of its attributes (only the last release does, to forget the content).
struct AttributeSetTable {
    private var byContent: [AttributeSet: AttributeSet] = [:]
    private var uses: [ObjectIdentifier: Int] = [:]

    var count: Int { byContent.count }

    /// The shared set equal to `set`, with one more use.
    mutating func intern(_ set: AttributeSet) -> AttributeSet {
        // A set this table already holds (the routes of one UPDATE share one): no content hashing.
        if let n = uses[ObjectIdentifier(set)] {
            uses[ObjectIdentifier(set)] = n + 1
            return set
        }
        let shared = byContent[set] ?? set
        if shared === set, byContent[set] == nil { byContent[set] = set }
        uses[ObjectIdentifier(shared), default: 0] += 1
        return shared
    }

    /// One more use of a set this table returned.
    mutating func retain(_ set: AttributeSet) { uses[ObjectIdentifier(set), default: 0] += 1 }

    mutating func release(_ set: AttributeSet) {
        let id = ObjectIdentifier(set)
        guard let n = uses[id] else { return }
        if n > 1 {
            uses[id] = n - 1
        } else {
            uses[id] = nil
            if byContent[set] === set { byContent[set] = nil }
        }
    }
}
