import BGPWire
import Foundation
import Testing

/// Inputs the fuzzer found (Regressions/*.hex, one message per line): under every context they
/// decode or fail with a classified error, and whatever decodes re-encodes to bytes that decode to
/// the same value.
@Suite struct RegressionTests {
    static let contexts: [WireContext] = [
        .standard, WireContext(fourOctetAS: false), WireContext(addPathFamilies: Set(AddressFamily.modeled)),
        WireContext(maxMessageSize: WireContext.maximumExtendedMessageSize, externalPeer: true),
    ]

    @Test func fuzzFindingsStayFixed() throws {
        let folder = Corpus.packageRoot.appendingPathComponent("Tests/BGPWireTests/Regressions")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".hex") }
        var inputs = 0
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let bytes = try #require(Hex.decode(line), "\(file): not hex")
                inputs += 1
                for context in Self.contexts {
                    guard let message = try? BGPMessage.decode(bytes: bytes, context: context) else { continue }
                    let again = message.encodedBytes(context: context)
                    #expect(try BGPMessage.decode(bytes: again, context: context) == message, "\(file): \(line)")
                }
            }
        }
        #expect(inputs > 0)
    }

    /// Every prefix of a real message is rejected cleanly, never read past its end.
    @Test func everyTruncationOfTheBenchmarkMessagesFailsCleanly() throws {
        for name in ["vpnv4", "evpn"] {
            let text = try String(contentsOf: Corpus.shared.appendingPathComponent("bench/\(name)-update.hex"), encoding: .utf8)
            let bytes = try #require(Hex.decode(text.filter { !$0.isWhitespace }))
            for length in 0..<bytes.count {
                var prefix = Array(bytes.prefix(length))
                if length >= 18 {
                    prefix[16] = UInt8(length >> 8)
                    prefix[17] = UInt8(length & 0xFF)
                }
                #expect(throws: BGPDecodingError.self) { try BGPMessage.decode(bytes: prefix) }
            }
        }
    }
}
