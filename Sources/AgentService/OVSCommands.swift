import Foundation
import ProgramRunner
import NeutronModel

/// `ovs-vsctl` and `ovs-ofctl` as the agent uses them: several commands in one transaction, the
/// Interface and Port tables as JSON, and the rules of one cookie replaced as a whole. Blocking: the
/// caller runs it off the agent's executor.
struct OVSCommands: Sendable {
    /// `[ovs] ovsdb_connection` (`unix:<socket>` or `tcp:<IP>:<port>`).
    let database: String
    /// OVS_RUNDIR and the like (a switch of a test's namespace); empty in production.
    let environment: [String: String]

    @discardableResult
    func run(_ program: String, _ arguments: [String], input: String? = nil) throws -> String {
        try runProgram(program, arguments, environment: environment, input: input)
    }

    /// Runs `ovsdb-client monitor` until it ends, calling `changed` for each line it prints.
    func monitor(table: String, columns: [String], changed: () -> Void) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ovsdb-client", "monitor", "--format=json", database, "Open_vSwitch", table, columns.joined(separator: ",")]
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return }
        let reader = output.fileHandleForReading
        while true {
            let data = reader.availableData
            if data.isEmpty { break }
            for byte in data where byte == UInt8(ascii: "\n") { changed() }
        }
        process.waitUntilExit()
    }

    /// One `ovs-vsctl` transaction of every command.
    @discardableResult
    func vsctl(_ commands: [[String]], json: Bool = false) throws -> String {
        try run("ovs-vsctl", ["--db=\(database)", "--timeout=10"] + (json ? ["--format=json"] : []) + commands.flatMap { ["--"] + $0 })
    }

    /// OpenFlow port numbers of interfaces (-1 or absent: not there yet).
    func ofports(_ names: [String]) throws -> [String: Int] {
        let doc = try JSON.parse(try vsctl([["--columns=name,ofport", "list", "Interface"] + names], json: true))
        var out: [String: Int] = [:]
        for row in doc["data"]?.arrayValue ?? [] {
            guard let cells = row.arrayValue, cells.count == 2, let name = cells[0].stringValue, case .int(let n) = cells[1] else { continue }
            out[name] = Int(n)
        }
        return out
    }

    /// An interface of a bridge with what os-vif and the agent wrote on it.
    struct Interface: Equatable {
        var name: String
        var ofport: Int
        var ifaceID: String?
        var attachedMAC: String?
        var tag: Int?
        /// `other_config:net_uuid` of its port: the network the agent tagged it for.
        var network: String?
    }

    /// The interfaces of a bridge's ports, in one transaction.
    func interfaces(bridge: String) throws -> [Interface] {
        let out = try vsctl([
            ["--columns=name,ofport,external_ids", "list", "Interface"], ["--columns=name,tag,other_config", "list", "Port"], ["list-ports", bridge],
        ], json: true)
        // Two JSON documents, then one port name per line.
        let lines = out.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count >= 2 else { return [] }
        let onBridge = Set(lines.dropFirst(2).map { String($0).trimmingCharacters(in: .whitespaces) })
        var ports: [String: (tag: Int?, network: String?)] = [:]
        for row in try JSON.parse(String(lines[1]))["data"]?.arrayValue ?? [] {
            guard let cells = row.arrayValue, cells.count == 3, let name = cells[0].stringValue else { continue }
            let tag: Int? = if case .int(let t) = cells[1] { Int(t) } else { nil }
            ports[name] = (tag, Self.map(cells[2])["net_uuid"])
        }
        var result: [Interface] = []
        for row in try JSON.parse(String(lines[0]))["data"]?.arrayValue ?? [] {
            guard let cells = row.arrayValue, cells.count == 3, let name = cells[0].stringValue, onBridge.contains(name) else { continue }
            let ofport: Int = if case .int(let n) = cells[1] { Int(n) } else { -1 }
            let ids = Self.map(cells[2])
            result.append(Interface(name: name, ofport: ofport, ifaceID: ids["iface-id"], attachedMAC: ids["attached-mac"], tag: ports[name]?.tag, network: ports[name]?.network))
        }
        return result
    }

    /// OVSDB's `["map", [[k, v], …]]`.
    static func map(_ v: JSON) -> [String: String] {
        guard let a = v.arrayValue, a.count == 2, a[0].stringValue == "map", let pairs = a[1].arrayValue else { return [:] }
        var out: [String: String] = [:]
        for p in pairs { if let kv = p.arrayValue, kv.count == 2, let k = kv[0].stringValue, let val = kv[1].stringValue { out[k] = val } }
        return out
    }

    /// How many rules of `cookie` a bridge has.
    func flowCount(bridge: String, cookie: UInt64) throws -> Int {
        try run("ovs-ofctl", ["-O", "OpenFlow15", "--no-stats", "dump-flows", bridge, "cookie=\(cookie)/-1"]).split(separator: "\n").filter { $0.contains("cookie=") }.count
    }

    /// The rules of `cookie` on `bridge` become `flows`, in one `ovs-ofctl` bundle.
    func replaceFlows(bridge: String, cookie: UInt64, _ flows: [String]) throws {
        let text = (["delete cookie=\(cookie)/-1"] + flows.map { "add \($0)" }).joined(separator: "\n") + "\n"
        try run("ovs-ofctl", ["-O", "OpenFlow15", "--bundle", "add-flows", bridge, "-"], input: text)
    }
}
