import Foundation
import Logging

/// Reading a bridge's state back, for a restart that keeps forwarding (`adoptState`, then
/// `sweepStale`) and for the consistency check (`differences`).
extension OVSClient {
    /// A rule as `ovs-ofctl dump-flows` prints it, with its statistics.
    public struct DumpedFlow: Sendable, Equatable {
        public var cookie: UInt64
        public var table: Int
        /// Seconds since the rule was added. An `add` of the same match and priority replaces the
        /// rule and starts this again, which is how a restart tells rules installed again from
        /// those of the earlier run (no `mod-flows`: that keeps the time).
        public var duration: Double
        /// The priority and match ("priority=5,dl_vlan=7,dl_dst=…"), as Open vSwitch prints them.
        public var match: String
        public var actions: String

        /// What `delete_strict` needs to remove exactly this rule.
        public var strictMatch: String { "table=\(table)" + (match.isEmpty ? "" : ",\(match)") }

        /// The group its actions send to, if any.
        public var group: UInt32? { Self.number(after: "group:", in: actions) }
        /// The port it matches, if any (numbers: dump-flows prints names only to a terminal).
        public var inPort: Int? { Self.number(after: "in_port=", in: match).map(Int.init) }

        static func number(after key: String, in text: String) -> UInt32? {
            guard let r = text.range(of: key) else { return nil }
            return UInt32(text[r.upperBound...].prefix { $0.isNumber })
        }

        static let statistics: Set<String> = [
            "cookie", "duration", "table", "n_packets", "n_bytes", "idle_age", "hard_age", "idle_timeout", "hard_timeout", "importance",
            "reset_counts", "send_flow_rem", "no_packet_counts", "no_byte_counts", "check_overlap",
        ]

        /// Parses one line (" cookie=0x…, duration=1.2s, table=20, n_packets=0, …, priority=5,… actions=…").
        public init?(_ line: some StringProtocol) {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard let split = text.range(of: "actions=") else { return nil }
            actions = String(text[split.upperBound...])
            (cookie, table, duration, match) = (0, 0, 0, "")
            for field in text[..<split.lowerBound].split(separator: " ") {
                let field = field.trimmingCharacters(in: CharacterSet(charactersIn: ","))
                let key = field.split(separator: "=", maxSplits: 1).first.map(String.init) ?? field
                let value = field.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
                guard Self.statistics.contains(key) else {
                    match = field
                    continue
                }
                switch key {
                case "cookie": cookie = UInt64(value.hasPrefix("0x") ? String(value.dropFirst(2)) : value, radix: 16) ?? 0
                case "table": table = Int(value) ?? 0
                case "duration": duration = Double(value.hasSuffix("s") ? String(value.dropLast()) : value) ?? 0
                default: break
                }
            }
        }
    }

    /// The rules of a bridge whose cookie has the high 32 bits of `cookie`, with their statistics.
    public func dumpedFlows(bridge: String, cookie: UInt64) throws -> [DumpedFlow] {
        let text = try run("ovs-ofctl", ["-O", openFlowVersion, "dump-flows", bridge, "cookie=0x\(String(cookie, radix: 16))/0xffffffff00000000"])
        return text.split(separator: "\n").compactMap(DumpedFlow.init)
    }

    /// Rules of `cookie`'s driver that were not added since `since`: left by an earlier run.
    public func flows(bridge: String, cookie: UInt64, olderThan since: ContinuousClock.Instant) throws -> [DumpedFlow] {
        let elapsed = since.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // Open vSwitch prints milliseconds; a rule added before `since` is older by more than that.
        return try dumpedFlows(bridge: bridge, cookie: cookie).filter { $0.duration > seconds + 0.002 }
    }

    /// The ids of a bridge's groups.
    public func groupIDs(bridge: String) throws -> [UInt32] {
        try groups(bridge: bridge).compactMap { DumpedFlow.number(after: "group_id=", in: $0) }
    }

    /// Interface names by OpenFlow port number (of every bridge: the numbers are per bridge, so
    /// the caller asks for those of its own).
    public func portNames(bridge: String) throws -> [Int: String] {
        let text = try run("ovs-ofctl", ["-O", openFlowVersion, "dump-ports-desc", bridge])
        // " 3(vxlan-c0000202): addr:…"
        var names: [Int: String] = [:]
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard let open = t.firstIndex(of: "("), let close = t.firstIndex(of: ")"), let n = Int(t[..<open]) else { continue }
            names[n] = String(t[t.index(after: open)..<close])
        }
        return names
    }

    /// Where a bridge's rules of one driver (the high 32 bits of `cookie`) differ from `wanted`
    /// (add-flow lines): Open vSwitch's own `diff-flows` compares them, its parser normalizing both
    /// sides. Rules are compared by table, priority and match: the same actions print differently
    /// once the switch has translated them (`mod_vlan_vid` becomes `set_field`), so a rule whose
    /// actions alone differ is not reported.
    public func differences(bridge: String, cookie: UInt64, wanted: [String]) throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-wanted-\(UUID().uuidString.prefix(8)).flows")
        try (wanted.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let text: String
        do {
            text = try run("ovs-ofctl", ["-O", openFlowVersion, "diff-flows", bridge, file.path])
        } catch let failure as Failure where failure.status == 2 {
            // diff-flows exits with 2 when it found differences.
            text = failure.output
        }
        let ours = "cookie=0x" + String(cookie >> 32, radix: 16)
        var extra: [String] = [], missing: [String] = []
        for line in text.split(separator: "\n") where line.contains(ours) {
            guard let r = line.range(of: " cookie=") else { continue }
            let key = line[line.index(after: line.startIndex)..<r.lowerBound].replacingOccurrences(of: " ", with: ",")
            if line.hasPrefix("-") { extra.append(key) } else if line.hasPrefix("+") { missing.append(key) }
        }
        let both = Set(extra).intersection(missing)
        return extra.filter { !both.contains($0) }.map { "extra rule \($0)" } + missing.filter { !both.contains($0) }.map { "missing rule \($0)" }
    }

    /// A driver's consistency check: its rules (by match) and groups against those it holds.
    func differences(bridge: String, cookie: UInt64, wanted: [Change], groups: Set<UInt32>, groupName: String) -> [String] {
        do {
            let lines = wanted.compactMap { if case .addFlow(let f) = $0 { f } else { nil } }
            let present = Set(try groupIDs(bridge: bridge))
            return try differences(bridge: bridge, cookie: cookie, wanted: lines)
                + present.subtracting(groups).sorted().map { "extra \(groupName) \($0)" } + groups.subtracting(present).sorted().map { "missing \(groupName) \($0)" }
        } catch {
            return ["\(bridge) could not be read: \(error)"]
        }
    }

    /// After a restart: removes the earlier run's rules and the groups only they used, logs it,
    /// and returns what went.
    func removeStale(_ stale: [DumpedFlow], groups: [UInt32], groupName: String, bridge: String, logger: Logger) throws -> [String] {
        try apply(stale.map { .deleteFlowStrict($0.strictMatch) } + groups.map { .deleteGroup($0) }, bridge: bridge)
        let removed = stale.map { "rule \($0.strictMatch)" } + groups.map { "\(groupName) \($0)" }
        if !removed.isEmpty { logger.notice("restart over: removed from \(bridge) what no route or port accounts for: \(removed.joined(separator: "; "))") }
        return removed
    }
}
