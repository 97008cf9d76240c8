import Foundation
import ProgramRunner

/// Open vSwitch through its command-line clients, batched: many OpenFlow rules or groups in one
/// `ovs-ofctl --bundle` process (applied atomically), many database changes in one `ovs-vsctl`
/// process (commands chained with `--`). One process per rule would cost milliseconds each: 1,000
/// rules take 16 s that way, 0.04 s in one bundle. `OVS_RUNDIR` and the like are taken from the
/// environment, so that a daemon can drive an Open vSwitch of its own (one per test "host").
public final class OVSClient: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var command: String
        public var output: String
        public var status: Int32 = 1
        public var description: String { "\(command): \(output.trimmingCharacters(in: .whitespacesAndNewlines))" }
    }

    /// One change of a bridge's OpenFlow state: its rules (`add`, `delete`, `delete_strict`) or
    /// groups (`add`, `mod`, `delete`).
    public enum Change: Sendable, Hashable {
        case addFlow(String)
        case deleteFlows(String)
        case deleteFlowStrict(String)
        case addGroup(String)
        case modifyGroup(String)
        case deleteGroup(UInt32)
    }

    public let openFlowVersion = "OpenFlow15"
    /// Added to the clients' environment (`OVS_RUNDIR` of another Open vSwitch, in tests).
    let environment: [String: String]

    public init(environment: [String: String] = [:]) { self.environment = environment }

    /// Runs a client program; its output, or a `Failure` with its output.
    @discardableResult
    func run(_ program: String, _ arguments: [String], input: String? = nil) throws -> String {
        do {
            return try runProgram(program, arguments, environment: environment, input: input, mergingStandardError: true)
        } catch let f as ProgramFailure {
            throw Failure(command: f.command, output: f.output, status: f.status)
        }
    }

    /// `ovs-vsctl` with every command chained in one transaction.
    @discardableResult
    public func vsctl(_ commands: [[String]]) throws -> String {
        guard !commands.isEmpty else { return "" }
        var arguments = ["--timeout=10"]
        for (i, c) in commands.enumerated() { arguments += (i == 0 ? [] : ["--"]) + c }
        return try run("ovs-vsctl", arguments)
    }

    /// Changes queued per bridge (in order) until `flush`.
    private var queued: [(bridge: String, change: Change)] = []

    /// Queues changes, applied at the next `flush` (or before the next `apply`): a burst of routes
    /// costs one `ovs-ofctl` process per kind of change instead of one per route.
    public func queue(_ changes: [Change], bridge: String) {
        queued += changes.map { (bridge, $0) }
    }

    public var hasQueuedChanges: Bool { !queued.isEmpty }

    /// Applies the queued changes, bridge by bridge. A bundle refused as a whole (one bad line)
    /// is applied again line by line, so that only the bad lines are lost; they are thrown.
    public func flush() throws {
        let changes = queued
        queued = []
        var failures: [Failure] = []
        var bridges: [String] = []
        for (bridge, _) in changes where !bridges.contains(bridge) { bridges.append(bridge) }
        for bridge in bridges {
            let phases = Self.phases(changes.filter { $0.bridge == bridge }.map(\.change))
            for (command, lines) in [("add-groups", phases.groupsFirst), ("add-flows", phases.flows), ("add-groups", phases.groupsLast)] where !lines.isEmpty {
                do {
                    try run("ovs-ofctl", ["-O", openFlowVersion, "--bundle", command, bridge, "-"], input: lines.joined(separator: "\n") + "\n")
                } catch {
                    for line in lines {
                        do { try run("ovs-ofctl", ["-O", openFlowVersion, "--bundle", command, bridge, "-"], input: line + "\n") } catch let f as Failure { failures.append(f) }
                    }
                }
            }
        }
        if !failures.isEmpty {
            throw Failure(command: "ovs-ofctl (\(failures.count) of \(changes.count) changes refused)", output: failures.prefix(5).map(\.description).joined(separator: "; "))
        }
    }

    /// Applies changes now (after what was queued, to keep the order): groups added or modified
    /// before the rules that use them, and deleted after; each kind in one bundle.
    public func apply(_ changes: [Change], bridge: String) throws {
        queue(changes, bridge: bridge)
        try flush()
    }

    /// Bundle lines of a bridge's changes in three phases. A group's changes are merged into its
    /// last content (added, or modified when the first change of the batch shows it existed), and
    /// deleted at the end when that is where it ends: rules added in between may use it. An add is
    /// `add_or_mod`: after a restart that kept forwarding, the group is still there, in use.
    public static func phases(_ changes: [Change]) -> (groupsFirst: [String], flows: [String], groupsLast: [String]) {
        var order: [UInt32] = []
        var existed: [UInt32: Bool] = [:]
        var content: [UInt32: String] = [:]
        var present: [UInt32: Bool] = [:]
        var flows: [String] = []
        func id(_ group: String) -> UInt32 {
            UInt32(group.split(separator: ",").first { $0.hasPrefix("group_id=") }?.dropFirst(9) ?? "") ?? UInt32.max
        }
        func touch(_ g: UInt32, existedBefore: Bool) {
            if existed[g] == nil {
                existed[g] = existedBefore
                order.append(g)
            }
        }
        for change in changes {
            switch change {
            case .addFlow(let f): flows.append("add \(f)")
            case .deleteFlows(let f): flows.append("delete \(f)")
            case .deleteFlowStrict(let f): flows.append("delete_strict \(f)")
            case .addGroup(let g):
                touch(id(g), existedBefore: false)
                (content[id(g)], present[id(g)]) = (g, true)
            case .modifyGroup(let g):
                touch(id(g), existedBefore: true)
                (content[id(g)], present[id(g)]) = (g, true)
            case .deleteGroup(let g):
                touch(g, existedBefore: true)
                present[g] = false
            }
        }
        var first: [String] = []
        var last: [String] = []
        for g in order {
            if let text = content[g] { first.append("\(existed[g] == true ? "modify" : "add_or_mod") \(text)") }
            if present[g] == false, existed[g] == true || content[g] != nil { last.append("delete group_id=\(g)") }
        }
        return (first, flows, last)
    }

    /// The rules of a bridge (of one table, of one cookie when given), as `ovs-ofctl dump-flows`
    /// prints them without their statistics.
    public func flows(bridge: String, match: String? = nil) throws -> [String] {
        let text = try run("ovs-ofctl", ["-O", openFlowVersion, "--no-stats", "dump-flows", bridge] + (match.map { [$0] } ?? []))
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("OFPST") && !$0.hasPrefix("NXST") }
    }

    public func groups(bridge: String) throws -> [String] {
        let text = try run("ovs-ofctl", ["-O", openFlowVersion, "dump-groups", bridge])
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("group_id=") }
    }

    /// A port's OpenFlow number (nil when it is not on a bridge).
    public func ofport(_ port: String) throws -> Int? {
        guard let text = try? vsctl([["get", "Interface", port, "ofport"]]), let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), n > 0 else { return nil }
        return n
    }

    /// Whether the bridge exists; throws when Open vSwitch does not answer (`br-exists` exits with 2
    /// for a missing bridge, 1 for a failure).
    public func bridgeExists(_ bridge: String) throws -> Bool {
        do {
            try vsctl([["br-exists", bridge]])
            return true
        } catch let failure as Failure where failure.status == 2 {
            return false
        }
    }

    /// The Open vSwitch version ("3.1.0").
    public func version() -> String? {
        (try? run("ovs-vsctl", ["--version"]))?.split(separator: "\n").first.flatMap { $0.split(separator: " ").last.map(String.init) }
    }
}

