import BGPWire
import BGPWireOracle
import Foundation
import Testing

/// Inputs the fuzzer found (Regressions/*.hex, one message per line): under every context they
/// decode or fail with a classified error, and whatever decodes re-encodes to bytes that decode to
/// the same value.
@Suite struct RegressionTests {
    @Test func fuzzFindingsStayFixed() throws {
        let folder = Corpus.packageRoot.appendingPathComponent("Tests/BGPWireTests/Regressions")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".hex") }
        var inputs = 0
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let bytes = try #require(Hex.decode(line), "\(file): not hex")
                inputs += 1
                let findings = CodecOracle.check(bytes).findings
                #expect(findings.isEmpty, "\(file): \(findings)")
            }
        }
        #expect(inputs > 0)
    }

    /// The corpus libFuzzer grew (`bgp-codec-fuzz`, minimized with -merge=1; one binary input per
    /// file) keeps holding to the oracle: what coverage-guided fuzzing reached stays correct.
    @Test func theLibFuzzerCorpusHoldsToTheOracle() throws {
        let folder = Corpus.packageRoot.appendingPathComponent("Tests/BGPWireTests/FuzzCorpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            let findings = CodecOracle.check(bytes).findings
            #expect(findings.isEmpty, "\(file): \(findings)")
        }
        #expect(!files.isEmpty, "no corpus in \(folder.path)")
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
