import BGPWire
import NIOCore
import Testing

/// Validation (which skips over NLRI) and iteration (which reads them) must accept exactly the same
/// bytes, or an UPDATE could validate and then iterate short.
@Suite struct NLRICodecTests {
    @Test("validation and iteration agree on mutated NLRI", arguments: AddressFamily.modeled)
    func validationAndIterationAgree(family: AddressFamily) throws {
        var g = Gen(seed: 0xC0DE ^ UInt64(family.safi.rawValue))
        var accepted = 0, rejected = 0
        for round in 0..<3000 {
            let addPath = round % 3 == 0
            var bytes = Array(NLRIBlock(family: family, addPath: addPath, g.elements(family, addPath: addPath, count: 1...4)).bytes.readableBytesView)
            // Mutate: flip a byte, cut the tail, or change a length-like byte.
            for _ in 0..<g.int(1...3) where !bytes.isEmpty {
                switch g.int(0...2) {
                case 0: bytes[g.int(0...bytes.count - 1)] ^= UInt8(1) << UInt8(g.int(0...7))
                case 1: bytes = Array(bytes.prefix(g.int(0...bytes.count)))
                default: bytes[g.int(0...bytes.count - 1)] = g.pick([0, 1, 24, 32, 33, 48, 88, 96, 120, 128, 255])
                }
            }
            if let block = try? NLRIBlock(decoding: bytes, family: family, addPath: addPath) {
                accepted += 1
                #expect(block.elements.count == block.count, "\(family): validated \(block.count), iterated \(block.elements.count): \(Hex.encode(bytes))")
            } else {
                rejected += 1
            }
        }
        #expect(accepted > 0 && rejected > 0)
    }

    /// A sender that forgets the bottom-of-stack bit on its only label (GoBGP's TestLabelBottomWorkaround):
    /// when no further label can fit before the prefix, the one label is taken. (With an RD after the
    /// label the bytes are ambiguous, and they are read as the RFC says: labels until bottom-of-stack.)
    @Test func labelStackWithoutBottomOfStackIsReadAsOneLabel() throws {
        let bytes: [UInt8] = [0x30, 0x03, 0xE8, 0x00, 200, 10, 10]
        let block = try NLRIBlock(decoding: bytes, family: .ipv4LabeledUnicast)
        guard case .labeledPrefix(let p) = try #require(block.elements.first).nlri else { Issue.record("not a labeled prefix"); return }
        #expect(p.labels.labels == [16000])
        #expect(p.prefix == IPPrefix("200.10.10.0/24"))
    }

    @Test func withdrawLabelIsKept() throws {
        let bytes: [UInt8] = [0x70, 0x80, 0x00, 0x00] + [0, 0, 0xFD, 0xE8, 0, 0, 0, 1] + [10, 1, 1]
        let block = try NLRIBlock(decoding: bytes, family: .ipv4VPN)
        guard case .vpnPrefix(let p) = try #require(block.elements.first).nlri else { Issue.record("not a VPN prefix"); return }
        #expect(p.labels == .withdrawCompatibility)
        #expect(Array(NLRIBlock(family: .ipv4VPN, [.vpnPrefix(p)]).bytes.readableBytesView) == bytes)
    }

    /// Flowspec prefix padding is ignored on decoding (RFC 8956 §3.1, RFC 8955 §4.2.2.1): an IPv6
    /// destination of 62 bits matched from bit 4 (58 pattern bits, 6 of padding; the value holds bits
    /// 4..<62 of 2001:db8::, that is 1:db8::/62), and an IPv4 10.1.0.0/23 (one bit of padding), each
    /// sent with zero and with non-zero padding, decode to one rule, which encodes with zero padding.
    @Test func flowSpecPrefixPaddingIsIgnored() throws {
        // 0001:0db8:0000:0000 shifted left by the offset of 4: the pattern bits 4..<62.
        let pattern: [UInt8] = [0x00, 0x10, 0xDB, 0x80, 0x00, 0x00, 0x00, 0x00]
        func v6(_ lastByte: UInt8) -> [UInt8] { [UInt8(3 + pattern.count), 1, 62, 4] + pattern.dropLast() + [lastByte] }
        func v4(_ lastByte: UInt8) -> [UInt8] { [5, 1, 23, 10, 1, lastByte] }
        for (family, zero, padded) in [(AddressFamily.ipv6FlowSpec, v6(0x00), v6(0x3F)), (.ipv4FlowSpec, v4(0x00), v4(0x01))] {
            let a = try #require(try NLRIBlock(decoding: zero, family: family).elements.first)
            let b = try #require(try NLRIBlock(decoding: padded, family: family).elements.first)
            #expect(a == b, "\(family): \(a) vs \(b)")
            #expect(Array(NLRIBlock(family: family, [b.nlri]).bytes.readableBytesView) == zero, "\(family) re-encoded with zero padding")
        }
        guard case .flowSpec(let rule) = try #require(try NLRIBlock(decoding: v6(0x3F), family: .ipv6FlowSpec).elements.first).nlri,
            case .prefix(_, let prefix, let offset)? = rule.components.first
        else { Issue.record("not a flowspec prefix"); return }
        #expect(prefix == IPPrefix("1:db8::/62") && offset == 4, "\(prefix) offset \(offset)")
    }

    @Test func updateBuilderPacksAsManyAsFit() throws {
        var g = Gen(seed: 5)
        for family in [AddressFamily.ipv4Unicast, .ipv4VPN, .evpn, .routeTargetConstraint, .ipv6VPN] {
            let elements = g.elements(family, addPath: false, count: 2000...2000)
            let attributes = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
            let nextHop: NextHop = family == .ipv6VPN ? .forFamily(family, .v6(IPv6Address("2001:db8::1")!)) : .forFamily(family, .v4(IPv4Address(192, 0, 2, 1)))
            for maxSize in [4096, 65535] {
                let builder = UpdateBuilder(context: WireContext(maxMessageSize: maxSize))
                let messages = builder.announce(elements, family: family, nextHop: nextHop, attributes: attributes)
                var seen: [NLRIElement] = []
                for (i, buffer) in messages.enumerated() {
                    #expect(buffer.readableBytes <= maxSize)
                    guard case .update(let u) = try BGPMessage.decode(buffer, context: WireContext(maxMessageSize: maxSize)), let block = u.announced.first else {
                        Issue.record("not an UPDATE")
                        continue
                    }
                    seen += block.elements
                    // Every message but the last is full: the next NLRI would not have fit.
                    if i < messages.count - 1 {
                        let next = elements[seen.count]
                        #expect(buffer.readableBytes + NLRIBlock(family: family, [next.nlri]).bytes.readableBytes > maxSize)
                    }
                }
                #expect(seen == elements, "\(family) \(maxSize)")
                let withdrawals = builder.withdraw(elements, family: family)
                var withdrawn: [NLRIElement] = []
                for buffer in withdrawals {
                    #expect(buffer.readableBytes <= maxSize)
                    guard case .update(let u) = try BGPMessage.decode(buffer, context: WireContext(maxMessageSize: maxSize)) else { continue }
                    withdrawn += u.withdrawn.flatMap(\.elements)
                }
                #expect(withdrawn == elements, "withdraw \(family) \(maxSize)")
            }
        }
    }
}
