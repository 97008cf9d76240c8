import NIOCore

// Small reading and writing helpers over ByteBuffer shared by every codec in this module.
// Readers throw `TruncatedInput` when the bytes run out; callers turn that into the RFC 7606 class
// that fits where it happened.

extension ByteBuffer {
    @inline(__always)
    mutating func readU8() throws -> UInt8 {
        guard let v = readInteger(as: UInt8.self) else { throw TruncatedInput() }
        return v
    }

    @inline(__always)
    mutating func readU16() throws -> UInt16 {
        guard let v = readInteger(as: UInt16.self) else { throw TruncatedInput() }
        return v
    }

    @inline(__always)
    mutating func readU24() throws -> UInt32 {
        guard readableBytes >= 3, let hi = readInteger(as: UInt16.self), let lo = readInteger(as: UInt8.self) else {
            throw TruncatedInput()
        }
        return UInt32(hi) << 8 | UInt32(lo)
    }

    @inline(__always)
    mutating func readU32() throws -> UInt32 {
        guard let v = readInteger(as: UInt32.self) else { throw TruncatedInput() }
        return v
    }

    @inline(__always)
    mutating func readU64() throws -> UInt64 {
        guard let v = readInteger(as: UInt64.self) else { throw TruncatedInput() }
        return v
    }

    mutating func readByteArray(_ count: Int) throws -> [UInt8] {
        guard count >= 0, let bytes = readBytes(length: count) else { throw TruncatedInput() }
        return bytes
    }

    mutating func readSliceOrThrow(_ count: Int) throws -> ByteBuffer {
        guard count >= 0, let slice = readSlice(length: count) else { throw TruncatedInput() }
        return slice
    }

    mutating func readIPv4() throws -> IPv4Address { IPv4Address(try readU32()) }

    mutating func readIPv6() throws -> IPv6Address {
        let high = try readU64()
        return IPv6Address(high: high, low: try readU64())
    }

    /// Reads the `ceil(bits/8)` bytes of a prefix and places them at the top of an address.
    @inline(__always)
    mutating func readPrefixBits(_ bits: Int, ipv6: Bool) throws -> IPAddress {
        let byteCount = (bits + 7) >> 3
        guard readableBytes >= byteCount else { throw TruncatedInput() }
        if !ipv6 {
            var value: UInt32 = 0
            withUnsafeReadableBytes { raw in
                for i in 0..<byteCount { value |= UInt32(raw[i]) << (24 - 8 * i) }
            }
            moveReaderIndex(forwardBy: byteCount)
            return .v4(IPv4Address(value))
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        withUnsafeReadableBytes { raw in
            for i in 0..<byteCount {
                if i < 8 { high |= UInt64(raw[i]) << (56 - 8 * i) } else { low |= UInt64(raw[i]) << (56 - 8 * (i - 8)) }
            }
        }
        moveReaderIndex(forwardBy: byteCount)
        return .v6(IPv6Address(high: high, low: low))
    }

    @inline(__always)
    mutating func writeU24(_ value: UInt32) {
        writeInteger(UInt16(truncatingIfNeeded: value >> 8))
        writeInteger(UInt8(truncatingIfNeeded: value))
    }

    mutating func writeIPAddress(_ address: IPAddress) {
        switch address {
        case .v4(let a): writeInteger(a.value)
        case .v6(let a):
            writeInteger(a.high)
            writeInteger(a.low)
        }
    }

    /// Writes the first `ceil(bits/8)` bytes of the address.
    @inline(__always)
    mutating func writePrefixBits(_ address: IPAddress, bits: Int) {
        let byteCount = (bits + 7) >> 3
        switch address {
        case .v4(let a):
            for i in 0..<byteCount { writeInteger(UInt8(truncatingIfNeeded: a.value >> (24 - 8 * i))) }
        case .v6(let a):
            for i in 0..<byteCount {
                let half = i < 8 ? a.high : a.low
                writeInteger(UInt8(truncatingIfNeeded: half >> (56 - 8 * (i % 8))))
            }
        }
    }

    /// Writes a length placeholder of `width` bytes and returns its index for `patchLength`.
    mutating func reserveLength(width: Int) -> Int {
        let index = writerIndex
        if width == 1 { writeInteger(UInt8(0)) } else { writeInteger(UInt16(0)) }
        return index
    }

    /// Fills a placeholder with the number of bytes written after it.
    mutating func patchLength(at index: Int, width: Int) {
        let length = writerIndex - index - width
        if width == 1 {
            setInteger(UInt8(truncatingIfNeeded: length), at: index)
        } else {
            setInteger(UInt16(truncatingIfNeeded: length), at: index)
        }
    }
}

/// Hex helpers for tools and tests.
public enum Hex {
    /// Decodes hex digits, ignoring whitespace, ':' and a leading "0x"; nil on any other character.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 2)
        var pending: UInt8? = nil
        var body = Substring(text)
        if body.hasPrefix("0x") || body.hasPrefix("0X") { body = body.dropFirst(2) }
        for c in body.utf8 {
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ":"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): continue
            default: return nil
            }
            if let high = pending {
                out.append(high << 4 | nibble)
                pending = nil
            } else {
                pending = nibble
            }
        }
        return pending == nil ? out : nil
    }

    public static func encode(_ bytes: some Sequence<UInt8>, uppercase: Bool = true) -> String {
        let digits = Array((uppercase ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func encode(_ buffer: ByteBuffer, uppercase: Bool = true) -> String {
        encode(buffer.readableBytesView, uppercase: uppercase)
    }
}
