/// A bounds-checked reader over raw bytes for the NLRI hot path: one compare per read, no
/// reference counting, typed errors that never allocate on success.
@usableFromInline
struct RawCursor {
    @usableFromInline let base: UnsafeRawPointer?
    @usableFromInline var position: Int
    @usableFromInline let end: Int

    @inline(__always)
    init(_ raw: UnsafeRawBufferPointer, position: Int = 0) {
        base = raw.baseAddress
        self.position = position
        end = raw.count
    }

    @inline(__always)
    init(base: UnsafeRawPointer?, position: Int, end: Int) {
        self.base = base
        self.position = position
        self.end = end
    }

    @inline(__always) var remaining: Int { end - position }

    @inline(__always)
    mutating func need(_ n: Int) throws(MalformedField) -> UnsafeRawPointer {
        guard n <= end - position, let base else { throw MalformedField("truncated") }
        return base
    }

    @inline(__always)
    mutating func u8() throws(MalformedField) -> UInt8 {
        let b = try need(1)
        defer { position += 1 }
        return b.load(fromByteOffset: position, as: UInt8.self)
    }

    @inline(__always)
    mutating func u16() throws(MalformedField) -> UInt16 {
        let b = try need(2)
        defer { position += 2 }
        return UInt16(bigEndian: b.loadUnaligned(fromByteOffset: position, as: UInt16.self))
    }

    @inline(__always)
    mutating func u24() throws(MalformedField) -> UInt32 {
        let b = try need(3)
        defer { position += 3 }
        return UInt32(b.load(fromByteOffset: position, as: UInt8.self)) << 16
            | UInt32(UInt16(bigEndian: b.loadUnaligned(fromByteOffset: position + 1, as: UInt16.self)))
    }

    @inline(__always)
    mutating func u32() throws(MalformedField) -> UInt32 {
        let b = try need(4)
        defer { position += 4 }
        return UInt32(bigEndian: b.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    @inline(__always)
    mutating func u64() throws(MalformedField) -> UInt64 {
        let b = try need(8)
        defer { position += 8 }
        return UInt64(bigEndian: b.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    // Loads at an offset from the position, for callers that checked `need` for the whole span.
    @inline(__always) func at8(_ base: UnsafeRawPointer, _ o: Int) -> UInt8 { base.load(fromByteOffset: position + o, as: UInt8.self) }
    @inline(__always) func at16(_ base: UnsafeRawPointer, _ o: Int) -> UInt16 {
        UInt16(bigEndian: base.loadUnaligned(fromByteOffset: position + o, as: UInt16.self))
    }
    @inline(__always) func at24(_ base: UnsafeRawPointer, _ o: Int) -> UInt32 { UInt32(at8(base, o)) << 16 | UInt32(at16(base, o + 1)) }
    @inline(__always) func at32(_ base: UnsafeRawPointer, _ o: Int) -> UInt32 {
        UInt32(bigEndian: base.loadUnaligned(fromByteOffset: position + o, as: UInt32.self))
    }
    @inline(__always) func at64(_ base: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(bigEndian: base.loadUnaligned(fromByteOffset: position + o, as: UInt64.self))
    }

    /// A cursor over the next `n` bytes; this cursor moves past them.
    @inline(__always)
    mutating func sub(_ n: Int) throws(MalformedField) -> RawCursor {
        _ = try need(n)
        defer { position += n }
        return RawCursor(base: base, position: position, end: position + n)
    }

    mutating func bytes(_ n: Int) throws(MalformedField) -> [UInt8] {
        let b = try need(n)
        defer { position += n }
        return Array(UnsafeRawBufferPointer(start: b + position, count: n))
    }

    /// The `ceil(bits/8)` bytes of a prefix, placed at the top of an address.
    @inline(__always)
    mutating func prefixBits(_ bits: Int, ipv6: Bool) throws(MalformedField) -> IPAddress {
        let n = (bits + 7) >> 3
        let b = try need(n)
        defer { position += n }
        if !ipv6 {
            var value: UInt32 = 0
            for i in 0..<n { value |= UInt32(b.load(fromByteOffset: position + i, as: UInt8.self)) << UInt32(24 - 8 * i) }
            return .v4(IPv4Address(value))
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<min(n, 8) { high |= UInt64(b.load(fromByteOffset: position + i, as: UInt8.self)) << UInt64(56 - 8 * i) }
        if n > 8 { for i in 8..<n { low |= UInt64(b.load(fromByteOffset: position + i, as: UInt8.self)) << UInt64(56 - 8 * (i - 8)) } }
        return .v6(IPv6Address(high: high, low: low))
    }
}

/// A writer of raw bytes into memory the caller sized with `NLRICodec.encodedLength`.
@usableFromInline
struct RawWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline var position = 0

    @inline(__always) init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inline(__always) mutating func u8(_ v: UInt8) {
        base.storeBytes(of: v, toByteOffset: position, as: UInt8.self)
        position += 1
    }

    @inline(__always) mutating func u16(_ v: UInt16) {
        base.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt16.self)
        position += 2
    }

    @inline(__always) mutating func u24(_ v: UInt32) {
        u8(UInt8(truncatingIfNeeded: v >> 16))
        u16(UInt16(truncatingIfNeeded: v))
    }

    @inline(__always) mutating func u32(_ v: UInt32) {
        base.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt32.self)
        position += 4
    }

    @inline(__always) mutating func u64(_ v: UInt64) {
        base.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt64.self)
        position += 8
    }

    @inline(__always) mutating func ip(_ a: IPAddress) {
        switch a {
        case .v4(let v): u32(v.value)
        case .v6(let v):
            u64(v.high)
            u64(v.low)
        }
    }

    @inline(__always) mutating func prefixBits(_ a: IPAddress, bits: Int) {
        let n = (bits + 7) >> 3
        switch a {
        case .v4(let v): for i in 0..<n { u8(UInt8(truncatingIfNeeded: v.value >> UInt32(24 - 8 * i))) }
        case .v6(let v):
            for i in 0..<n { u8(UInt8(truncatingIfNeeded: (i < 8 ? v.high : v.low) >> UInt64(56 - 8 * (i % 8)))) }
        }
    }
}
