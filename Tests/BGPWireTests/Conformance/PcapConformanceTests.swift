import BGPWire
import Foundation
import NIOCore
import Testing

/// Every message of pcap-index.jsonl (tcpdump, NetGauze, Ryu captures) decodes under the context its
/// session negotiated, and re-encodes to the same bytes; messages broken on purpose fail with the
/// RFC 7606 class the exceptions file names.
@Suite struct PcapConformanceTests {
    static func baseKey(_ r: [String: Any]) -> String {
        let frame = (r["frame"] as? Int) ?? ((r["frames"] as? [Int])?.first ?? -1)
        var k = "\(r["pcap"] as? String ?? "?")#\(frame)"
        if let bmp = r["bmp_index"] as? Int { k += "/\(bmp)" }
        return k
    }

    /// file#frame[/bmp], with ".n" when one frame holds several messages.
    static func keys(_ records: [[String: Any]]) -> [String] {
        let bases = records.map(baseKey)
        var total: [String: Int] = [:]
        for b in bases { total[b, default: 0] += 1 }
        var seen: [String: Int] = [:]
        return bases.map { b in
            let n = seen[b, default: 0]
            seen[b] = n + 1
            return total[b]! == 1 ? b : "\(b).\(n)"
        }
    }

    /// Contexts to try for a stream whose OPENs the capture does not hold (tcpdump's samples start
    /// mid-session): the default first, then 2-byte AS, then add-path, as tcpdump itself guesses.
    static let guesses: [WireContext] = [
        .standard, WireContext(fourOctetAS: false), WireContext(addPathFamilies: Set(AddressFamily.modeled)),
        WireContext(fourOctetAS: false, addPathFamilies: Set(AddressFamily.modeled)),
    ]

    @Test func everyCapturedMessage() throws {
        let records = try Corpus.jsonLines("pcap-index.jsonl")
        let exceptions = try Corpus.exceptions(source: "pcap")
        // OPENs of each TCP connection decide the context of its messages.
        var opens: [String: OpenMessage] = [:]
        for r in records where (r["carrier"] as? String ?? "bgp") == "bgp" && r["type"] as? Int == 1 {
            if case .open(let open)? = try? BGPMessage.decode(bytes: bytes(hex: r["hex"] as? String ?? "")) {
                opens["\(r["pcap"]!)|\(r["stream"]!)|\(r["src"]!)"] = open
            }
        }
        var failures: [String] = []
        var passed = 0, malformedAsExpected = 0, reencoded = 0
        let keys = Self.keys(records)
        var guessed = 0
        for (r, k) in zip(records, keys) {
            guard let hex = r["hex"] as? String else {
                // A broken stream with no message boundary: nothing to decode, the tail must fail.
                if let tail = r["incomplete_tail_hex"] as? String {
                    let (_, cls, _) = outcome(tail, context: .standard)
                    if cls == "ok" { failures.append("\(k): incomplete tail decoded") } else { passed += 1; malformedAsExpected += 1 }
                } else {
                    passed += 1  // stream-level error record, reported by the extractor (see BGPCaptureTests)
                    malformedAsExpected += 1
                }
                continue
            }
            var context = WireContext.standard
            var (message, cls, error) = outcome(hex, context: context)
            if (r["carrier"] as? String ?? "bgp") == "bgp" {
                let prefix = "\(r["pcap"]!)|\(r["stream"]!)|"
                if let sender = opens[prefix + "\(r["src"]!)"], let receiver = opens[prefix + "\(r["dst"]!)"] {
                    context = WireContext(sender: sender, receiver: receiver)
                    (message, cls, error) = outcome(hex, context: context)
                } else if message == nil, r["carrier"] == nil,
                    let fit = Self.guesses.dropFirst().first(where: { outcome(hex, context: $0).message != nil })
                {
                    context = fit
                    (message, cls, error) = outcome(hex, context: context)
                    guessed += 1
                }
            }
            let exception = exceptions[k]
            let expected = exception?.expect ?? "ok"
            let mustDecode = expected == "ok" || expected == "decode-only" || expected == "skip-compare"
            if mustDecode {
                guard let message else {
                    failures.append("\(k): \(error.map { "\($0)" } ?? cls)")
                    continue
                }
                if expected != "decode-only" {
                    let again = message.encodedBytes(context: context)
                    guard again == bytes(hex: hex) else {
                        failures.append("\(k): re-encoding differs\n  in  \(hex)\n  out \(Hex.encode(again))")
                        continue
                    }
                    reencoded += 1
                }
                passed += 1
            } else if cls == expected {
                if case .treatAsWithdraw(let withdrawn)? = error?.handling, withdrawn.allSatisfy({ $0.count == 0 && !$0.isOpaque }) {
                    failures.append("\(k): treat-as-withdraw carries no NLRI to withdraw")
                    continue
                }
                passed += 1
                malformedAsExpected += 1
            } else {
                failures.append("\(k): expected \(expected), got \(cls) \(error.map { "\($0)" } ?? "")")
            }
        }
        report("pcap-index", passed: passed, total: records.count,
            extra: "\(reencoded) re-encoded byte-exact, \(malformedAsExpected) malformed as expected, \(guessed) without OPENs decoded under a guessed context")
        if !failures.isEmpty { Issue.record("\(failures.count) failures:\n\(failures.prefix(30).joined(separator: "\n"))") }
    }
}
