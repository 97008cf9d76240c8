import NIOCore

/// An attribute dropped under RFC 7606 "attribute discard" while decoding.
public struct DiscardedAttribute: Hashable, Sendable {
    public var typeCode: UInt8
    public var reason: String
}

/// RFC 4271 §4.3 UPDATE.
public struct UpdateMessage: Hashable, Sendable {
    /// IPv4 unicast withdrawn routes field.
    public var withdrawnRoutes: NLRIBlock
    /// Attributes in wire order.
    public var attributes: [PathAttribute]
    /// IPv4 unicast NLRI field.
    public var nlri: NLRIBlock
    /// Attributes dropped while decoding (RFC 7606 attribute discard); never encoded.
    public var discardedAttributes: [DiscardedAttribute]

    public init(
        withdrawnRoutes: NLRIBlock = .empty(.ipv4Unicast), attributes: [PathAttribute] = [],
        nlri: NLRIBlock = .empty(.ipv4Unicast)
    ) {
        self.init(withdrawnRoutes: withdrawnRoutes, attributes: attributes, nlri: nlri, discardedAttributes: [])
    }

    init(withdrawnRoutes: NLRIBlock, attributes: [PathAttribute], nlri: NLRIBlock, discardedAttributes: [DiscardedAttribute]) {
        self.withdrawnRoutes = withdrawnRoutes
        self.attributes = attributes
        self.nlri = nlri
        self.discardedAttributes = discardedAttributes
    }

