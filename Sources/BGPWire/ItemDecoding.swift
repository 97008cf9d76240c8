import NIOCore

// Entry points that decode one item outside a message, for tools and for conformance tests
// against other implementations' unit tests.

extension PathAttribute {
    /// Decodes one attribute (flags, type, length, value), which must fill `bytes` exactly.
    public static func decode(bytes: [UInt8], context: WireContext = .standard) throws(BGPDecodingError) -> PathAttribute {
        guard bytes.count >= 3 else { throw .update(ErrorSubcode.attributeLengthError, "attribute shorter than its header") }
        let flags = AttributeFlags(rawValue: bytes[0])
        let header = flags.contains(.extendedLength) ? 4 : 3
        guard bytes.count >= header else { throw .update(ErrorSubcode.attributeLengthError, "attribute shorter than its header") }
        let length = header == 4 ? Int(bytes[2]) << 8 | Int(bytes[3]) : Int(bytes[2])
        guard bytes.count == header + length else {
            throw BGPDecodingError(.treatAsWithdraw(withdrawn: []), "attribute length \(length) does not match the \(bytes.count - header) value bytes")
        }
        do {
            let value = try PathAttributeCodec.decode(flags: flags, type: bytes[1], value: ByteBuffer(bytes: bytes[header...]), context: context)
            return PathAttribute(flags: flags, value: value)
        } catch {
            switch error.handling {
            case .reset(let subcode): throw .update(subcode, data: bytes, error.reason)
            case .treatAsWithdraw: throw BGPDecodingError(.treatAsWithdraw(withdrawn: []), error.reason)
            case .discard: throw BGPDecodingError(.attributeDiscard(typeCode: bytes[1]), error.reason)
            }
        }
    }

    /// The attribute's wire form.
    public func encodedBytes(context: WireContext = .standard) -> [UInt8] {
        var buffer = ByteBuffer()
        PathAttributeCodec.write(self, context: context, to: &buffer)
        return Array(buffer.readableBytesView)
    }
}

extension Capability {
    /// Decodes one capability (code, length, value), which must fill `bytes` exactly.
    public static func decode(bytes: [UInt8]) throws(BGPDecodingError) -> Capability {
        guard bytes.count >= 2, bytes.count == 2 + Int(bytes[1]) else {
            throw .open(0, "capability length does not match its \(max(0, bytes.count - 2)) value bytes")
        }
        do {
            return try decode(code: bytes[0], value: ByteBuffer(bytes: bytes[2...]))
        } catch let m as MalformedField {
            throw .open(0, m.reason)
        } catch {
            throw .open(0, "capability \(bytes[0]) is truncated")
        }
    }

    public var encodedBytes: [UInt8] {
        var value = ByteBuffer()
        writeValue(to: &value)
        return [code, UInt8(truncatingIfNeeded: value.readableBytes)] + Array(value.readableBytesView)
    }
}

extension NLRIBlock {
    /// Decodes NLRI of `family` that fill `bytes` (an NLRI field or the NLRI part of an MP attribute).
    public init(decoding bytes: [UInt8], family: AddressFamily, addPath: Bool = false) throws(BGPDecodingError) {
        do throws(MalformedField) {
            try self.init(validating: ByteBuffer(bytes: bytes), family: family, addPath: addPath)
        } catch {
            throw .update(ErrorSubcode.optionalAttributeError, "\(family) NLRI: \(error.reason)")
        }
    }
}

extension MPLSLabelStack {
    /// Decodes a label stack that must end with the bottom-of-stack bit (or be the withdraw marker).
    public init(decoding bytes: [UInt8]) throws(BGPDecodingError) {
        self.init()
        var i = 0
        while i + 3 <= bytes.count {
            let entry = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            append(rawEntry: entry)
            i += 3
            if entry & 1 == 1 || entry == NLRICodec.withdrawLabelEntry { return }
        }
        throw .update(ErrorSubcode.optionalAttributeError, count == 0 ? "empty MPLS label stack" : "MPLS label stack missing bottom-of-stack bit")
    }
}
