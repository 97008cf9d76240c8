import NIOCore

/// Packs routes that share one attribute set into as few UPDATE messages as fit the negotiated
/// maximum size (4096, or 65535 with RFC 8654). The original bagpipe sent one NLRI per UPDATE.
///
/// IPv4 unicast goes in the NLRI / withdrawn routes fields; every other family in MP_REACH_NLRI /
/// MP_UNREACH_NLRI, written last and with an extended length so messages can be cut anywhere.
/// Each message is one buffer sized to the maximum, filled with raw stores: nothing else is
/// allocated per message.
public struct UpdateBuilder {
    public var context: WireContext

    public init(context: WireContext = .standard) { self.context = context }

    /// UPDATEs announcing `elements` of `family` with `attributes`. MP_REACH_NLRI / MP_UNREACH_NLRI
    /// in `attributes` are ignored; NEXT_HOP is added for IPv4 unicast when missing.
    public func announce(
        _ elements: [NLRIElement], family: AddressFamily, nextHop: NextHop, attributes: [PathAttribute]
    ) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        announce(elements, family: family, nextHop: nextHop, attributes: attributes) { out.append($0) }
        return out
    }

    /// Streaming form: calls `emit` with each finished message.
    public func announce(
        _ elements: [NLRIElement], family: AddressFamily, nextHop: NextHop, attributes: [PathAttribute],
        emit: (ByteBuffer) -> Void
    ) {
        let addPath = context.addPath(family)
        let context = self.context
        let addNextHop: IPv4Address?
        if family == .ipv4Unicast, case .ipv4(let address) = nextHop, attributes.first(type: AttributeType.nextHop) == nil {
            addNextHop = address
        } else {
            addNextHop = nil
        }
        func writeAttributes(_ buffer: inout ByteBuffer) {
            for attribute in attributes where attribute.typeCode != AttributeType.mpReachNLRI && attribute.typeCode != AttributeType.mpUnreachNLRI {
                PathAttributeCodec.write(attribute, context: context, to: &buffer)
            }
            if let addNextHop { PathAttributeCodec.write(PathAttribute(.nextHop(addNextHop)), context: context, to: &buffer) }
        }
        if family == .ipv4Unicast {
            pack(elements, addPath: addPath, emit: emit) { buffer in
                buffer.writeInteger(UInt16(0))
                let attributesLength = buffer.reserveLength(width: 2)
                writeAttributes(&buffer)
                buffer.patchLength(at: attributesLength, width: 2)
                return nil
            }
            return
        }
        pack(elements, addPath: addPath, emit: emit) { buffer in
            buffer.writeInteger(UInt16(0))
            let attributesLength = buffer.reserveLength(width: 2)
            writeAttributes(&buffer)
            buffer.writeInteger(AttributeFlags([.optional, .extendedLength]).rawValue)
            buffer.writeInteger(AttributeType.mpReachNLRI)
            let reachLength = buffer.reserveLength(width: 2)
            buffer.writeInteger(family.afi.rawValue)
            buffer.writeInteger(family.safi.rawValue)
            let nextHopLength = buffer.reserveLength(width: 1)
            nextHop.write(to: &buffer)
            buffer.patchLength(at: nextHopLength, width: 1)
            buffer.writeInteger(UInt8(0))
            return (attributesLength, reachLength)
        }
    }

    /// UPDATEs withdrawing `elements` of `family`.
    public func withdraw(_ elements: [NLRIElement], family: AddressFamily) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        let addPath = context.addPath(family)
        if family == .ipv4Unicast {
            // Withdrawn routes come before the (empty) attributes: leave room for their length.
            pack(elements, addPath: addPath, reserve: 2, emit: { out.append($0) }, finish: { buffer, bodyStart in
                buffer.setInteger(UInt16(buffer.writerIndex - bodyStart - 2), at: bodyStart)
                buffer.writeInteger(UInt16(0))
            }) { buffer in
                _ = buffer.reserveLength(width: 2)
                return nil
            }
            return out
        }
        pack(elements, addPath: addPath, emit: { out.append($0) }) { buffer in
            buffer.writeInteger(UInt16(0))
            let attributesLength = buffer.reserveLength(width: 2)
            buffer.writeInteger(AttributeFlags([.optional, .extendedLength]).rawValue)
            buffer.writeInteger(AttributeType.mpUnreachNLRI)
            let unreachLength = buffer.reserveLength(width: 2)
            buffer.writeInteger(family.afi.rawValue)
            buffer.writeInteger(family.safi.rawValue)
            return (attributesLength, unreachLength)
        }
        return out
    }

    /// Writes the header and `prefix`, then NLRI while the next one fits, then patches lengths.
    /// `prefix` returns the indexes of the 2-byte total-attribute length and MP attribute length to
    /// patch, or nil when the NLRI are not inside an attribute. `reserve` bytes are kept free for
    /// what `finish` appends.
    private func pack(
        _ elements: [NLRIElement], addPath: Bool, reserve: Int = 0, emit: (ByteBuffer) -> Void,
        finish: ((inout ByteBuffer, Int) -> Void)? = nil, prefix: (inout ByteBuffer) -> (Int, Int)?
    ) {
        let limit = context.maxMessageSize - reserve
        // Elements are read in place through the array's buffer: copying each (a non-trivial enum)
        // costs more than encoding it.
        elements.withUnsafeBufferPointer { elements in
        var next = 0
        while next < elements.count {
            var buffer = ByteBufferAllocator().buffer(capacity: context.maxMessageSize)
            buffer.writeInteger(UInt64.max)
            buffer.writeInteger(UInt64.max)
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(BGPMessage.MessageType.update)
            let bodyStart = buffer.writerIndex
            let lengths = prefix(&buffer)
            guard buffer.writerIndex + NLRICodec.encodedLength(elements[next], addPath: addPath) <= limit else {
                // One NLRI larger than a message (a huge flowspec rule) cannot be sent: skip it.
                next += 1
                continue
            }
            // All the NLRI of one message in one pass over the buffer's free space.
            let room = limit - buffer.writerIndex
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw in
                var w = RawWriter(raw.baseAddress!)
                while next < elements.count {
                    let length = NLRICodec.encodedLength(elements[next], addPath: addPath)
                    guard w.position + length <= room else { break }
                    if addPath { w.u32(elements[next].pathID ?? 0) }
                    NLRICodec.write(elements[next].nlri, to: &w)
                    next += 1
                }
                return w.position
            }
            finish?(&buffer, bodyStart)
            if let (attributesLength, mpLength) = lengths {
                buffer.patchLength(at: mpLength, width: 2)
                buffer.patchLength(at: attributesLength, width: 2)
            }
            buffer.setInteger(UInt16(buffer.writerIndex), at: 16)
            emit(buffer)
        }
        }
    }
}
