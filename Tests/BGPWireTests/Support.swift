import BGPWire
import Foundation
import NIOCore

/// Where the shared conformance data lives: `../shared` beside the package root, or $BAGPIPE_SHARED.
enum Corpus {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var shared: URL {
        if let env = ProcessInfo.processInfo.environment["BAGPIPE_SHARED"] { return URL(fileURLWithPath: env) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    static var vectors: URL { shared.appendingPathComponent("vectors") }

    /// Parsed lines of a JSONL file under vectors/.
    static func jsonLines(_ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: vectors.appendingPathComponent(name), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw CorpusError("a line of \(name) is not a JSON object")
            }
            return object
        }
    }

    /// The exceptions file: one JSON object per line with source, key, expect and reason.
    static func exceptions(source: String) throws -> [String: Exception] {
        let url = packageRoot.appendingPathComponent("Tests/BGPWireTests/Conformance/exceptions.jsonl")
        let text = try String(contentsOf: url, encoding: .utf8)
        var out: [String: Exception] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let s = o["source"] as? String, let key = o["key"] as? String, let expect = o["expect"] as? String,
                let reason = o["reason"] as? String, !reason.isEmpty
            else { throw CorpusError("bad exceptions line: \(line)") }
            if s == source { out[key] = Exception(expect: expect, reason: reason) }
        }
        return out
    }

    struct Exception {
        /// "treat-as-withdraw", "session-reset", "attribute-discard": must fail with that class;
        /// "decode-only": must decode but need not re-encode byte for byte;
        /// "skip-compare": decodes, but the field comparison with the other decoder is not made.
        var expect: String
        var reason: String
    }
}

struct CorpusError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func bytes(hex: String) -> [UInt8] { Hex.decode(hex) ?? [] }

/// Decode, then classify the outcome as "ok" or the RFC 7606 class name.
func outcome(_ hex: String, context: WireContext) -> (message: BGPMessage?, errorClass: String, error: BGPDecodingError?) {
    do {
        let m = try BGPMessage.decode(bytes: bytes(hex: hex), context: context)
        return (m, "ok", nil)
    } catch {
        return (nil, error.handling.name, error)
    }
}

/// A short report line printed by each conformance test.
func report(_ source: String, passed: Int, total: Int, extra: String = "") {
    print("conformance \(source): \(passed)/\(total) passed\(extra.isEmpty ? "" : ", " + extra)")
}
