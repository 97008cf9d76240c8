import BGPWire
import Foundation

/// What the fuzzers and the regression tests hold the codec to, for any input bytes: decoded under
/// each of four negotiated contexts, a message either fails with a classified error or decodes; then
/// its JSON renders, iterating every NLRI block yields as many elements as validation counted, and
/// it re-encodes to bytes that decode to the same value. A crash or a hang is a finding too, seen by
/// whoever runs this (libFuzzer, the mutation fuzzer's signal handler).
public enum CodecOracle {
    /// Plain, 2-octet AS, ADD-PATH on every family, extended messages from an external peer.
    public static let contexts: [WireContext] = [
        .standard, WireContext(fourOctetAS: false), WireContext(addPathFamilies: Set(AddressFamily.modeled)),
        WireContext(maxMessageSize: WireContext.maximumExtendedMessageSize, externalPeer: true),
    ]

    /// What one input did under one context.
    public enum Outcome: Sendable {
        case decoded(roundTripped: Bool)
        /// A classified decoding error (RFC 7606 handling name).
        case refused(String)
    }

    public struct Report: Sendable {
        public var outcomes: [Outcome] = []
        /// Broken promises, each naming the input.
        public var findings: [String] = []
    }

    public static func check(_ input: [UInt8]) -> Report {
        var report = Report()
        for context in contexts {
            let message: BGPMessage
            do {
                message = try BGPMessage.decode(bytes: input, context: context)
            } catch {
                _ = error.json.serialized()
                report.outcomes.append(.refused(error.handling.name))
                continue
            }
            _ = message.json(context: context).serialized()
            if case .update(let u) = message {
                for block in u.announced + u.withdrawn {
                    var n = 0
                    for e in block {
                        _ = e.json
                        n += 1
                    }
                    if n != block.count { report.findings.append("validated \(block.count) NLRI, iterated \(n): \(Hex.encode(input))") }
                }
            }
            let again = message.encodedBytes(context: context)
            do {
                let second = try BGPMessage.decode(bytes: again, context: context)
                if second != message { report.findings.append("round trip changed the value: \(Hex.encode(input))") }
                report.outcomes.append(.decoded(roundTripped: second == message))
            } catch {
                report.findings.append("re-encoding does not decode (\(error)): \(Hex.encode(input))")
                report.outcomes.append(.decoded(roundTripped: false))
            }
        }
        return report
    }

    /// Every message of the shared vectors (`<shared>/vectors`: the pcap and ExaBGP indexes,
    /// GoBGP's test inputs), as both fuzzers seed themselves; messages shorter than a header left out.
    public static func sharedVectorMessages(_ shared: String) throws -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        let vectors = URL(fileURLWithPath: shared).appendingPathComponent("vectors")
        for name in ["pcap-index.jsonl", "exabgp-index.jsonl", "gobgp-packet-tests.jsonl"] {
            guard let text = try? String(contentsOf: vectors.appendingPathComponent(name), encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                if let hex = o["hex"] as? String, let bytes = Hex.decode(hex) { seeds.append(bytes) }
                for case let e as [String: Any] in o["events"] as? [Any] ?? [] {
                    if e["fn"] as? String == "ParseBGPMessage", let hex = e["hex"] as? String, let bytes = Hex.decode(hex) { seeds.append(bytes) }
                }
            }
        }
        return seeds.filter { $0.count >= 19 }
    }
}
