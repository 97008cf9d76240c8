// Coverage-guided fuzzing of the BGP codec with libFuzzer, beside the mutation fuzzer (bgp-wire-fuzz).
// Each input goes through CodecOracle: decoded under four contexts, every NLRI iterated, re-encoded
// and decoded again. A broken promise aborts, so that libFuzzer keeps the input as a crash artifact.
//
// Built with the fuzzer runtime (see BENCHMARKS.md, "Coverage-guided fuzzing"), the arguments are
// libFuzzer's. SwiftPM links an executable through its own entry point, so libFuzzer's main never
// runs: this one finds LLVMFuzzerRunDriver (exported with --export-dynamic) and calls it. Built
// without it, the arguments are files or folders of inputs to check once (a corpus replay), and
// `--write-seeds <folder>` writes the shared vectors there as a starting corpus.

import BGPWire
import BGPWireOracle
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let report = CodecOracle.check(input)
    if let finding = report.findings.first {
        FileHandle.standardError.write(Data("bgp-codec-fuzz: \(finding)\n".utf8))
        abort()
    }
    return 0
}

typealias FuzzerCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
typealias FuzzerDriver = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>, FuzzerCallback) -> Int32

/// The inputs of files and folders (every file of a folder, one input each).
func inputs(_ paths: [String]) -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    for path in paths {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
        let files = isFolder.boolValue ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" } : [path]
        for file in files { if let data = FileManager.default.contents(atPath: file) { out.append((file, [UInt8](data))) } }
    }
    return out
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "--write-seeds", arguments.count >= 2 {
    let folder = arguments[1], shared = arguments.count >= 3 ? arguments[2] : "../shared"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let seeds = try CodecOracle.sharedVectorMessages(shared)
    for (i, seed) in seeds.enumerated() { _ = FileManager.default.createFile(atPath: "\(folder)/seed-\(i)", contents: Data(seed)) }
    print("bgp-codec-fuzz: \(seeds.count) seeds from \(shared)/vectors written to \(folder)")
} else if let symbol = dlsym(nil, "LLVMFuzzerRunDriver") {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(unsafeBitCast(symbol, to: FuzzerDriver.self)(&argc, &argv, fuzzOne))
} else if arguments.isEmpty || arguments.first == "--help" {
    print("""
        usage: bgp-codec-fuzz <file or folder>...      check inputs once (a corpus replay)
               bgp-codec-fuzz --write-seeds <folder> [shared]
        Built with -sanitize=fuzzer (BENCHMARKS.md), the arguments are libFuzzer's.
        """)
} else {
    var findings = 0, checked = 0
    for (file, input) in inputs(arguments) {
        checked += 1
        for finding in CodecOracle.check(input).findings {
            findings += 1
            print("\(file): \(finding.prefix(300))")
        }
    }
    print("bgp-codec-fuzz: \(checked) inputs checked, \(findings) findings")
    exit(findings == 0 ? 0 : 1)
}
