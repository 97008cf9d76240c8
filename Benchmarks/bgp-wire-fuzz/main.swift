// A deterministic mutation fuzzer for the BGPWire decoder.
//
// Seeds are every message of the shared vectors (pcap-index, exabgp-index, GoBGP's test inputs) and
// the regression inputs kept in Tests/BGPWireTests/Regressions. Each round takes a seed and applies
// truncation, bit flips, interesting bytes, insertions, deletions and splices, then (usually) patches
// the header's length field so the mutation reaches the body parsers. Every input is decoded under
// several negotiated contexts. The oracle:
//   - no crash (a trap is caught by a signal handler, which saves the input to fuzz-out/);
//   - no input takes longer than --max-ms to decode;
//   - CodecOracle: classified errors, NLRI iteration as counted, re-encoding decodes to the same value;
//   - resident memory stays under --max-rss-mb.
// The same --seed gives the same inputs, so a finding reproduces.

import ArgumentParser
import BagpipeLab
import BGPWire
import BGPWireOracle
import Foundation
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The input being decoded, kept where a signal handler can reach it without allocating.
nonisolated(unsafe) var currentInput = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 17)
nonisolated(unsafe) var currentLength = 0
nonisolated(unsafe) var crashPath = [CChar](repeating: 0, count: 512)

func installCrashHandler() {
    for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT] {
        signal(sig) { sig in
            let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
                var pair: (UInt8, UInt8) = (0, 0)
                for i in 0..<currentLength {
                    pair = (digits[Int(currentInput[i] >> 4)], digits[Int(currentInput[i] & 0xF)])
                    withUnsafeBytes(of: &pair) { _ = write(fd, $0.baseAddress, 2) }
                }
                var newline: UInt8 = 10
                _ = write(fd, &newline, 1)
                close(fd)
            }
            let message = "bgp-wire-fuzz: caught signal, input saved\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            _exit(128 + sig)
        }
    }
}

