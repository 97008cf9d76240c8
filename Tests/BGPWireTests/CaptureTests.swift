import BGPCapture
import BGPWire
import Foundation
import Testing

/// The capture reader finds the same BGP messages in tcpdump's and NetGauze's pcaps as the index
/// built from them, reassembling TCP streams.
@Suite struct CaptureTests {
    @Test(arguments: ["tcpdump/bgp-4byte-asn.pcap", "tcpdump/bgp-evpn.pcap", "tcpdump/bgp-addpath.pcap", "netgauze/bgp/multiple-sessions/traffic.pcap"])
    func extractsTheIndexedMessages(pcap: String) throws {
        let data = try Data(contentsOf: Corpus.vectors.appendingPathComponent(pcap))
        let packets = try CaptureFile.packets(in: Array(data))
        let items = BGPStreamExtractor().extract(packets)
        let ours: [String] = items.compactMap { item in
            if case .message(let m) = item { return Hex.encode(m.bytes) }
            return nil
        }
        let indexed = try Corpus.jsonLines("pcap-index.jsonl").filter { $0["pcap"] as? String == pcap }.compactMap { $0["hex"] as? String }
        #expect(!indexed.isEmpty)
        #expect(Set(ours) == Set(indexed), "\(pcap): \(ours.count) extracted, \(indexed.count) indexed")
    }

    @Test func brokenStreamsAreReportedNotDropped() throws {
        let data = try Data(contentsOf: Corpus.vectors.appendingPathComponent("tcpdump/bgp-ub.pcap"))
        let items = BGPStreamExtractor().extract(try CaptureFile.packets(in: Array(data)))
        #expect(items.contains { if case .problem = $0 { return true } else { return false } })
    }

    @Test func rejectsWhatIsNotACapture() {
        #expect(throws: CaptureError.self) { try CaptureFile.packets(in: Array("hello world".utf8)) }
    }
}
