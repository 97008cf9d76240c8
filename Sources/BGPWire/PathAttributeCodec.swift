import NIOCore

/// What is wrong with one attribute, in RFC 7606 terms (§3 and §7).
struct AttributeFault: Error {
    enum Handling {
        case treatAsWithdraw
        case discard
        case reset(subcode: UInt8)
    }
    var handling: Handling
    var reason: String
}

/// Decodes and encodes single path attributes.
enum PathAttributeCodec {
    /// Decodes the value of one attribute. `value` holds exactly the attribute's value bytes.
    static func decode(
        flags: AttributeFlags, type: UInt8, value: ByteBuffer, context: WireContext
    ) throws(AttributeFault) -> PathAttributeValue {
        // Read through a raw cursor: a ByteBuffer read per field costs more than the field.
        let result: Result<PathAttributeValue, AttributeFault> = value.withUnsafeReadableBytes { raw in
            var cursor = RawCursor(raw)
            do throws(AttributeFault) {
                return .success(try decode(flags: flags, type: type, cursor: &cursor, value: value, context: context))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// `value` is the attribute's bytes as a buffer, for the zero-copy NLRI slices of MP attributes.
    static func decode(
        flags: AttributeFlags, type: UInt8, cursor b: inout RawCursor, value: ByteBuffer, context: WireContext
    ) throws(AttributeFault) -> PathAttributeValue {
        let length = b.remaining
        // Only error messages use the name: computed on demand (a dictionary lookup and a string).
        var name: String { AttributeType.name(type) }
        // RFC 7606 §3 (c): optional/transitive bits that conflict with the attribute's definition make
        // it malformed, handled as its length errors are.
        func checkFlags(_ expected: AttributeFlags, _ lengthError: AttributeFault.Handling) throws(AttributeFault) {
            let actual = flags.intersection([.optional, .transitive])
            guard actual == expected else {
                throw AttributeFault(handling: lengthError, reason: "\(name) flags 0x\(String(flags.rawValue, radix: 16)) conflict with its definition")
            }
        }
        func requireLength(_ ok: Bool, _ handling: AttributeFault.Handling) throws(AttributeFault) {
            guard ok else { throw AttributeFault(handling: handling, reason: "\(name) length \(length) is invalid") }
        }
        do {
            switch type {
            case AttributeType.origin:
                try checkFlags(.wellKnown, .treatAsWithdraw)
                try requireLength(length == 1, .treatAsWithdraw)
                guard let origin = Origin(rawValue: try b.u8()) else {
                    throw AttributeFault(handling: .treatAsWithdraw, reason: "undefined ORIGIN value")
                }
                return .origin(origin)
            case AttributeType.asPath:
                try checkFlags(.wellKnown, .treatAsWithdraw)
                return .asPath(try decodeASPath(&b, fourOctet: context.fourOctetAS, handling: .treatAsWithdraw, name: name))
            case AttributeType.nextHop:
                try checkFlags(.wellKnown, .treatAsWithdraw)
                try requireLength(length == 4, .treatAsWithdraw)
                return .nextHop(IPv4Address(try b.u32()))
            case AttributeType.multiExitDiscriminator:
                try checkFlags(.optionalNonTransitive, .treatAsWithdraw)
                try requireLength(length == 4, .treatAsWithdraw)
                return .multiExitDiscriminator(try b.u32())
            case AttributeType.localPreference:
                try checkFlags(.wellKnown, .treatAsWithdraw)
                try requireLength(length == 4, .treatAsWithdraw)
                if context.externalPeer {
                    throw AttributeFault(handling: .discard, reason: "LOCAL_PREF from an external peer is ignored")
                }
                return .localPreference(try b.u32())
            case AttributeType.atomicAggregate:
                try checkFlags(.wellKnown, .discard)
                try requireLength(length == 0, .discard)
                return .atomicAggregate
            case AttributeType.aggregator, AttributeType.as4Aggregator:
                try checkFlags(.optionalTransitive, .discard)
                let wide = type == AttributeType.as4Aggregator || context.fourOctetAS
                try requireLength(length == (wide ? 8 : 6), .discard)
                let asn = wide ? try b.u32() : UInt32(try b.u16())
                let aggregator = Aggregator(asn: asn, address: IPv4Address(try b.u32()))
                return type == AttributeType.aggregator ? .aggregator(aggregator) : .as4Aggregator(aggregator)
            case AttributeType.communities:
                try checkFlags(.optionalTransitive, .treatAsWithdraw)
                try requireLength(length > 0 && length % 4 == 0, .treatAsWithdraw)
                var list: [Community] = []
                list.reserveCapacity(length / 4)
                while b.remaining > 0 { list.append(Community(rawValue: try b.u32())) }
                return .communities(list)
            case AttributeType.originatorID:
                try checkFlags(.optionalNonTransitive, .treatAsWithdraw)
                try requireLength(length == 4, .treatAsWithdraw)
                return .originatorID(IPv4Address(try b.u32()))
            case AttributeType.clusterList:
                try checkFlags(.optionalNonTransitive, .treatAsWithdraw)
                try requireLength(length > 0 && length % 4 == 0, .treatAsWithdraw)
                var list: [UInt32] = []
                while b.remaining > 0 { list.append(try b.u32()) }
                return .clusterList(list)
            case AttributeType.mpReachNLRI:
                try checkFlags(.optionalNonTransitive, .reset(subcode: ErrorSubcode.attributeFlagsError))
                return .mpReachNLRI(try decodeMPReach(&b, value: value, context: context))
            case AttributeType.mpUnreachNLRI:
                try checkFlags(.optionalNonTransitive, .reset(subcode: ErrorSubcode.attributeFlagsError))
                return .mpUnreachNLRI(try decodeMPUnreach(&b, value: value, context: context))
            case AttributeType.extendedCommunities:
                try checkFlags(.optionalTransitive, .treatAsWithdraw)
                try requireLength(length > 0 && length % 8 == 0, .treatAsWithdraw)
                var list: [ExtendedCommunity] = []
                list.reserveCapacity(length / 8)
                while b.remaining > 0 { list.append(ExtendedCommunity(rawValue: try b.u64())) }
                return .extendedCommunities(list)
            case AttributeType.as4Path:
                // RFC 6793 §6 as revised by RFC 7606 §7.2: a malformed AS4_PATH is discarded.
                try checkFlags(.optionalTransitive, .discard)
                return .as4Path(try decodeASPath(&b, fourOctet: true, handling: .discard, name: name))
            case AttributeType.pmsiTunnel:
                try checkFlags(.optionalTransitive, .treatAsWithdraw)
                try requireLength(length >= 5, .treatAsWithdraw)
                let pmsiFlags = try b.u8()
                let kind = PMSITunnel.TunnelKind(rawValue: try b.u8())
                let label = try b.u24()
                return .pmsiTunnel(
                    PMSITunnel(flags: pmsiFlags, tunnelType: kind, labelField: label, tunnelIdentifier: try b.bytes(b.remaining)))
            case AttributeType.largeCommunities:
                try checkFlags(.optionalTransitive, .treatAsWithdraw)
                try requireLength(length > 0 && length % 12 == 0, .treatAsWithdraw)
                var list: [LargeCommunity] = []
                while b.remaining > 0 { list.append(LargeCommunity(try b.u32(), try b.u32(), try b.u32())) }
                return .largeCommunities(list)
            default:
                guard flags.contains(.optional) else {
                    throw AttributeFault(handling: .reset(subcode: ErrorSubcode.unrecognizedWellKnownAttribute), reason: "unrecognized well-known attribute \(type)")
                }
                return .unknown(type: type, value: try b.bytes(length))
            }
        } catch let fault as AttributeFault {
            throw fault
        } catch let malformed as MalformedField {
            throw AttributeFault(handling: .treatAsWithdraw, reason: malformed.reason == "truncated" ? "\(name) is truncated" : "\(name): \(malformed.reason)")
        } catch {
            throw AttributeFault(handling: .treatAsWithdraw, reason: "\(name) is truncated")
        }
    }

    static func decodeASPath(_ b: inout RawCursor, fourOctet: Bool, handling: AttributeFault.Handling, name: String) throws(AttributeFault) -> ASPath {
        var segments: [ASPath.Segment] = []
        while b.remaining > 0 {
            guard b.remaining >= 2, let rawType = try? b.u8(), let rawCount = try? b.u8() else {
                throw AttributeFault(handling: handling, reason: "\(name) segment header truncated")
            }
            let count = Int(rawCount)
            guard let type = ASPath.SegmentType(rawValue: rawType) else {
                throw AttributeFault(handling: handling, reason: "\(name) segment type \(rawType) is undefined")
            }
            guard count > 0 else { throw AttributeFault(handling: handling, reason: "\(name) has an empty segment") }
            guard b.remaining >= count * (fourOctet ? 4 : 2) else {
                throw AttributeFault(handling: handling, reason: "\(name) segment overruns the attribute")
            }
            var asns: [UInt32] = []
            asns.reserveCapacity(count)
            for _ in 0..<count { asns.append(fourOctet ? (try? b.u32()) ?? 0 : UInt32((try? b.u16()) ?? 0)) }
            segments.append(ASPath.Segment(type, asns))
        }
        return ASPath(segments)
    }

    static func decodeMPReach(_ b: inout RawCursor, value: ByteBuffer, context: WireContext) throws(AttributeFault) -> MPReachNLRI {
        func reset(_ reason: String) -> AttributeFault {
            AttributeFault(handling: .reset(subcode: ErrorSubcode.optionalAttributeError), reason: "MP_REACH_NLRI: " + reason)
        }
        guard b.remaining >= 5, let afi = try? b.u16(), let safi = try? b.u8(), let nextHopLength = (try? b.u8()).map(Int.init) else {
            throw reset("shorter than 5 bytes")
        }
        let family = AddressFamily(afi: afi, safi: safi)
        guard b.remaining >= nextHopLength + 1 else { throw reset("next hop length \(nextHopLength) overruns the attribute") }
        let nextHop = NextHop.decode(value.getSlice(at: value.readerIndex + b.position, length: nextHopLength) ?? ByteBuffer())
        b.position += nextHopLength
        if family.isModeled {
            if case .raw = nextHop { throw reset("next hop length \(nextHopLength) is invalid for \(family)") }
            // Only flowspec routes (RFC 8955 §4) go without a next hop.
            if nextHop == .none && family.safi != .flowSpec && family.safi != .flowSpecVPN {
                throw reset("\(family) needs a next hop")
            }
        }
        b.position += 1  // Reserved (RFC 4760 §3: ignored on receipt).
        let nlri = value.getSlice(at: value.readerIndex + b.position, length: b.remaining) ?? ByteBuffer()
        b.position = b.end
        do throws(MalformedField) {
            return MPReachNLRI(nextHop: nextHop, nlri: try NLRIBlock(validating: nlri, family: family, addPath: context.addPath(family)))
        } catch {
            throw reset("\(family) NLRI: \(error.reason)")
        }
    }

    static func decodeMPUnreach(_ b: inout RawCursor, value: ByteBuffer, context: WireContext) throws(AttributeFault) -> MPUnreachNLRI {
        func reset(_ reason: String) -> AttributeFault {
            AttributeFault(handling: .reset(subcode: ErrorSubcode.optionalAttributeError), reason: "MP_UNREACH_NLRI: " + reason)
        }
        guard b.remaining >= 3, let afi = try? b.u16(), let safi = try? b.u8() else { throw reset("shorter than 3 bytes") }
        let family = AddressFamily(afi: afi, safi: safi)
        let nlri = value.getSlice(at: value.readerIndex + b.position, length: b.remaining) ?? ByteBuffer()
        b.position = b.end
        do throws(MalformedField) {
            return MPUnreachNLRI(nlri: try NLRIBlock(validating: nlri, family: family, addPath: context.addPath(family)))
        } catch {
            throw reset("\(family) NLRI: \(error.reason)")
        }
    }

    // MARK: Encoding

    /// Writes flags, type, length and value. The extended-length bit is used when the value needs it
    /// or when the attribute's flags ask for it.
    static func write(_ attribute: PathAttribute, context: WireContext, to buffer: inout ByteBuffer) {
        writeFramed(flags: attribute.flags, type: attribute.typeCode, to: &buffer) { out in
            writeValue(attribute.value, context: context, to: &out)
        }
    }

    @inline(__always)
    static func writeFramed(flags: AttributeFlags, type: UInt8, to buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        let start = buffer.writerIndex
        buffer.writeInteger(flags.union(.extendedLength).rawValue)
        buffer.writeInteger(type)
        buffer.writeInteger(UInt16(0))
        let valueStart = buffer.writerIndex
        body(&buffer)
        let length = buffer.writerIndex - valueStart
        if length <= 255 && !flags.contains(.extendedLength) {
            // Use the one-byte length: slide the value back over the spare byte, in place (a slice of
            // the buffer would make the write below copy the whole message).
            buffer.setInteger(flags.subtracting(.extendedLength).rawValue, at: start)
            buffer.setInteger(UInt8(length), at: start + 2)
            if length > 0 {
                buffer.withVeryUnsafeMutableBytes { raw in
                    guard let base = raw.baseAddress else { return }
                    (base + start + 3).copyMemory(from: base + valueStart, byteCount: length)
                }
            }
            buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        } else {
            buffer.setInteger(UInt16(truncatingIfNeeded: length), at: start + 2)
        }
    }

    static func writeASPath(_ path: ASPath, fourOctet: Bool, to buffer: inout ByteBuffer) {
        for segment in path.segments {
            // A segment holds at most 255 AS numbers; longer ones are split.
            var rest = segment.asns[...]
            repeat {
                let chunk = rest.prefix(255)
                rest = rest.dropFirst(chunk.count)
                buffer.writeInteger(segment.type.rawValue)
                buffer.writeInteger(UInt8(chunk.count))
                for asn in chunk {
                    if fourOctet { buffer.writeInteger(asn) } else { buffer.writeInteger(UInt16(truncatingIfNeeded: asn)) }
                }
            } while !rest.isEmpty
        }
    }

    static func writeValue(_ value: PathAttributeValue, context: WireContext, to buffer: inout ByteBuffer) {
        switch value {
        case .origin(let o): buffer.writeInteger(o.rawValue)
        case .asPath(let p): writeASPath(p, fourOctet: context.fourOctetAS, to: &buffer)
        case .as4Path(let p): writeASPath(p, fourOctet: true, to: &buffer)
        case .nextHop(let a): buffer.writeInteger(a.value)
        case .multiExitDiscriminator(let v), .localPreference(let v): buffer.writeInteger(v)
        case .atomicAggregate: break
        case .aggregator(let a):
            if context.fourOctetAS { buffer.writeInteger(a.asn) } else { buffer.writeInteger(UInt16(truncatingIfNeeded: a.asn)) }
            buffer.writeInteger(a.address.value)
        case .as4Aggregator(let a):
            buffer.writeInteger(a.asn)
            buffer.writeInteger(a.address.value)
        case .communities(let list): for c in list { buffer.writeInteger(c.rawValue) }
        case .originatorID(let a): buffer.writeInteger(a.value)
        case .clusterList(let list): for c in list { buffer.writeInteger(c) }
        case .mpReachNLRI(let r):
            buffer.writeInteger(r.family.afi.rawValue)
            buffer.writeInteger(r.family.safi.rawValue)
            let lengthIndex = buffer.reserveLength(width: 1)
            r.nextHop.write(to: &buffer)
            buffer.patchLength(at: lengthIndex, width: 1)
            buffer.writeInteger(UInt8(0))
            var nlri = r.nlri.bytes
            buffer.writeBuffer(&nlri)
        case .mpUnreachNLRI(let u):
            buffer.writeInteger(u.family.afi.rawValue)
            buffer.writeInteger(u.family.safi.rawValue)
            var nlri = u.nlri.bytes
            buffer.writeBuffer(&nlri)
        case .extendedCommunities(let list): for c in list { buffer.writeInteger(c.rawValue) }
        case .pmsiTunnel(let p):
            buffer.writeInteger(p.flags)
            buffer.writeInteger(p.tunnelType.rawValue)
            buffer.writeU24(p.labelField)
            buffer.writeBytes(p.tunnelIdentifier)
        case .largeCommunities(let list):
            for c in list {
                buffer.writeInteger(c.globalAdministrator)
                buffer.writeInteger(c.localData1)
                buffer.writeInteger(c.localData2)
            }
        case .unknown(_, let bytes): buffer.writeBytes(bytes)
        }
    }
}