    /// Equality and hashing cover what is on the wire, not the decoding diagnostics.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.withdrawnRoutes == rhs.withdrawnRoutes && lhs.attributes == rhs.attributes && lhs.nlri == rhs.nlri
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(withdrawnRoutes)
        hasher.combine(attributes)
        hasher.combine(nlri)
    }

    /// RFC 4724 §2 End-of-RIB marker for a family.
    public static func endOfRIB(_ family: AddressFamily) -> UpdateMessage {
        if family == .ipv4Unicast { return UpdateMessage() }
        return UpdateMessage(attributes: [PathAttribute(.mpUnreachNLRI(MPUnreachNLRI(nlri: .empty(family))))])
    }

    /// The family this message is the End-of-RIB marker of, if it is one.
    public var endOfRIBFamily: AddressFamily? {
        if withdrawnRoutes.isEmpty && nlri.isEmpty {
            if attributes.isEmpty { return .ipv4Unicast }
            if attributes.count == 1, let unreach = attributes.mpUnreach, unreach.nlri.isEmpty { return unreach.family }
        }
        return nil
    }

    /// Every block of reachable NLRI (NLRI field, MP_REACH_NLRI).
    public var announced: [NLRIBlock] {
        var blocks: [NLRIBlock] = []
        if !nlri.isEmpty { blocks.append(nlri) }
        if let reach = attributes.mpReach, !reach.nlri.isEmpty { blocks.append(reach.nlri) }
        return blocks
    }

    /// Every block of withdrawn NLRI (withdrawn routes field, MP_UNREACH_NLRI).
    public var withdrawn: [NLRIBlock] {
        var blocks: [NLRIBlock] = []
        if !withdrawnRoutes.isEmpty { blocks.append(withdrawnRoutes) }
        if let unreach = attributes.mpUnreach, !unreach.nlri.isEmpty { blocks.append(unreach.nlri) }
        return blocks
    }

    // MARK: Decoding (RFC 4271 §6.3 as revised by RFC 7606)

    static func decode(body: ByteBuffer, context: WireContext) throws(BGPDecodingError) -> UpdateMessage {
        var b = body
        guard let withdrawnLength = b.readInteger(as: UInt16.self), Int(withdrawnLength) + 2 <= b.readableBytes,
            let withdrawnBytes = b.readSlice(length: Int(withdrawnLength))
        else {
            throw .update(ErrorSubcode.malformedAttributeList, "withdrawn routes length exceeds the message")
        }
        let withdrawnRoutes: NLRIBlock
        do {
            withdrawnRoutes = try NLRIBlock(validating: withdrawnBytes, family: .ipv4Unicast, addPath: context.addPath(.ipv4Unicast))
        } catch {
            throw .update(ErrorSubcode.invalidNetworkField, "withdrawn routes field: \(Self.describe(error))")
        }
        guard let attributesLength = b.readInteger(as: UInt16.self), var attributeBytes = b.readSlice(length: Int(attributesLength)) else {
            throw .update(ErrorSubcode.malformedAttributeList, "total path attribute length exceeds the message")
        }
        // RFC 7606 §4: the NLRI field is located by the total attribute length, whatever the attributes say.
        let nlriBlock: NLRIBlock
        do {
            nlriBlock = try NLRIBlock(validating: b, family: .ipv4Unicast, addPath: context.addPath(.ipv4Unicast))
        } catch {
            throw .update(ErrorSubcode.invalidNetworkField, "NLRI field: \(Self.describe(error))")
        }

        var attributes: [PathAttribute] = []
        attributes.reserveCapacity(8)  // typical UPDATEs carry 4-8 attributes: one allocation, no regrowth
        var discarded: [DiscardedAttribute] = []
        var withdrawReason: String? = nil
        var seen = AttributeTypeSet()
        var reachAnnounces = false
        attributeLoop: while attributeBytes.readableBytes > 0 {
            guard attributeBytes.readableBytes >= 3, let rawFlags = attributeBytes.readInteger(as: UInt8.self),
                let type = attributeBytes.readInteger(as: UInt8.self)
            else {
                withdrawReason = withdrawReason ?? "path attributes end with a partial attribute header"
                break
            }
            let flags = AttributeFlags(rawValue: rawFlags)
            let length: Int
            if flags.contains(.extendedLength), let l = attributeBytes.readInteger(as: UInt16.self) {
                length = Int(l)
            } else if !flags.contains(.extendedLength), let l = attributeBytes.readInteger(as: UInt8.self) {
                length = Int(l)
            } else {
                withdrawReason = withdrawReason ?? "path attributes end with a partial attribute header"
                break
            }
            guard let value = attributeBytes.readSlice(length: length) else {
                withdrawReason = withdrawReason ?? "\(AttributeType.name(type)) length \(length) overruns the path attributes"
                break
            }
            if seen.contains(type) {
                // RFC 7606 §3 (g): a repeated MP attribute resets; other repeats are dropped.
                if type == AttributeType.mpReachNLRI || type == AttributeType.mpUnreachNLRI {
                    throw .update(ErrorSubcode.malformedAttributeList, "\(AttributeType.name(type)) appears more than once")
                }
                discarded.append(DiscardedAttribute(typeCode: type, reason: "repeated \(AttributeType.name(type))"))
                continue
            }
            seen.insert(type)
            do {
                let decoded = try PathAttributeCodec.decode(flags: flags, type: type, value: value, context: context)
                if case .mpReachNLRI(let reach) = decoded, !reach.nlri.isEmpty { reachAnnounces = true }
                attributes.append(PathAttribute(flags: flags, value: decoded))
            } catch {
                switch error.handling {
                case .reset(let subcode):
                    var data: [UInt8] = [rawFlags, type]
                    if flags.contains(.extendedLength) { data.appendBigEndian(UInt16(length)) } else { data.append(UInt8(length)) }
                    data.append(contentsOf: value.readableBytesView)
                    throw .update(subcode, data: data, error.reason)
                case .treatAsWithdraw:
                    withdrawReason = withdrawReason ?? error.reason
                case .discard:
                    discarded.append(DiscardedAttribute(typeCode: type, reason: error.reason))
                }
            }
        }


        // RFC 7606 §3 (d): well-known mandatory attributes, checked only when there is something to
        // announce. NEXT_HOP is needed only for the NLRI field (RFC 4760 §3).
        if withdrawReason == nil {
            if !nlriBlock.isEmpty || reachAnnounces {
                if !seen.contains(AttributeType.origin) {
                    withdrawReason = "missing ORIGIN"
                } else if !seen.contains(AttributeType.asPath) {
                    withdrawReason = "missing AS_PATH"
                } else if !nlriBlock.isEmpty && !seen.contains(AttributeType.nextHop) {
                    withdrawReason = "missing NEXT_HOP"
                }
            }
        }
        if let reason = withdrawReason {
            let message = UpdateMessage(withdrawnRoutes: withdrawnRoutes, attributes: attributes, nlri: nlriBlock)
            throw BGPDecodingError(.treatAsWithdraw(withdrawn: message.withdrawn + message.announced), reason)
        }
        return UpdateMessage(withdrawnRoutes: withdrawnRoutes, attributes: attributes, nlri: nlriBlock, discardedAttributes: discarded)
    }

    /// The attribute types seen so far: 256 bits, no hashing, no allocation.
    struct AttributeTypeSet {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        func contains(_ type: UInt8) -> Bool {
            let bit = UInt64(1) << UInt64(type & 63)
            switch type >> 6 {
            case 0: return words.0 & bit != 0
            case 1: return words.1 & bit != 0
            case 2: return words.2 & bit != 0
            default: return words.3 & bit != 0
            }
        }

        mutating func insert(_ type: UInt8) {
            let bit = UInt64(1) << UInt64(type & 63)
            switch type >> 6 {
            case 0: words.0 |= bit
            case 1: words.1 |= bit
            case 2: words.2 |= bit
            default: words.3 |= bit
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let m = error as? MalformedField { return m.reason }
        return "truncated NLRI"
    }

    func writeBody(context: WireContext, to buffer: inout ByteBuffer) {
        var withdrawn = withdrawnRoutes.bytes
        buffer.writeInteger(UInt16(truncatingIfNeeded: withdrawn.readableBytes))
        buffer.writeBuffer(&withdrawn)
        let lengthIndex = buffer.reserveLength(width: 2)
        for attribute in attributes { PathAttributeCodec.write(attribute, context: context, to: &buffer) }
        buffer.patchLength(at: lengthIndex, width: 2)
        var nlriBytes = nlri.bytes
        buffer.writeBuffer(&nlriBytes)
    }
}
