/// RFC 4364 §4.2 route distinguisher: 2-byte type then 6 bytes whose layout depends on the type.
public struct RouteDistinguisher: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 8 bytes in network order, as one integer.
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Type 0: 2-byte AS administrator, 4-byte assigned number.
    public static func as2(_ asn: UInt16, _ assigned: UInt32) -> Self {
        Self(rawValue: UInt64(asn) << 32 | UInt64(assigned))
    }

    /// Type 1: IPv4 address administrator, 2-byte assigned number.
    public static func ipv4(_ address: IPv4Address, _ assigned: UInt16) -> Self {
        Self(rawValue: 1 << 48 | UInt64(address.value) << 16 | UInt64(assigned))
    }

    /// Type 2: 4-byte AS administrator, 2-byte assigned number.
    public static func as4(_ asn: UInt32, _ assigned: UInt16) -> Self {
        Self(rawValue: 2 << 48 | UInt64(asn) << 16 | UInt64(assigned))
    }

    public var type: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 48) }

    /// Administrator subfield (AS number or IPv4 address as an integer).
    public var administrator: UInt32 {
        switch type {
        case 0: UInt32(truncatingIfNeeded: rawValue >> 32 & 0xFFFF)
        default: UInt32(truncatingIfNeeded: rawValue >> 16)
        }
    }

    /// Assigned number subfield.
    public var assignedNumber: UInt32 {
        switch type {
        case 0: UInt32(truncatingIfNeeded: rawValue)
        default: UInt32(truncatingIfNeeded: rawValue & 0xFFFF)
        }
    }

    /// "64512:1" (type 0), "192.0.2.1:5" (type 1), "4200000000:1" (type 2); unknown types as hex.
    public var description: String {
        switch type {
        case 0, 2: "\(administrator):\(assignedNumber)"
        case 1: "\(IPv4Address(administrator)):\(assignedNumber)"
        default: "type\(type):" + String(rawValue & 0xFFFF_FFFF_FFFF, radix: 16)
        }
    }

    /// Parses the forms `description` produces. A number above 65535 before the colon gives type 2.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let assigned = UInt32(parts[1]) else { return nil }
        if let address = IPv4Address(parts[0]) {
            guard assigned <= 0xFFFF else { return nil }
            self = .ipv4(address, UInt16(assigned))
        } else if let asn = UInt32(parts[0]) {
            if asn <= 0xFFFF {
                self = .as2(UInt16(asn), assigned)
            } else {
                guard assigned <= 0xFFFF else { return nil }
                self = .as4(asn, UInt16(assigned))
            }
        } else {
            return nil
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A stack of MPLS label entries as carried in labeled NLRI (RFC 3107 / RFC 8277): each entry is
/// 3 bytes, label (20 bits), traffic class (3 bits), bottom-of-stack (1 bit).
/// Up to six entries are held inline, so a label stack never allocates and copies for free.
public struct MPLSLabelStack: Hashable, Sendable, CustomStringConvertible {
    public static let capacity = 6
    public private(set) var count: Int
    private var entries: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

    public init() {
        count = 0
        entries = (0, 0, 0, 0, 0, 0)
    }

    /// One entry (the common case), as a raw 24-bit value.
    @inline(__always)
    init(single rawEntry: UInt32) {
        count = 1
        entries = (rawEntry & 0xFF_FFFF, 0, 0, 0, 0, 0)
    }

    /// Entries as raw 24-bit values (label << 4 | tc << 1 | bos); entries past the capacity are dropped.
    public init(rawEntries: [UInt32]) {
        self.init()
        for entry in rawEntries.prefix(Self.capacity) { append(rawEntry: entry) }
    }

    /// A stack of labels with bottom-of-stack set on the last one.
    public init(labels: [UInt32]) {
        self.init()
        for (i, label) in labels.prefix(Self.capacity).enumerated() {
            append(rawEntry: (label & 0xFFFFF) << 4 | (i == min(labels.count, Self.capacity) - 1 ? 1 : 0))
        }
    }

    /// The single entry a withdraw carries for compatibility (RFC 8277 §2.4).
    public static let withdrawCompatibility = MPLSLabelStack(rawEntries: [0x800000])

    /// Appends an entry; ignored when the stack is full.
    @inline(__always)
    public mutating func append(rawEntry: UInt32) {
        let entry = rawEntry & 0xFF_FFFF
        switch count {
        case 0: entries.0 = entry
        case 1: entries.1 = entry
        case 2: entries.2 = entry
        case 3: entries.3 = entry
        case 4: entries.4 = entry
        case 5: entries.5 = entry
        default: return
        }
        count += 1
    }

    public var rawEntries: [UInt32] { (0..<count).map { self[rawEntryAt: $0] } }

    @inline(__always)
    public subscript(rawEntryAt index: Int) -> UInt32 {
        switch index {
        case 0: entries.0
        case 1: entries.1
        case 2: entries.2
        case 3: entries.3
        case 4: entries.4
        default: entries.5
        }
    }

    /// Label values (20 bits each).
    public var labels: [UInt32] { rawEntries.map { $0 >> 4 } }

    public var description: String { labels.map(String.init).joined(separator: ",") }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for i in 0..<lhs.count where lhs[rawEntryAt: i] != rhs[rawEntryAt: i] { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for i in 0..<count { hasher.combine(self[rawEntryAt: i]) }
    }
}
