/// Hands out identifiers (labels, route distinguisher numbers, instance ids, OVS group and bucket
/// ids) as the original does (reference §8.2): increasing values; a released value is reused only
/// once the counter has passed the maximum, oldest released first; a hint is honoured when free;
/// exhaustion is an error. A released value is thus not reused at once, so a stale route or flow
/// naming it cannot be mistaken for a new user's.
public struct IdentifierAllocator: Sendable {
    public let name: String
    public let range: ClosedRange<UInt32>
    /// False: never reuse (instance ids, which name things outside the process).
    public let reuses: Bool
    /// The next value never handed out (range.upperBound + 1 once past the maximum).
    private var counter: UInt64
    private var allocated: [UInt32: String] = [:]
    /// Released values, oldest first (`releasedHead` skips those taken).
    private var released: [UInt32] = []
    private var releasedHead = 0

    public init(name: String, range: ClosedRange<UInt32>, reuses: Bool = true) {
        self.name = name
        self.range = range
        self.reuses = reuses
        counter = UInt64(range.lowerBound)
    }

    /// MPLS labels and VNIs: 16 to 2^20 - 1 (0-15 are reserved, RFC 3032).
    public static func labels() -> Self { Self(name: "label", range: 16...(1 << 20) - 1) }
    /// The number of type-1 route distinguishers `<local_address>:<n>`.
    public static func routeDistinguishers() -> Self { Self(name: "route distinguisher", range: 0...65535) }
    /// VPN instance ids: monotonic, never reused.
    public static func instanceIDs() -> Self { Self(name: "VPN instance id", range: 1...UInt32.max, reuses: false) }
    public static func ovsGroups() -> Self { Self(name: "OVS group id", range: 0...UInt32.max) }
    public static func ovsBuckets() -> Self { Self(name: "OVS bucket id", range: 0...UInt32.max - (1 << 8)) }

    public var count: Int { allocated.count }
    public func isAllocated(_ value: UInt32) -> Bool { allocated[value] != nil }
    /// What a value was allocated for (for logs and the looking glass).
    public func description(of value: UInt32) -> String? { allocated[value] }
    /// Every value in use with what it was allocated for, in value order.
    public var allocations: [(value: UInt32, description: String)] { allocated.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// A new identifier; `hint` when it is in range and free.
    public mutating func allocate(for description: String = "", hint: UInt32? = nil) throws -> UInt32 {
        if let hint, range.contains(hint), allocated[hint] == nil, reuses || UInt64(hint) >= counter {
            if UInt64(hint) == counter { counter += 1 }
            if let i = released[releasedHead...].firstIndex(of: hint) { released.remove(at: i) }
            allocated[hint] = description
            return hint
        }
        // Values a hint took ahead of the counter are skipped.
        while counter <= UInt64(range.upperBound) {
            let value = UInt32(counter)
            counter += 1
            if allocated[value] == nil {
                allocated[value] = description
                return value
            }
        }
        while reuses && releasedHead < released.count {
            let value = released[releasedHead]
            releasedHead += 1
            if releasedHead > 1024 && releasedHead * 2 > released.count {
                released.removeFirst(releasedHead)
                releasedHead = 0
            }
            if allocated[value] == nil {
                allocated[value] = description
                return value
            }
        }
        throw AllocatorExhausted(name: name, range: range)
    }

    /// Gives a value back; false if it was not allocated.
    @discardableResult
    public mutating func release(_ value: UInt32) -> Bool {
        guard allocated.removeValue(forKey: value) != nil else { return false }
        if reuses { released.append(value) }
        return true
    }
}

public struct AllocatorExhausted: Error, CustomStringConvertible, Equatable {
    public var name: String
    public var range: ClosedRange<UInt32>
    public init(name: String, range: ClosedRange<UInt32>) {
        self.name = name
        self.range = range
    }
    public var description: String { "no \(name) left: all of \(range.lowerBound)-\(range.upperBound) are in use" }
}

/// Objects shared by several users (a tunnel port per remote address, a bridge per instance):
/// created for the first user, deleted with the last (reference §12, behaviour 56).
public struct SharedObjects<Key: Hashable, User: Hashable, Object> {
    private var entries: [Key: (object: Object, users: Set<User>)] = [:]

    public init() {}

    /// The object for `key`, created by `create` when nobody uses it yet; `user` is added.
    public mutating func acquire(_ key: Key, by user: User, create: () throws -> Object) rethrows -> Object {
        if let entry = entries[key] {
            entries[key]?.users.insert(user)
            return entry.object
        }
        let object = try create()
        entries[key] = (object, [user])
        return object
    }

    /// Removes `user`; returns the object when that was its last user (the caller deletes it).
    public mutating func release(_ key: Key, by user: User) -> Object? {
        guard var entry = entries[key], entry.users.remove(user) != nil else { return nil }
        if entry.users.isEmpty {
            entries[key] = nil
            return entry.object
        }
        entries[key] = entry
        return nil
    }

    public func users(of key: Key) -> Set<User> { entries[key]?.users ?? [] }
    public var keys: [Key] { Array(entries.keys) }
    /// The object for `key`, while somebody uses it.
    public func object(_ key: Key) -> Object? { entries[key]?.object }

    /// Replaces the object of a key in use (one recreated underneath, with a new handle).
    public mutating func replace(_ key: Key, with object: Object) {
        entries[key]?.object = object
    }
}
