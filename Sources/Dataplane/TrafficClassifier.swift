import BGPWire

/// A 5-tuple traffic classifier (reference §6.7): what `attract_traffic.classifier` describes, what a
/// flowspec redirect route carries as rules, and what a dataplane steers into a redirect VRF.
/// Only the components the original understands: destination and source prefix, IP protocol,
/// destination and source port.
public struct TrafficClassifier: Hashable, Sendable, CustomStringConvertible {
    /// An inclusive port range; `lower == upper` for one port.
    public struct PortRange: Hashable, Sendable, CustomStringConvertible {
        public var lower: UInt16
        public var upper: UInt16

        public init(_ lower: UInt16, _ upper: UInt16) {
            self.lower = lower
            self.upper = upper
        }

        /// `"N"` or `"min:max"`, as the API and the original's CLI write them.
        public init?(text: String) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, let lower = UInt16(parts[0].trimming(" ")) else { return nil }
            let upper = parts.count == 2 ? UInt16(parts[1].trimming(" ")) : lower
            guard let upper, lower <= upper else { return nil }
            self.init(lower, upper)
        }

        public var description: String { lower == upper ? "\(lower)" : "\(lower):\(upper)" }

        /// Flowspec numeric operators (RFC 8955 §4.2.1.1). The original wrote `0:max` as `<max` and
        /// `min:65535` as `>min`, leaving out the bounds; ranges here are inclusive at both ends.
        public var matches: [FlowSpecMatch] {
            if lower == upper { return [FlowSpecMatch(comparison: FlowSpecMatch.equal, value: UInt64(lower))] }
            if lower == 0 { return [FlowSpecMatch(comparison: FlowSpecMatch.lessThan | FlowSpecMatch.equal, value: UInt64(upper))] }
            if upper == .max { return [FlowSpecMatch(comparison: FlowSpecMatch.greaterThan | FlowSpecMatch.equal, value: UInt64(lower))] }
            return [
                FlowSpecMatch(comparison: FlowSpecMatch.greaterThan | FlowSpecMatch.equal, value: UInt64(lower)),
                FlowSpecMatch(comparison: FlowSpecMatch.lessThan | FlowSpecMatch.equal, value: UInt64(upper), and: true),
            ]
        }

        /// The range an AND-ed list of numeric operators describes; nil for what a range cannot say
        /// (OR-ed terms, "!=").
        public init?(matches: [FlowSpecMatch]) {
            var lower = 0, upper = Int(UInt16.max)
            for (i, m) in matches.enumerated() {
                guard i == 0 || m.isAnd, m.value <= UInt64(UInt16.max) else { return nil }
                let v = Int(m.value)
                switch m.op & 0x07 {
                case FlowSpecMatch.equal: (lower, upper) = (max(lower, v), min(upper, v))
                case FlowSpecMatch.lessThan: upper = min(upper, v - 1)
                case FlowSpecMatch.lessThan | FlowSpecMatch.equal: upper = min(upper, v)
                case FlowSpecMatch.greaterThan: lower = max(lower, v + 1)
                case FlowSpecMatch.greaterThan | FlowSpecMatch.equal: lower = max(lower, v)
                default: return nil
                }
            }
            guard lower <= upper, lower >= 0, upper <= Int(UInt16.max) else { return nil }
            self.init(UInt16(lower), UInt16(upper))
        }
    }

    public var sourcePrefix: IPPrefix?
    public var destinationPrefix: IPPrefix?
    public var sourcePort: PortRange?
    public var destinationPort: PortRange?
    /// IP protocol number (6 TCP, 17 UDP …).
    public var ipProtocol: UInt8?

    public init(sourcePrefix: IPPrefix? = nil, destinationPrefix: IPPrefix? = nil, sourcePort: PortRange? = nil, destinationPort: PortRange? = nil, ipProtocol: UInt8? = nil) {
        self.sourcePrefix = sourcePrefix
        self.destinationPrefix = destinationPrefix
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.ipProtocol = ipProtocol
    }

    public static let protocolNumbers: [String: UInt8] = ["icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "icmpv6": 58, "sctp": 132]

    /// The same classifier for another destination prefix.
    public func destined(to prefix: IPPrefix) -> TrafficClassifier {
        var c = self
        c.destinationPrefix = prefix
        return c
    }

    /// Flowspec components in type order (RFC 8955 §4.2: components must be ordered).
    public var flowSpecComponents: [FlowSpecComponent] {
        var out: [FlowSpecComponent] = []
        if let p = destinationPrefix { out.append(.destination(p)) }
        if let p = sourcePrefix { out.append(.source(p)) }
        if let proto = ipProtocol { out.append(.match(type: FlowSpecComponentType.ipProtocol, [FlowSpecMatch(comparison: FlowSpecMatch.equal, value: UInt64(proto))])) }
        if let r = destinationPort { out.append(.match(type: FlowSpecComponentType.destinationPort, r.matches)) }
        if let r = sourcePort { out.append(.match(type: FlowSpecComponentType.sourcePort, r.matches)) }
        return out
    }

    /// The classifier of flowspec rules; nil when they use a component or operator it cannot say
    /// (the route is then ignored, with a warning, as in the original).
    public init?(flowSpec components: [FlowSpecComponent]) {
        for component in components {
            switch component {
            case .prefix(let type, let prefix, let offset):
                guard offset == 0 else { return nil }
                if type == FlowSpecComponentType.destinationPrefix { destinationPrefix = prefix } else { sourcePrefix = prefix }
            case .match(let type, let matches):
                switch type {
                case FlowSpecComponentType.ipProtocol:
                    guard matches.count == 1, matches[0].op & 0x07 == FlowSpecMatch.equal, matches[0].value <= 255 else { return nil }
                    ipProtocol = UInt8(matches[0].value)
                case FlowSpecComponentType.destinationPort:
                    guard let r = PortRange(matches: matches) else { return nil }
                    destinationPort = r
                case FlowSpecComponentType.sourcePort:
                    guard let r = PortRange(matches: matches) else { return nil }
                    sourcePort = r
                default: return nil
                }
            }
        }
    }

    public var description: String {
        var parts: [String] = []
        if let p = sourcePrefix { parts.append("src \(p)") }
        if let p = destinationPrefix { parts.append("dst \(p)") }
        if let p = ipProtocol { parts.append("proto \(Self.protocolNumbers.first { $0.value == p }?.key ?? "\(p)")") }
        if let r = sourcePort { parts.append("sport \(r)") }
        if let r = destinationPort { parts.append("dport \(r)") }
        return parts.isEmpty ? "any" : parts.joined(separator: " ")
    }
}

extension Substring {
    /// Without `character` at either end (Foundation-free).
    public func trimming(_ character: Character) -> String {
        var s = self
        while s.first == character { s = s.dropFirst() }
        while s.last == character { s = s.dropLast() }
        return String(s)
    }
}