extension OVSClient {
    /// The canary: one rule of ours, alone in a table nobody uses. Open vSwitch forgets every rule
    /// when ovs-vswitchd restarts (and an agent may wipe a bridge); the canary missing says so.
    public static let canaryTable = 253

    static func canaryRule(cookie: UInt64) -> Change { .addFlow("table=\(canaryTable),priority=0,cookie=\(cookie) actions=drop") }
    static func deleteCanary(cookie: UInt64) -> Change { .deleteFlows("table=\(canaryTable),cookie=\(cookie)/-1") }

    /// Whether the bridge still has our canary; throws when the switch does not answer.
    func hasCanary(bridge: String, cookie: UInt64) throws -> Bool {
        try !flows(bridge: bridge, match: "table=\(Self.canaryTable),cookie=\(cookie)/-1").isEmpty
    }
}

extension OVSClient {
    /// The start-up check of an `ovs` driver: Open vSwitch answers and has the bridge.
    func requireBridge(_ bridge: String, section: String, role: String) throws {
        let exists: Bool
        do {
            exists = try bridgeExists(bridge)
        } catch {
            throw DataplaneDrivers.Unavailable(description: "[\(section)] dataplane_driver = ovs: Open vSwitch does not answer (is ovsdb-server running?): \(error)")
        }
        guard exists else { throw DataplaneDrivers.Unavailable(description: "[\(section)] ovs_bridge = \(bridge): no such Open vSwitch bridge (it must exist: \(role))") }
    }
}

