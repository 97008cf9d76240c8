import BGPWire
import NIOCore
import Testing

/// decode(encode(x)) == x for generated values of every message, attribute and NLRI type, under
/// the contexts a session can negotiate.
@Suite struct RoundTripTests {
    static let contexts: [WireContext] = [
        .standard, WireContext(fourOctetAS: false), WireContext(addPathFamilies: Set(AddressFamily.modeled)),
        WireContext(fourOctetAS: false, addPathFamilies: [.ipv4Unicast, .ipv4VPN, .evpn]),
    ]

    @Test("every modeled family's NLRI", arguments: AddressFamily.modeled)
    func nlriRoundTrip(family: AddressFamily) throws {
        var g = Gen(seed: UInt64(family.afi.rawValue) << 8 | UInt64(family.safi.rawValue))
        for round in 0..<300 {
            let addPath = round % 2 == 1
            let elements = g.elements(family, addPath: addPath)
            let block = NLRIBlock(family: family, addPath: addPath, elements)
            let decoded = try NLRIBlock(decoding: Array(block.bytes.readableBytesView), family: family, addPath: addPath)
            #expect(decoded.elements == elements, "\(family) round \(round)")
            #expect(decoded.count == elements.count)
        }
    }

    @Test("every path attribute", arguments: [true, false])
    func attributeRoundTrip(fourOctet: Bool) throws {
        var g = Gen(seed: fourOctet ? 7 : 8)
        let context = WireContext(fourOctetAS: fourOctet)
        var seen = Set<UInt8>()
        for _ in 0..<500 {
            for attribute in g.attributes(fourOctet: fourOctet, withNextHop: true) {
                let decoded = try PathAttribute.decode(bytes: attribute.encodedBytes(context: context), context: context)
                #expect(decoded == attribute)
                seen.insert(attribute.typeCode)
            }
        }
        // The generator reached every attribute this library models.
        #expect(seen.isSuperset(of: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 17, 18, 22, 32]))
    }

    @Test("every capability")
    func capabilityRoundTrip() throws {
        var g = Gen(seed: 11)
        var codes = Set<UInt8>()
        for _ in 0..<1000 {
            let capability = g.capability()
            #expect(try Capability.decode(bytes: capability.encodedBytes) == capability)
            codes.insert(capability.code)
        }
        #expect(codes.isSuperset(of: [1, 2, 5, 6, 64, 65, 69, 70]))
    }

    @Test("every message type under every context", arguments: 0..<4)
    func messageRoundTrip(contextIndex: Int) throws {
        let context = Self.contexts[contextIndex]
        var g = Gen(seed: 100 + UInt64(contextIndex))
        var types = Set<UInt8>()
        for round in 0..<800 {
            let message = g.message(context: context)
            let bytes = message.encodedBytes(context: context)
            guard bytes.count <= context.maxMessageSize else { continue }
            let decoded = try BGPMessage.decode(bytes: bytes, context: context)
            #expect(decoded == message, "round \(round): \(Hex.encode(bytes))")
            // Encoding is deterministic.
            #expect(decoded.encodedBytes(context: context) == bytes)
            types.insert(message.type)
        }
        #expect(types == [1, 2, 3, 4, 5])
    }

    @Test func shutdownCommunicationIsCutAtACharacterBoundary() throws {
        let long = String(repeating: "é", count: 200)  // 400 bytes of UTF-8
        let n = NotificationMessage.cease(subcode: 2, communication: long)
        #expect(n.data.count <= 256)
        #expect(n.shutdownCommunication == String(repeating: "é", count: 127))
        let decoded = try BGPMessage.decode(bytes: BGPMessage.notification(n).encodedBytes())
        #expect(decoded == .notification(n))
    }
}
