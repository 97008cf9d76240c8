import CNetlink

/// One netlink message to send: its type and flags, its fixed header (ifinfomsg, rtmsg …) and its
/// attributes, and what it does in words (errors name the object).
public struct NetlinkRequest: Sendable {
    public var type: UInt16
    public var flags: Int32
    public var body: [UInt8]
    public var what: String

    public init(type: Int32, flags: Int32, header: [UInt8], attributes: AttributeWriter = AttributeWriter(), what: String) {
        self.type = UInt16(type)
        self.flags = flags
        body = header + attributes.bytes
        self.what = what
    }

    /// The message with its nlmsghdr, padded to 4 bytes.
    func encoded(sequence: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + body.count + 3)
        out.appendNative(UInt32(16 + body.count))
        out.appendNative(type)
        out.appendNative(UInt16(truncatingIfNeeded: flags | NLM_F_REQUEST | NLM_F_ACK))
        out.appendNative(sequence)
        out.appendNative(UInt32(0))
        out += body
        out.padTo4()
        return out
    }
}

/// Netlink attributes (struct rtattr / nlattr: length, type, value padded to 4 bytes).
public struct AttributeWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func add(_ type: Int32, _ value: [UInt8]) {
        bytes.appendNative(UInt16(4 + value.count))
        bytes.appendNative(UInt16(truncatingIfNeeded: type))
        bytes += value
        bytes.padTo4()
    }

    public mutating func u8(_ type: Int32, _ v: UInt8) { add(type, [v]) }
    public mutating func u16(_ type: Int32, _ v: UInt16) { add(type, withUnsafeBytes(of: v) { Array($0) }) }
    public mutating func u32(_ type: Int32, _ v: UInt32) { add(type, withUnsafeBytes(of: v) { Array($0) }) }
    public mutating func u16BigEndian(_ type: Int32, _ v: UInt16) { add(type, withUnsafeBytes(of: v.bigEndian) { Array($0) }) }
    public mutating func u64BigEndian(_ type: Int32, _ v: UInt64) { add(type, withUnsafeBytes(of: v.bigEndian) { Array($0) }) }
    public mutating func string(_ type: Int32, _ s: String) { add(type, Array(s.utf8) + [0]) }
    public mutating func flag(_ type: Int32) { add(type, []) }

    /// A nested attribute (NLA_F_NESTED is not set: rtnetlink reads these without it).
    public mutating func nested(_ type: Int32, _ build: (inout AttributeWriter) -> Void) {
        var inner = AttributeWriter()
        build(&inner)
        add(type, inner.bytes)
    }
}

/// A message received: type, flags, sequence number, and the payload after the nlmsghdr.
public struct NetlinkMessage: Sendable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var payload: ArraySlice<UInt8>

    /// The attributes after a fixed header of `headerSize` bytes.
    public func attributes(after headerSize: Int) -> Attributes { Attributes(payload.dropFirst(headerSize)) }
}

/// Attributes parsed from a payload, by type (the last one of a type wins, as the kernel does).
public struct Attributes: Sendable {
    public private(set) var values: [UInt16: ArraySlice<UInt8>] = [:]

    public init(_ bytes: ArraySlice<UInt8>) {
        var i = bytes.startIndex
        while i + 4 <= bytes.endIndex {
            let length = Int(bytes.readNative(UInt16.self, at: i))
            let type = bytes.readNative(UInt16.self, at: i + 2) & 0x3FFF  // without NLA_F_NESTED / NET_BYTEORDER
            guard length >= 4, i + length <= bytes.endIndex else { break }
            values[type] = bytes[(i + 4)..<(i + length)]
            i += (length + 3) & ~3
        }
    }

    public subscript(_ type: Int32) -> ArraySlice<UInt8>? { values[UInt16(truncatingIfNeeded: type)] }
    public func nested(_ type: Int32) -> Attributes? { self[type].map(Attributes.init) }
    public func string(_ type: Int32) -> String? { self[type].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
    public func u8(_ type: Int32) -> UInt8? { self[type].flatMap { $0.count >= 1 ? $0.first : nil } }
    public func u32(_ type: Int32) -> UInt32? { self[type].flatMap { $0.count >= 4 ? $0.readNative(UInt32.self, at: $0.startIndex) : nil } }
    public func u16BigEndian(_ type: Int32) -> UInt16? { self[type].flatMap { $0.count >= 2 ? UInt16(bigEndian: $0.readNative(UInt16.self, at: $0.startIndex)) : nil } }
    public func u64BigEndian(_ type: Int32) -> UInt64? { self[type].flatMap { $0.count >= 8 ? UInt64(bigEndian: $0.readNative(UInt64.self, at: $0.startIndex)) : nil } }
}

extension Array where Element == UInt8 {
    mutating func appendNative<T: FixedWidthInteger>(_ v: T) { Swift.withUnsafeBytes(of: v) { self += $0 } }
    mutating func padTo4() { while count % 4 != 0 { append(0) } }
}

extension ArraySlice where Element == UInt8 {
    func readNative<T: FixedWidthInteger>(_: T.Type, at index: Int) -> T {
        var v: T = 0
        Swift.withUnsafeMutableBytes(of: &v) { out in
            for k in 0..<MemoryLayout<T>.size { out[k] = self[index + k] }
        }
        return v
    }
}

/// A fixed header as bytes (ifinfomsg, rtmsg …), straight from the kernel's struct layout.
func headerBytes<T>(_ header: T) -> [UInt8] { withUnsafeBytes(of: header) { Array($0) } }

/// A fixed header read from the start of a payload.
func readHeader<T>(_: T.Type, from payload: ArraySlice<UInt8>) -> T? {
    guard payload.count >= MemoryLayout<T>.size else { return nil }
    return Array(payload.prefix(MemoryLayout<T>.size)).withUnsafeBytes { $0.loadUnaligned(as: T.self) }
}

/// The kernel headers' constants as Int32, whether C imported them as plain integers (anonymous
/// enums) or as enum types.
@inline(__always) func n(_ v: Int) -> Int32 { Int32(v) }
@inline(__always) func n(_ v: Int32) -> Int32 { v }
@inline(__always) func n<E: RawRepresentable>(_ v: E) -> Int32 where E.RawValue: BinaryInteger { Int32(v.rawValue) }