struct BGPWireFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bgp-wire-fuzz",
        abstract: "Mutation-fuzz the BGP decoder with the shared vectors as seeds.",
        discussion: "Example: swift run -c release bgp-wire-fuzz --minutes 10 --shared ../shared")

    @Option(help: "Path of the shared folder holding vectors/.") var shared = "../shared"
    @Option(help: "Regression inputs (hex, one per line) to add to the seeds.") var regressions = "Tests/BGPWireTests/Regressions"
    @Option(help: "How long to run.") var minutes: Double = 1
    @Option(help: "Stop after this many inputs (0: no limit).") var maxInputs = 0
    @Option(help: "PRNG seed; the same seed gives the same inputs.") var seed: UInt64 = 1
    @Option(help: "Slowest acceptable decode of one input, in milliseconds.") var maxMs: Double = 50
    @Option(help: "Largest acceptable resident memory, in MiB.") var maxRssMb: Int = 512
    @Option(help: "Where findings are written.") var out = "fuzz-out"

    mutating func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let path = Array("\(out)/crash-\(getpid()).hex".utf8CString)
        for (i, c) in path.enumerated() where i < crashPath.count - 1 { crashPath[i] = c }
        installCrashHandler()

        let seeds = try loadSeeds()
        guard !seeds.isEmpty else { throw ValidationError("no seeds found under \(shared)/vectors") }
        print("bgp-wire-fuzz: \(seeds.count) seed messages, seed \(seed), \(minutes) min")
        var random = SplitMix64(seed: seed)
        let deadline = Date().addingTimeInterval(minutes * 60)
        var inputs = 0, decoded = 0, roundTripped = 0, slowest = 0.0
        var findings: [String] = []
        var classes: [String: Int] = [:]
        var lastReport = Date()
        while Date() < deadline && (maxInputs == 0 || inputs < maxInputs) {
            let input = mutate(seeds[random.below(seeds.count)], seeds: seeds, random: &random)
            inputs += 1
            currentLength = min(input.count, 1 << 17)
            input.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { currentInput.update(from: base, count: currentLength) }
            }
            // The oracle decodes under every context; the time limit is per decode.
            let start = DispatchTime.now().uptimeNanoseconds
            let report = CodecOracle.check(input)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(CodecOracle.contexts.count)
            slowest = max(slowest, ms)
            if ms > maxMs { findings.append("slow (\(ms) ms per decode): \(Hex.encode(input))") }
            findings += report.findings
            for outcome in report.outcomes {
                switch outcome {
                case .decoded(let same):
                    decoded += 1
                    if same { roundTripped += 1 }
                case .refused(let handling): classes[handling, default: 0] += 1
                }
            }
            if Date().timeIntervalSince(lastReport) > 30 {
                lastReport = Date()
                print("  \(inputs) inputs, \(decoded) decodes, rss \(residentMiB()) MiB, slowest \(String(format: "%.2f", slowest)) ms")
                if residentMiB() > maxRssMb { findings.append("resident memory \(residentMiB()) MiB above \(maxRssMb)") }
            }
            if findings.count > 20 { break }
        }
        print("bgp-wire-fuzz: \(inputs) inputs x \(CodecOracle.contexts.count) contexts: \(decoded) decoded (\(roundTripped) round-tripped), errors \(classes.sorted { $0.key < $1.key })")
        print("bgp-wire-fuzz: slowest decode \(String(format: "%.3f", slowest)) ms, resident memory \(residentMiB()) MiB, \(findings.count) findings")
        if !findings.isEmpty {
            let file = "\(out)/findings-\(seed).txt"
            try findings.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            print("findings written to \(file)")
            for f in findings.prefix(5) { print("  " + f.prefix(300)) }
            throw ExitCode(1)
        }
    }

    func residentMiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kb / 1024
    }

    func loadSeeds() throws -> [[UInt8]] {
        var seeds = try CodecOracle.sharedVectorMessages(shared)
        for file in (try? FileManager.default.contentsOfDirectory(atPath: regressions)) ?? [] where file.hasSuffix(".hex") {
            let text = (try? String(contentsOfFile: "\(regressions)/\(file)", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where !line.hasPrefix("#") { if let b = Hex.decode(line) { seeds.append(b) } }
        }
        return seeds.filter { $0.count >= 19 }
    }

    func mutate(_ seed: [UInt8], seeds: [[UInt8]], random: inout SplitMix64) -> [UInt8] {
        var b = seed
        let rounds = 1 + random.below(4)
        for _ in 0..<rounds {
            guard !b.isEmpty else { break }
            switch random.below(8) {
            case 0: b = Array(b.prefix(random.below(b.count + 1)))  // truncate
            case 1:  // bit flip in the body
                let i = random.below(b.count)
                b[i] ^= UInt8(1) << UInt8(random.below(8))
            case 2:  // interesting byte
                let values: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x20, 0x40, 0x60, 0xC0, 0xF0, 0x0E, 0x0F]
                b[random.below(b.count)] = values[random.below(values.count)]
            case 3:  // insert bytes
                let at = random.below(b.count + 1)
                b.insert(contentsOf: (0..<1 + random.below(8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
            case 4:  // delete a run
                let at = random.below(b.count)
                b.removeSubrange(at..<min(b.count, at + 1 + random.below(8)))
            case 5:  // splice the tail of another message
                let other = seeds[random.below(seeds.count)]
                let cut = random.below(b.count)
                b = Array(b.prefix(cut)) + other.suffix(max(0, other.count - random.below(other.count)))
            case 6:  // corrupt a 16-bit length somewhere
                if b.count > 2 {
                    let i = random.below(b.count - 1)
                    let v = UInt16(b[i]) << 8 | UInt16(b[i + 1])
                    let n = [v &+ 1, v &- 1, 0, 0xFFFF, v &+ 8][random.below(5)]
                    b[i] = UInt8(n >> 8)
                    b[i + 1] = UInt8(n & 0xFF)
                }
            default:  // corrupt an 8-bit length-ish byte after the header
                if b.count > 20 { b[19 + random.below(b.count - 19)] = UInt8(truncatingIfNeeded: random.next()) }
            }
        }
        // Mostly keep the header consistent so the body parsers are reached.
        if random.below(8) != 0, b.count >= 19, b.count <= 0xFFFF {
            for i in 0..<16 { b[i] = 0xFF }
            b[16] = UInt8(b.count >> 8)
            b[17] = UInt8(b.count & 0xFF)
        }
        return b
    }
}
