import NIOCore

/// RFC 4271 §4.2 OPEN, with RFC 9072 extended optional parameters.
public struct OpenMessage: Hashable, Sendable {
    public enum OptionalParameter: Hashable, Sendable {
        /// Parameter type 2 (RFC 5492): one or more capabilities.
        case capabilities([Capability])
        case unknown(type: UInt8, value: [UInt8])
    }

    public static let asTrans: UInt16 = 23456

    public var version: UInt8
    /// The 2-byte "My Autonomous System" field (AS_TRANS when the AS needs 4 bytes).
    public var myAS: UInt16
    public var holdTime: UInt16
    public var bgpIdentifier: IPv4Address
    public var optionalParameters: [OptionalParameter]
    /// RFC 9072 encoding of the parameters (forced when they exceed 255 bytes).
    public var extendedParametersLength: Bool

    public init(
        version: UInt8 = 4, myAS: UInt16, holdTime: UInt16, bgpIdentifier: IPv4Address,
        optionalParameters: [OptionalParameter], extendedParametersLength: Bool = false
    ) {
        self.version = version
        self.myAS = myAS
        self.holdTime = holdTime
        self.bgpIdentifier = bgpIdentifier
        self.optionalParameters = optionalParameters
        self.extendedParametersLength = extendedParametersLength
    }

    /// An OPEN for `asn`, each capability in its own parameter (as most speakers send them). A
    /// 4-octet AS capability is added when missing.
    public init(asn: UInt32, holdTime: UInt16, bgpIdentifier: IPv4Address, capabilities: [Capability]) {
        var caps = capabilities
        if !caps.contains(where: { $0.code == Capability.Code.fourOctetAS }) { caps.append(.fourOctetAS(asn)) }
        self.init(
            myAS: asn > 0xFFFF ? Self.asTrans : UInt16(asn), holdTime: holdTime, bgpIdentifier: bgpIdentifier,
            optionalParameters: caps.map { .capabilities([$0]) })
    }

    /// Every capability of every parameter, in order.
    public var capabilities: [Capability] {
        optionalParameters.flatMap { p -> [Capability] in
            if case .capabilities(let caps) = p { return caps }
            return []
        }
    }

    /// The speaker's AS: from the 4-octet AS capability when present.
    public var asn: UInt32 {
        for case .fourOctetAS(let asn) in capabilities { return asn }
        return UInt32(myAS)
    }

    public var multiprotocolFamilies: [AddressFamily] {
        capabilities.compactMap { if case .multiprotocol(let f) = $0 { return f } else { return nil } }
    }

    static func decode(body: ByteBuffer) throws(BGPDecodingError) -> OpenMessage {
        var b = body
        guard b.readableBytes >= 10,
            let version = b.readInteger(as: UInt8.self), let myAS = b.readInteger(as: UInt16.self),
            let hold = b.readInteger(as: UInt16.self), let id = b.readInteger(as: UInt32.self),
            let paramsLength = b.readInteger(as: UInt8.self)
        else {
            throw .header(ErrorSubcode.badMessageLength, data: bigEndianBytes(UInt16(body.readableBytes + 19)), "OPEN shorter than 29 bytes")
        }
        guard version == 4 else {
            throw .open(ErrorSubcode.unsupportedVersion, data: [0, 4], "unsupported BGP version \(version)")
        }
        var total = Int(paramsLength)
        var extended = false
        // RFC 9072: length 255 followed by parameter type 255 announces 2-byte lengths.
        if paramsLength == 255, b.getInteger(at: b.readerIndex, as: UInt8.self) == 255 {
            extended = true
            b.moveReaderIndex(forwardBy: 1)
            guard let longLength = b.readInteger(as: UInt16.self) else { throw .open(0, "truncated extended parameters length") }
            total = Int(longLength)
        }
        guard b.readableBytes == total else {
            throw .open(0, "optional parameters length \(total) does not match the \(b.readableBytes) bytes present")
        }
        var params: [OptionalParameter] = []
        while b.readableBytes > 0 {
            guard let type = b.readInteger(as: UInt8.self),
                let length = extended ? b.readInteger(as: UInt16.self).map(Int.init) : b.readInteger(as: UInt8.self).map(Int.init),
                var value = b.readSlice(length: length)
            else { throw .open(0, "optional parameter overruns the OPEN message") }
            guard type == 2 else {
                params.append(.unknown(type: type, value: value.readBytes(length: length) ?? []))
                continue
            }
            var caps: [Capability] = []
            while value.readableBytes > 0 {
                guard let code = value.readInteger(as: UInt8.self), let capLength = value.readInteger(as: UInt8.self),
                    let capValue = value.readSlice(length: Int(capLength))
                else { throw .open(0, "capability overruns its optional parameter") }
                do {
                    caps.append(try Capability.decode(code: code, value: capValue))
                } catch let m as MalformedField {
                    throw .open(0, m.reason)
                } catch {
                    throw .open(0, "capability \(code) is truncated")
                }
            }
            params.append(.capabilities(caps))
        }
        return OpenMessage(
            version: version, myAS: myAS, holdTime: hold, bgpIdentifier: IPv4Address(id), optionalParameters: params,
            extendedParametersLength: extended)
    }

    func writeBody(to buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        buffer.writeInteger(myAS)
        buffer.writeInteger(holdTime)
        buffer.writeInteger(bgpIdentifier.value)
        // RFC 9072 form when asked for, or when the parameters do not fit 1-byte lengths.
        var (params, fits) = encodeParameters(extended: extendedParametersLength)
        let extended = extendedParametersLength || !fits || params.readableBytes > 255
        if extended {
            if !extendedParametersLength { params = encodeParameters(extended: true).bytes }
            buffer.writeInteger(UInt8(255))
            buffer.writeInteger(UInt8(255))
            buffer.writeInteger(UInt16(truncatingIfNeeded: params.readableBytes))
        } else {
            buffer.writeInteger(UInt8(params.readableBytes))
        }
        buffer.writeBuffer(&params)
    }

    /// The parameters with 1- or 2-byte lengths; `fits` is false when one needs more than 255 bytes.
    private func encodeParameters(extended: Bool) -> (bytes: ByteBuffer, fits: Bool) {
        var params = ByteBuffer()
        var fits = true
        for p in optionalParameters {
            var value = ByteBuffer()
            let type: UInt8
            switch p {
            case .capabilities(let caps):
                type = 2
                for c in caps {
                    value.writeInteger(c.code)
                    let index = value.reserveLength(width: 1)
                    c.writeValue(to: &value)
                    value.patchLength(at: index, width: 1)
                }
            case .unknown(let t, let bytes):
                type = t
                value.writeBytes(bytes)
            }
            fits = fits && value.readableBytes <= 255
            params.writeInteger(type)
            if extended {
                params.writeInteger(UInt16(truncatingIfNeeded: value.readableBytes))
            } else {
                params.writeInteger(UInt8(truncatingIfNeeded: value.readableBytes))
            }
            params.writeBuffer(&value)
        }
        return (params, fits)
    }
}

/// The value in network byte order, as NOTIFICATION data carries it.
public func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    var out: [UInt8] = []
    out.appendBigEndian(value)
    return out
}
