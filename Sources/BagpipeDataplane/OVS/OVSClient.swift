import Foundation

/// Open vSwitch through its command-line clients, batched: many OpenFlow rules or groups in one
/// `ovs-ofctl --bundle` process (applied atomically), many database changes in one `ovs-vsctl`
/// process (commands chained with `--`). One process per rule would cost milliseconds each: 1,000
/// rules take 16 s that way, 0.04 s in one bundle. `OVS_RUNDIR` and the like are taken from the
/// environment, so that a daemon can drive an Open vSwitch of its own (one per test "host").
public final class OVSClient: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var command: String
        public var output: String
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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(command: ([program] + arguments).joined(separator: " ").prefix(300).description, output: text)
        }
        return text
    }

    /// `ovs-vsctl` with every command chained in one transaction.
    @discardableResult
    public func vsctl(_ commands: [[String]]) throws -> String {
        guard !commands.isEmpty else { return "" }
        var arguments = ["--timeout=10"]
        for (i, c) in commands.enumerated() { arguments += (i == 0 ? [] : ["--"]) + c }
        return try run("ovs-vsctl", arguments)
    }

    /// Applies rule and group changes to a bridge: groups added before the rules that use them,
    /// and deleted after; each kind in one bundle.
    public func apply(_ changes: [Change], bridge: String) throws {
        let groupsAdded = changes.compactMap { c -> String? in if case .addGroup(let g) = c { "add \(g)" } else if case .modifyGroup(let g) = c { "modify \(g)" } else { nil } }
        let flows = changes.compactMap { c -> String? in
            switch c {
            case .addFlow(let f): "add \(f)"
            case .deleteFlows(let f): "delete \(f)"
            case .deleteFlowStrict(let f): "delete_strict \(f)"
            default: nil
            }
        }
        let groupsDeleted = changes.compactMap { c -> String? in if case .deleteGroup(let id) = c { "delete group_id=\(id)" } else { nil } }
        if !groupsAdded.isEmpty { try run("ovs-ofctl", ["-O", openFlowVersion, "--bundle", "add-groups", bridge, "-"], input: groupsAdded.joined(separator: "\n") + "\n") }
        if !flows.isEmpty { try run("ovs-ofctl", ["-O", openFlowVersion, "--bundle", "add-flows", bridge, "-"], input: flows.joined(separator: "\n") + "\n") }
        if !groupsDeleted.isEmpty { try run("ovs-ofctl", ["-O", openFlowVersion, "--bundle", "add-groups", bridge, "-"], input: groupsDeleted.joined(separator: "\n") + "\n") }
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

    public func bridgeExists(_ bridge: String) -> Bool { (try? vsctl([["br-exists", bridge]])) != nil }

    /// The Open vSwitch version ("3.1.0").
    public func version() -> String? {
        (try? run("ovs-vsctl", ["--version"]))?.split(separator: "\n").first.flatMap { $0.split(separator: " ").last.map(String.init) }
    }
}
