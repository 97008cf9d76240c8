import ArgumentParser
import BGPWire
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Decodes and encodes the two UPDATEs of shared/bench, and runs GoBGP's packet library on the
/// same bytes in the same run (when Go and Debian's GoBGP source are installed).
struct CodecBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "BGP codec: decode and encode throughput and heap bytes per NLRI, against GoBGP.")

    @Option(help: "Folder holding vpnv4-update.hex and evpn-update.hex.") var bench = "../shared/bench"
    @Option(help: "Seconds per measurement.") var seconds: Double = 2
    @Flag(help: "Do not run GoBGP.") var noGobgp = false

    struct Row {
        var name: String
        var nlri: Int
        var messagesPerSecond: Double
        var heapPerNLRI: Double
        var nlriPerSecond: Double { messagesPerSecond * Double(nlri) }
    }

    mutating func run() throws {
        var rows: [(String, Row)] = []
        var files: [String] = []
        for name in ["vpnv4", "evpn"] {
            let path = "\(bench)/\(name)-update.hex"
            files.append(path)
            guard let text = try? readText(path), let bytes = Hex.decode(text.filter { !$0.isWhitespace }) else {
                throw ValidationError("cannot read \(path)")
            }
            let input = ByteBuffer(bytes: bytes)
            guard case .update(let update) = try BGPMessage.decode(input), let reach = update.attributes.mpReach else {
                throw ValidationError("\(path) is not an MP_REACH UPDATE")
            }
            let nlri = reach.nlri.count
            let elements = reach.nlri.elements
            let attributes = update.attributes.filter { $0.typeCode != AttributeType.mpReachNLRI }
            let builder = UpdateBuilder()
            // The builder must reproduce the benchmark message byte for byte.
            let built = builder.announce(elements, family: reach.family, nextHop: reach.nextHop, attributes: attributes)
            guard built.count == 1, Array(built[0].readableBytesView) == bytes else {
                throw ValidationError("UpdateBuilder does not reproduce \(path)")
            }

            var sink = 0
            // Decode: validate the message, then read every NLRI back into a value.
            let decode = measure(seconds: seconds) {
                guard case .update(let u)? = try? BGPMessage.decode(input), let r = u.attributes.mpReach else { return }
                for e in r.nlri { sink &+= checksum(e.nlri) }
            }
            // Decode only: parse and validate the message (NLRI validated, not kept as values).
            let validate = measure(seconds: seconds) {
                if case .update(let u)? = try? BGPMessage.decode(input) { sink &+= u.attributes.count }
            }
            let encode = measure(seconds: seconds) {
                builder.announce(elements, family: reach.family, nextHop: reach.nextHop, attributes: attributes) { sink &+= $0.readableBytes }
            }
            rows.append((name, Row(name: "decode + read every NLRI", nlri: nlri, messagesPerSecond: decode.perSecond, heapPerNLRI: decode.heapBytesPerCall / Double(nlri))))
            rows.append((name, Row(name: "decode (validate only)", nlri: nlri, messagesPerSecond: validate.perSecond, heapPerNLRI: validate.heapBytesPerCall / Double(nlri))))
            rows.append((name, Row(name: "encode", nlri: nlri, messagesPerSecond: encode.perSecond, heapPerNLRI: encode.heapBytesPerCall / Double(nlri))))
            if sink == 42 { print("") }
        }

        // GoBGP twice: on one core like our codec (GOMAXPROCS=1, the ratio's base), and with Go's
        // default, where its garbage collector also runs on the second core.
        var gobgp: [String: (decode: Double, decodeHeap: Double, encode: Double, encodeHeap: Double)] = [:]
        var gobgpAllCores: [String: (decode: Double, decodeHeap: Double, encode: Double, encodeHeap: Double)] = [:]
        for (procs, target) in [("GOMAXPROCS=1 ", 0), ("", 1)] where !noGobgp {
            let program = "Benchmarks/gobgp-codec/main.go"
            let command = "cd \(shellQuote(dirname(program))) && \(procs)GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE=/tmp/bagpipe-gocache go run main.go "
                + files.map { shellQuote(absolute($0)) }.joined(separator: " ") + " 2>/dev/null"
            if let out = capture(command) {
                for line in out.split(separator: "\n") {
                    let fields = parseFlatJSON(String(line))
                    let file = fields["file"] ?? ""
                    let name = file.contains("vpnv4") ? "vpnv4" : "evpn"
                    let figures = (Double(fields["decode_nlri_per_s"] ?? "") ?? 0, Double(fields["decode_heap_bytes_per_nlri"] ?? "") ?? 0,
                        Double(fields["encode_nlri_per_s"] ?? "") ?? 0, Double(fields["encode_heap_bytes_per_nlri"] ?? "") ?? 0)
                    if target == 0 { gobgp[name] = figures } else { gobgpAllCores[name] = figures }
                }
            } else {
                print("GoBGP not run: install golang-go and golang-github-osrg-gobgp-dev (Debian) for the side-by-side figures")
                break
            }
        }

        print("| message | operation | NLRI/msg | msgs/s | NLRI/s | heap B/NLRI | GoBGP NLRI/s (1 core) | GoBGP heap B/NLRI | speed ratio | GoBGP NLRI/s (GC on 2 cores) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for (name, row) in rows {
            var theirs = "-", theirsHeap = "-", ratio = "-", allCores = "-"
            if let g = gobgpAllCores[name] { allCores = millions(row.name == "encode" ? g.encode : g.decode) }
            if let g = gobgp[name] {
                let rate = row.name == "encode" ? g.encode : g.decode
                theirs = millions(rate)
                theirsHeap = format(row.name == "encode" ? g.encodeHeap : g.decodeHeap)
                ratio = format(row.nlriPerSecond / rate, 2) + "x"
            }
            print("| \(name) | \(row.name) | \(row.nlri) | \(format(row.messagesPerSecond / 1000, 1)) k | \(millions(row.nlriPerSecond)) | \(format(row.heapPerNLRI)) | \(theirs) | \(theirsHeap) | \(ratio) | \(allCores) |")
        }
    }

    func checksum(_ nlri: NLRI) -> Int {
        switch nlri {
        case .vpnPrefix(let p):
            var h = Int(truncatingIfNeeded: p.routeDistinguisher.rawValue) &+ Int(p.labels[rawEntryAt: 0]) &+ Int(p.prefix.length)
            if case .v4(let a) = p.prefix.address { h &+= Int(a.value) }
            return h
        case .evpn(.macIPAdvertisement(let r)):
            var h = Int(truncatingIfNeeded: r.routeDistinguisher.rawValue) &+ Int(truncatingIfNeeded: r.mac.value) &+ Int(r.labelField1) &+ Int(r.esi.high)
            if case .v4(let a)? = r.ip { h &+= Int(a.value) }
            return h
        default: return 1
        }
    }
}

func readText(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw ValidationError("cannot open \(path)") }
    defer { fclose(file) }
    var out = ""
    var buffer = [CChar](repeating: 0, count: 65536)
    while fgets(&buffer, Int32(buffer.count), file) != nil { out += cString(buffer) }
    return out
}

func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

func dirname(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return String(path[..<slash])
}

func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    return cString(buffer) + "/" + path
}

/// Reads the string and number fields of a one-level JSON object.
func parseFlatJSON(_ line: String) -> [String: String] {
    var out: [String: String] = [:]
    let body = line.trimmingCharacters(in: "{}")
    for pair in body.split(separator: ",") {
        let kv = pair.split(separator: ":", maxSplits: 1)
        guard kv.count == 2 else { continue }
        out[kv[0].trimmingCharacters(in: "\"")] = kv[1].trimmingCharacters(in: "\"")
    }
    return out
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
