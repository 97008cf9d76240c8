import BGPWire
import NIOCore

/// A TCP segment pulled out of a captured packet.
struct TCPSegment {
    var frame: Int
    var source: String
    var destination: String
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var syn: Bool
    var payload: ArraySlice<UInt8>
}

/// A BGP message found in a capture, with where it came from.
public struct CapturedMessage: Sendable {
    /// "src:port -> dst:port"
    public var flow: String
    /// Frame that held the message's first byte.
    public var frame: Int
    public var bytes: [UInt8]
    /// The context negotiated by the OPENs seen so far on this connection.
    public var context: WireContext
}

/// Something in a stream that is not a BGP message (lost sync, a gap, a truncated tail).
public struct CaptureProblem: Sendable {
    public var flow: String
    public var frame: Int
    public var reason: String
    public var bytes: [UInt8]
}

/// Reassembles TCP streams on port `port` (179) and splits them into BGP messages.
public struct BGPStreamExtractor {
    public var port: UInt16
    /// Used until both OPENs of a connection have been seen.
    public var defaultContext: WireContext

    public init(port: UInt16 = 179, defaultContext: WireContext = .standard) {
        self.port = port
        self.defaultContext = defaultContext
    }

    public enum Item: Sendable {
        case message(CapturedMessage)
        case problem(CaptureProblem)
    }

