import NIOCore

/// Packs routes that share one attribute set into as few UPDATE messages as fit the negotiated
/// maximum size (4096, or 65535 with RFC 8654). The original bagpipe sent one NLRI per UPDATE.
///
/// IPv4 unicast goes in the NLRI / withdrawn routes fields; every other family in MP_REACH_NLRI /
/// MP_UNREACH_NLRI, written last and with an extended length so messages can be cut anywhere.
public struct UpdateBuilder {
    public var context: WireContext

    public init(context: WireContext = .standard) { self.context = context }

    /// UPDATEs announcing `elements` of `family` with `attributes` (which must not hold MP_REACH /
    /// MP_UNREACH; NEXT_HOP is added for IPv4 unicast when missing and `nextHop` is IPv4).
    public func announce(
        _ elements: some Collection<NLRIElement>, family: AddressFamily, nextHop: NextHop, attributes: [PathAttribute]
    ) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        announce(elements, family: family, nextHop: nextHop, attributes: attributes) { out.append($0) }
        return out
    }

    /// Streaming form: calls `emit` with each finished message.
    public func announce(
        _ elements: some Collection<NLRIElement>, family: AddressFamily, nextHop: NextHop, attributes: [PathAttribute],
        emit: (ByteBuffer) -> Void
    ) {
        let addPath = context.addPath(family)
        var attributeBytes = ByteBuffer()
        var attrs = attributes.filter { $0.typeCode != AttributeType.mpReachNLRI && $0.typeCode != AttributeType.mpUnreachNLRI }
        if family == .ipv4Unicast, case .ipv4(let address) = nextHop, attrs.first(type: AttributeType.nextHop) == nil {
            attrs.append(PathAttribute(.nextHop(address)))
        }
        for attribute in attrs { PathAttributeCodec.write(attribute, context: context, to: &attributeBytes) }
        if family == .ipv4Unicast {
            pack(elements, addPath: addPath, emit: emit) { buffer in
                buffer.writeInteger(UInt16(0))
                buffer.writeInteger(UInt16(attributeBytes.readableBytes))
                buffer.writeImmutableBuffer(attributeBytes)
                return nil
            }
            return
        }
        pack(elements, addPath: addPath, emit: emit) { buffer in
            buffer.writeInteger(UInt16(0))
            let attributesLength = buffer.reserveLength(width: 2)
            buffer.writeImmutableBuffer(attributeBytes)
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
    public func withdraw(_ elements: some Collection<NLRIElement>, family: AddressFamily) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        let addPath = context.addPath(family)
        if family == .ipv4Unicast {
            // Withdrawn routes come before the attributes: pack them, then fill in the lengths.
            pack(elements, addPath: addPath, emit: { out.append($0) }, trailer: { buffer, start in
                let withdrawnLength = buffer.writerIndex - start - 2
                buffer.setInteger(UInt16(withdrawnLength), at: start)
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

    /// Writes header + `prefix`, then NLRI until the next one would not fit, then patches lengths.
    /// `prefix` returns the indexes of the 2-byte total-attribute length and MP attribute length to
    /// patch, or nil when the NLRI are not inside an attribute.
    private func pack(
        _ elements: some Collection<NLRIElement>, addPath: Bool, emit: (ByteBuffer) -> Void,
        trailer: ((inout ByteBuffer, Int) -> Void)? = nil,
        prefix: (inout ByteBuffer) -> (Int, Int)?
    ) {
        let limit = context.maxMessageSize - (trailer == nil ? 0 : 2)
        var iterator = elements.makeIterator()
        var pending = iterator.next()
        guard pending != nil else { return }
        while pending != nil {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(context.maxMessageSize)
            buffer.writeInteger(UInt64.max)
            buffer.writeInteger(UInt64.max)
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(BGPMessage.MessageType.update)
            let bodyStart = buffer.writerIndex
            let lengths = prefix(&buffer)
            var packed = 0
            while let element = pending {
                let mark = buffer.writerIndex
                NLRICodec.write(element, addPath: addPath, to: &buffer)
                if buffer.writerIndex > limit {
                    buffer.moveWriterIndex(to: mark)
                    if packed == 0 {
                        // One NLRI larger than a message (a huge flowspec rule): it cannot be sent.
                        pending = iterator.next()
                    }
                    break
                }
                packed += 1
                pending = iterator.next()
            }
            guard packed > 0 else { continue }
            trailer?(&buffer, bodyStart)
            if let (attributesLength, mpLength) = lengths {
                buffer.patchLength(at: mpLength, width: 2)
                buffer.patchLength(at: attributesLength, width: 2)
            }
            buffer.setInteger(UInt16(buffer.writerIndex), at: 16)
            emit(buffer)
        }
    }
}
