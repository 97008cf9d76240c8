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