    /// Messages of every stream, stream by stream in order of first appearance.
    public func extract(_ packets: [CapturedPacket]) -> [Item] {
        var order: [String] = []
        var segments: [String: [TCPSegment]] = [:]
        for packet in packets {
            guard let segment = Self.parse(packet), segment.sourcePort == port || segment.destinationPort == port else { continue }
            let flow = "\(segment.source):\(segment.sourcePort) -> \(segment.destination):\(segment.destinationPort)"
            if segments[flow] == nil { order.append(flow) }
            segments[flow, default: []].append(segment)
        }
        // OPENs per flow decide the context of the reverse flow too, so split all flows first.
        var perFlow: [String: [(frame: Int, bytes: [UInt8])]] = [:]
        var problems: [String: [CaptureProblem]] = [:]
        for flow in order {
            let (stream, frames) = Self.reassemble(segments[flow]!)
            let (messages, issues) = Self.split(stream, frames: frames, flow: flow)
            perFlow[flow] = messages
            problems[flow] = issues
        }
        var opens: [String: OpenMessage] = [:]
        for flow in order {
            for m in perFlow[flow]! where m.bytes.count > 18 && m.bytes[18] == BGPMessage.MessageType.open {
                if case .open(let open)? = try? BGPMessage.decode(bytes: m.bytes) {
                    opens[flow] = open
                    break
                }
            }
        }
        var items: [Item] = []
        for flow in order {
            let context = negotiatedContext(sender: opens[flow], receiver: opens[Self.reverse(flow)])
            var all: [(Int, Item)] = perFlow[flow]!.map {
                ($0.frame, .message(CapturedMessage(flow: flow, frame: $0.frame, bytes: $0.bytes, context: context)))
            }
            all += problems[flow]!.map { ($0.frame, .problem($0)) }
            items += all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return items
    }

    static func reverse(_ flow: String) -> String {
        let parts = flow.split(separator: " ")
        guard parts.count == 3 else { return flow }
        return "\(parts[2]) -> \(parts[0])"
    }

    /// What `sender` may put in its messages to `receiver`; the default until both OPENs are known.
    func negotiatedContext(sender: OpenMessage?, receiver: OpenMessage?) -> WireContext {
        guard let sender, let receiver else { return defaultContext }
        return WireContext(sender: sender, receiver: receiver)
    }

    /// Orders segments by sequence number (relative to the first), drops retransmitted bytes and
    /// records which frame each byte came from.
    static func reassemble(_ segments: [TCPSegment]) -> (bytes: [UInt8], frames: [(offset: Int, frame: Int, gap: Bool)]) {
        guard let first = segments.first else { return ([], []) }
        let base = first.syn ? first.sequence &+ 1 : first.sequence
        var ordered: [(Int, TCPSegment)] = []
        for segment in segments where !segment.payload.isEmpty {
            ordered.append((Int(Int32(bitPattern: segment.sequence &- base)), segment))
        }
        ordered.sort { a, b in a.0 == b.0 ? a.1.frame < b.1.frame : a.0 < b.0 }
        var bytes: [UInt8] = []
        var frames: [(offset: Int, frame: Int, gap: Bool)] = []
        var end = ordered.first?.0 ?? 0
        for (start, segment) in ordered {
            let segmentEnd = start + segment.payload.count
            guard segmentEnd > end else { continue }
            let gap = start > end
            let skip = max(0, end - start)
            frames.append((bytes.count, segment.frame, gap))
            bytes += segment.payload.dropFirst(skip)
            end = segmentEnd
        }
        return (bytes, frames)
    }

    static func frame(at offset: Int, in frames: [(offset: Int, frame: Int, gap: Bool)]) -> Int {
        var result = frames.first?.frame ?? 0
        for f in frames where f.offset <= offset { result = f.frame }
        return result
    }

    /// Splits a stream into messages by the header's length. On a bad marker it searches for the next
    /// one, reporting the skipped bytes.
    static func split(_ stream: [UInt8], frames: [(offset: Int, frame: Int, gap: Bool)], flow: String)
        -> ([(frame: Int, bytes: [UInt8])], [CaptureProblem])
    {
        var messages: [(frame: Int, bytes: [UInt8])] = []
        var problems: [CaptureProblem] = []
        var offset = 0
        let marker = [UInt8](repeating: 0xFF, count: 16)
        func findMarker(from start: Int) -> Int? {
            var i = start
            while i + 16 <= stream.count {
                if stream[i..<i + 16].elementsEqual(marker) {
                    // Skip past runs of 0xFF longer than the marker.
                    var j = i
                    while j + 16 < stream.count && stream[j + 16] == 0xFF { j += 1 }
                    return j
                }
                i += 1
            }
            return nil
        }
        while offset < stream.count {
            let remaining = stream.count - offset
            if remaining >= 16 && !stream[offset..<offset + 16].elementsEqual(marker) {
                let next = findMarker(from: offset + 1) ?? stream.count
                problems.append(CaptureProblem(flow: flow, frame: frame(at: offset, in: frames), reason: "no marker / unsynchronised", bytes: Array(stream[offset..<next])))
                offset = next
                continue
            }
            if remaining < 19 {
                problems.append(CaptureProblem(flow: flow, frame: frame(at: offset, in: frames), reason: "incomplete message at the end of the stream", bytes: Array(stream[offset...])))
                break
            }
            let length = Int(stream[offset + 16]) << 8 | Int(stream[offset + 17])
            if length < 19 {
                // Cannot advance by this length: hand it to the decoder for its error, then resync.
                messages.append((frame(at: offset, in: frames), Array(stream[offset..<offset + 19])))
                offset = findMarker(from: offset + 16) ?? stream.count
                continue
            }
            guard offset + length <= stream.count else {
                problems.append(CaptureProblem(flow: flow, frame: frame(at: offset, in: frames), reason: "incomplete message at the end of the stream", bytes: Array(stream[offset...])))
                break
            }
            messages.append((frame(at: offset, in: frames), Array(stream[offset..<offset + length])))
            offset += length
        }
        return (messages, problems)
    }

    /// Pulls IP addresses, ports and payload out of a link-layer frame.
    static func parse(_ packet: CapturedPacket) -> TCPSegment? {
        let d = Array(packet.data)
        var offset: Int
        var ethertype: Int
        switch packet.linkType {
        case 1:  // Ethernet, possibly VLAN-tagged
            guard d.count >= 14 else { return nil }
            offset = 14
            ethertype = Int(d[12]) << 8 | Int(d[13])
            while (ethertype == 0x8100 || ethertype == 0x88A8) && d.count >= offset + 4 {
                ethertype = Int(d[offset + 2]) << 8 | Int(d[offset + 3])
                offset += 4
            }
        case 113:  // Linux cooked
            guard d.count >= 16 else { return nil }
            offset = 16
            ethertype = Int(d[14]) << 8 | Int(d[15])
        case 276:  // Linux cooked v2
            guard d.count >= 20 else { return nil }
            offset = 20
            ethertype = Int(d[0]) << 8 | Int(d[1])
        case 0, 108:  // BSD loopback: address family in host order (or network order for 108)
            guard d.count >= 4 else { return nil }
            offset = 4
            let family = Int(d[0]) | Int(d[3])
            ethertype = family == 2 ? 0x0800 : 0x86DD
        case 12, 14, 101, 228, 229:  // raw IP
            guard !d.isEmpty else { return nil }
            offset = 0
            ethertype = d[0] >> 4 == 6 ? 0x86DD : 0x0800
        default: return nil
        }
        var source = ""
        var destination = ""
        var tcpStart: Int
        var tcpEnd: Int
        if ethertype == 0x0800 {
            guard d.count >= offset + 20, d[offset] >> 4 == 4, d[offset + 9] == 6 else { return nil }
            let headerLength = Int(d[offset] & 0x0F) * 4
            let total = Int(d[offset + 2]) << 8 | Int(d[offset + 3])
            source = d[offset + 12..<offset + 16].map(String.init).joined(separator: ".")
            destination = d[offset + 16..<offset + 20].map(String.init).joined(separator: ".")
            tcpStart = offset + headerLength
            tcpEnd = min(d.count, offset + (total > 0 ? total : d.count - offset))
        } else if ethertype == 0x86DD {
            guard d.count >= offset + 40, d[offset + 6] == 6 else { return nil }
            let payload = Int(d[offset + 4]) << 8 | Int(d[offset + 5])
            source = "[" + IPv6Address(high: read64(d, offset + 8), low: read64(d, offset + 16)).description + "]"
            destination = "[" + IPv6Address(high: read64(d, offset + 24), low: read64(d, offset + 32)).description + "]"
            tcpStart = offset + 40
            tcpEnd = min(d.count, tcpStart + payload)
        } else {
            return nil
        }
        guard tcpEnd >= tcpStart + 20 else { return nil }
        let sourcePort = UInt16(d[tcpStart]) << 8 | UInt16(d[tcpStart + 1])
        let destinationPort = UInt16(d[tcpStart + 2]) << 8 | UInt16(d[tcpStart + 3])
        let sequence = UInt32(d[tcpStart + 4]) << 24 | UInt32(d[tcpStart + 5]) << 16 | UInt32(d[tcpStart + 6]) << 8 | UInt32(d[tcpStart + 7])
        let dataOffset = Int(d[tcpStart + 12] >> 4) * 4
        let syn = d[tcpStart + 13] & 0x02 != 0
        let payloadStart = min(tcpStart + dataOffset, tcpEnd)
        return TCPSegment(
            frame: packet.frame, source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort,
            sequence: sequence, syn: syn, payload: d[payloadStart..<tcpEnd])
    }

    static func read64(_ d: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(d[at + $1]) } }
}
