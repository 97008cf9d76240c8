import ArgumentParser
import BGPCapture
import BGPWire
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

@main
struct BagpipeBGPDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-bgp-decode",
        abstract: "Decode BGP messages to JSON, one object per line.",
        discussion: """
            Input is hex text (one message per line, with or without the 16-byte marker; blank lines
            and lines starting with '#' are skipped) or a pcap/pcapng capture, in which TCP streams on
            port 179 are reassembled and each connection is decoded with the capabilities its OPEN
            messages negotiated. With no FILE, or FILE '-', hex is read from standard input.

            Each message gives one JSON object (schema: docs/decode-json.md). A message that cannot be
            decoded gives an object with "type": "error", its RFC 7606 class (session-reset,
            treat-as-withdraw) and the NOTIFICATION a speaker would send; the other messages are still
            decoded.

            Exit status: 0 when every message decoded, 1 when any did not, 2 on a usage or file error.

            Examples:
              bagpipe-bgp-decode capture.pcapng
              echo FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001304 | bagpipe-bgp-decode
              bagpipe-bgp-decode --no-asn4 --add-path ipv4-unicast updates.hex

            With --connect, it opens a BGP session to a peer instead and prints each UPDATE it receives
            (and "established" / "down" records). When RT-Constraint is negotiated it announces the default
            RT-Constraint route so that the peer sends every VPN route it has:
              bagpipe-bgp-decode --connect 192.0.2.1 --as 64512 --router-id 192.0.2.9 \\
                  --family ipv4-vpn --family l2vpn-evpn --family rtc --duration 30
            """
    )

    @Argument(help: "Hex text files or pcap/pcapng captures ('-' for standard input).")
    var files: [String] = []

    @Flag(help: "AS numbers in AS_PATH and AGGREGATOR are 2 bytes (no RFC 6793 capability).")
    var noAsn4 = false

    @Option(
        name: .customLong("add-path"),
        help: "A family whose NLRI carry RFC 7911 path identifiers (repeatable): ipv4-unicast, ipv6-unicast, ipv4-vpn, ipv6-vpn, l2vpn-evpn, rtc, ipv4-flowspec, ..., or AFI/SAFI."
    )
    var addPath: [String] = []

    @Flag(help: "Accept messages up to 65535 bytes (RFC 8654).")
    var extendedMessage = false

    @Flag(help: "The sender is an external peer (its LOCAL_PREF is discarded).")
    var external = false

    @Option(help: "TCP port whose streams hold BGP in captures.")
    var port: UInt16 = 179

    @Flag(help: "Add the message's hex to each output object.")
    var withHex = false

    @Option(help: ArgumentHelp("Open a BGP session to this peer (ADDRESS or ADDRESS:PORT) and print what it sends.", valueName: "peer"))
    var connect: String?

    @Option(name: .customLong("as"), help: "With --connect: our AS number.") var localAS: UInt32 = 64512
    @Option(help: "With --connect: the peer's AS number (default: ours, iBGP).") var peerAS: UInt32?
    @Option(help: "With --connect: our BGP identifier.") var routerID = "192.0.2.254"
    @Option(help: "With --connect: the source address of the connection.") var localAddress: String?
    @Option(name: .customLong("family"), help: "With --connect: a family to negotiate (repeatable; default ipv4-vpn, l2vpn-evpn, rtc).")
    var families: [String] = []
    @Option(help: "With --connect: hold time to propose.") var holdTime: UInt16 = 90
    @Option(help: "With --connect: stop after this many seconds.") var duration: Double = 30
    @Option(help: "With --connect: stop after this many UPDATEs (0: no limit).") var count = 0
    @Flag(help: "With --connect: do not announce the RT-Constraint default route.") var noRtcDefault = false

    func validate() throws {
        for name in addPath + families where AddressFamily(name: name) == nil {
            throw ValidationError("unknown family '\(name)'")
        }
        if connect != nil && IPv4Address(routerID) == nil { throw ValidationError("--router-id must be an IPv4 address") }
    }

    var context: WireContext {
        WireContext(
            fourOctetAS: !noAsn4, addPathFamilies: Set(addPath.compactMap { AddressFamily(name: $0) }),
            maxMessageSize: extendedMessage ? WireContext.maximumExtendedMessageSize : 4096, externalPeer: external)
    }

    mutating func run() throws {
        if let target = connect {
            let parts = target.split(separator: ":")
            let (host, port) = parts.count == 2 && !target.contains("::") ? (String(parts[0]), Int(parts[1]) ?? 179) : (target, 179)
            let probe = Probe(
                peer: host, port: port, localAddress: localAddress, localAS: localAS, peerAS: peerAS ?? localAS,
                routerID: IPv4Address(routerID) ?? IPv4Address(0),
                families: families.isEmpty ? [.ipv4VPN, .evpn, .routeTargetConstraint] : families.compactMap { AddressFamily(name: $0) },
                holdTime: holdTime, duration: duration, count: count, rtcDefault: !noRtcDefault)
            if try !probe.run() { throw ExitCode(1) }
            return
        }
        var failed = false
        var index = 0
        let inputs = files.isEmpty ? ["-"] : files
        for file in inputs {
            let bytes: [UInt8]
            do {
                bytes = try readAll(file)
            } catch {
                printError("bagpipe-bgp-decode: cannot read \(file): \(error)")
                throw ExitCode(2)
            }
            if CaptureFile.isCapture(bytes) {
                let packets: [CapturedPacket]
                do {
                    packets = try CaptureFile.packets(in: bytes)
                } catch {
                    printError("bagpipe-bgp-decode: \(file): \(error)")
                    throw ExitCode(2)
                }
                let extractor = BGPStreamExtractor(port: port, defaultContext: context)
                for item in extractor.extract(packets) {
                    index += 1
                    switch item {
                    case .message(let m):
                        let source: [(String, JSONValue)] = [("file", .string(file)), ("frame", JSONValue(m.frame)), ("flow", .string(m.flow))]
                        failed = !emit(index: index, bytes: m.bytes, context: m.context, source: source) || failed
                    case .problem(let p):
                        failed = true
                        print(JSONValue.object([
                            ("index", JSONValue(index)), ("file", .string(file)), ("frame", JSONValue(p.frame)), ("flow", .string(p.flow)),
                            ("type", "error"), ("error_class", "stream"), ("reason", .string(p.reason)), ("hex", .string(Hex.encode(p.bytes))),
                        ]).serialized())
                    }
                }
                continue
            }
            let text = String(decoding: bytes, as: UTF8.self)
            for (lineNumber, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = rawLine.trimmingCharacters(in: " \t\r")
                if line.isEmpty || line.hasPrefix("#") { continue }
                index += 1
                let source: [(String, JSONValue)] = [("file", .string(file)), ("line", JSONValue(lineNumber + 1))]
                guard var message = Hex.decode(line) else {
                    failed = true
                    print(JSONValue.object(
                        [("index", JSONValue(index))] + source + [("type", "error"), ("error_class", "input"), ("reason", "not hex")]).serialized())
                    continue
                }
                // Without the marker, the line starts at the length field.
                if !message.starts(with: [UInt8](repeating: 0xFF, count: 16)) {
                    message = [UInt8](repeating: 0xFF, count: 16) + message
                }
                failed = !emit(index: index, bytes: message, context: context, source: source) || failed
            }
        }
        if failed { throw ExitCode(1) }
    }

    /// Prints one message's JSON; false when it did not decode.
    func emit(index: Int, bytes: [UInt8], context: WireContext, source: [(String, JSONValue)]) -> Bool {
        var head: [(String, JSONValue)] = [("index", JSONValue(index))] + source
        if withHex { head.append(("hex", .string(Hex.encode(bytes)))) }
        do {
            let message = try BGPMessage.decode(bytes: bytes, context: context)
            guard case .object(let fields) = message.json(context: context) else { return true }
            head.append(("length", JSONValue(bytes.count)))
            print(JSONValue.object(head + fields).serialized())
            return true
        } catch {
            guard case .object(let fields) = error.json else { return false }
            if !withHex { head.append(("hex", .string(Hex.encode(bytes)))) }
            print(JSONValue.object(head + [("type", "error")] + fields).serialized())
            return false
        }
    }

    func readAll(_ path: String) throws -> [UInt8] {
        let handle: UnsafeMutablePointer<FILE>?
        if path == "-" { handle = fdopen(0, "rb") } else { handle = fopen(path, "rb") }
        guard let file = handle else { throw CaptureError(String(cString: strerror(errno))) }
        defer { if path != "-" { fclose(file) } }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n > 0 { out += chunk[0..<n] }
            if n < chunk.count { break }
        }
        return out
    }

    func printError(_ text: String) {
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}

extension CaptureError {
    init(_ text: String) { self = CaptureError.make(text) }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
