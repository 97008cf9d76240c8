import BGPCapture
import BagpipeLab
import BGPWire
import Foundation
import Testing

/// `bagpipe-bgp-decode` as an operator runs it: hex lines and captures in, one JSON object per
/// message out, bad messages reported without stopping the others, exit status telling.
@Suite struct DecoderToolTests {
    static var tool: URL { URL(fileURLWithPath: builtProduct("bagpipe-bgp-decode")) }

    func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, lines: [[String: Any]]) {
        let process = Process()
        process.executableURL = Self.tool
        process.arguments = arguments
        let output = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (process.terminationStatus, lines)
    }

    @Test func decodesHexLinesWithAndWithoutMarker() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tool.path) else {
            Issue.record("bagpipe-bgp-decode not built at \(Self.tool.path)")
            return
        }
        let input = """
            # a keepalive with the marker, then the same without it, then the VPNv4 benchmark message
            FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001304
            001304
            \(try String(contentsOf: Corpus.shared.appendingPathComponent("bench/vpnv4-update.hex"), encoding: .utf8))
            """
        let (status, lines) = try run([], input: input)
        #expect(status == 0)
        #expect(lines.count == 3)
        #expect(lines.map { $0["type"] as? String } == ["keepalive", "keepalive", "update"])
        let announced = try #require((lines[2]["announced"] as? [[String: Any]])?.first)
        #expect(announced["family"] as? String == "ipv4-vpn")
        #expect(announced["next_hop"] as? String == "192.0.2.1")
        let first = try #require((announced["nlri"] as? [[String: Any]])?.first)
        #expect(first["rd"] as? String == "64512:1")
        #expect(first["prefix"] as? String == "10.1.0.0/32")
        #expect(first["labels"] as? [Int] == [1000])
    }

    @Test func badMessagesGetAnErrorRecordAndTheRestStillDecode() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tool.path) else { return }
        let input = """
            FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001304
            FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00170200000040
            FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF0029020000000E40010105400200400304C0000201180A0000
            not hex at all
            FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001304
            """
        let (status, lines) = try run([], input: input)
        #expect(status == 1)
        #expect(lines.count == 5)
        #expect(lines[0]["type"] as? String == "keepalive")
        #expect(lines[1]["error_class"] as? String == "session-reset")
        let notification = try #require(lines[1]["notification"] as? [String: Any])
        #expect(notification["code"] as? Int == 3)
        #expect(notification["subcode"] as? Int == 1)
        #expect(lines[2]["error_class"] as? String == "treat-as-withdraw")
        #expect(lines[3]["error_class"] as? String == "input")
        #expect(lines[4]["type"] as? String == "keepalive")
    }

    @Test func contextFlagsChangeTheDecode() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tool.path) else { return }
        // A 2-byte AS_PATH (AS 65000 then 200) only reads right with --no-asn4.
        let message = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF002F02000000144001010040020602 02FDE800C8400304C0000201180A0000".replacingOccurrences(of: " ", with: "")
        let asn2 = try run(["--no-asn4"], input: message)
        #expect(asn2.status == 0)
        let path = try #require((asn2.lines.first?["attributes"] as? [[String: Any]])?.first { $0["name"] as? String == "as-path" })
        #expect((path["value"] as? [[String: Any]])?.first?["asns"] as? [Int] == [65000, 200])
        let asn4 = try run([], input: message)
        #expect(asn4.status == 1)
        // Path identifiers with --add-path.
        let addPath = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001F0200080000000A180A0A0A0000"
        let withIDs = try run(["--add-path", "ipv4-unicast"], input: addPath)
        #expect(withIDs.status == 0)
        let withdrawn = try #require((withIDs.lines.first?["withdrawn"] as? [[String: Any]])?.first?["nlri"] as? [[String: Any]])
        #expect(withdrawn.first?["path_id"] as? Int == 10)
        #expect(withdrawn.first?["prefix"] as? String == "10.10.10.0/24")
    }

    @Test func decodesACaptureWithTheContextItsOpensNegotiated() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tool.path) else { return }
        let capture = Corpus.vectors.appendingPathComponent("netgauze/bgp/multiple-sessions/traffic.pcap")
        let (status, lines) = try run([capture.path])
        #expect(status == 0)
        #expect(lines.count > 100)
        #expect(lines.allSatisfy { $0["frame"] is Int && $0["flow"] is String })
        #expect(lines.contains { $0["type"] as? String == "open" })
    }
}
