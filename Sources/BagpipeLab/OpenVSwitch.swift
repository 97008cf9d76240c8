import Foundation
import Glibc

/// An Open vSwitch of a test's own (userspace datapath, no kernel module): an ovsdb-server and an
/// ovs-vswitchd running in a network namespace, with their sockets, database and logs in a folder
/// (`OVS_RUNDIR`). `stop()` ends both and removes the folder.
public final class OpenVSwitch: @unchecked Sendable {
    public let directory: String
    public let namespace: String
    public var environment: [String: String] { ["OVS_RUNDIR": directory, "OVS_LOGDIR": directory, "OVS_DBDIR": directory] }

    public static var installed: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/ovs-vswitchd") }

    var server: Daemon?
    var vswitchd: Daemon?

    public init(namespace: String) throws {
        self.namespace = namespace
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-ovs-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try ovs("ovsdb-tool", ["create", "\(directory)/conf.db", "/usr/share/openvswitch/vswitch.ovsschema"])
            server = try daemon("ovsdb-server", ["\(directory)/conf.db", "--remote=punix:\(directory)/db.sock", "--unixctl=\(directory)/ovsdb-server.ctl"], socket: "db.sock")
            try ovs("ovs-vsctl", ["--no-wait", "init"])
            try startSwitch()
        } catch {
            stop()
            throw error
        }
    }

    /// The daemons run in the foreground under our hand: one that detaches keeps the descriptor by
    /// which Foundation sees its child exit, and `waitUntilExit` would never return.
    func daemon(_ program: String, _ arguments: [String], socket: String) throws -> Daemon {
        let started = try Daemon(name: program, executable: "/usr/bin/env",
            arguments: ["ip", "netns", "exec", namespace, program] + arguments + ["--log-file=\(directory)/\(program).log"],
            files: [:], directory: URL(fileURLWithPath: directory).appendingPathComponent("\(program)-\(UUID().uuidString.prefix(4))"), environment: environment)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: "\(directory)/\(socket)") {
            guard started.process.isRunning, Date() < deadline else {
                started.stop()
                throw CommandFailed(command: program, status: -1, output: "did not open \(socket): " + started.log + ((try? String(contentsOfFile: "\(directory)/\(program).log", encoding: .utf8)) ?? ""))
            }
            usleep(10_000)
        }
        return started
    }

    /// Starts ovs-vswitchd (again, after `stopSwitch`: every OpenFlow rule is gone then).
    public func startSwitch() throws {
        vswitchd = try daemon("ovs-vswitchd", ["unix:\(directory)/db.sock", "--unixctl=\(directory)/ovs-vswitchd.ctl"], socket: "ovs-vswitchd.ctl")
    }

    /// Ends ovs-vswitchd as a crash would (SIGKILL): the datapath and every rule go with it.
    public func stopSwitch() {
        if let vswitchd, vswitchd.process.isRunning {
            Glibc.kill(vswitchd.process.processIdentifier, SIGKILL)
            vswitchd.process.waitUntilExit()
        }
        vswitchd?.stop()
        vswitchd = nil
        try? FileManager.default.removeItem(atPath: "\(directory)/ovs-vswitchd.ctl")
    }

    /// Freezes ovsdb-server and ovs-vswitchd (SIGSTOP), as a hung switch: every client call
    /// waits. `resume()` lets them go on where they were.
    public func pause() {
        for d in [server, vswitchd].compactMap({ $0 }) where d.process.isRunning { Glibc.kill(d.process.processIdentifier, SIGSTOP) }
    }

    public func resume() {
        for d in [server, vswitchd].compactMap({ $0 }) where d.process.isRunning { Glibc.kill(d.process.processIdentifier, SIGCONT) }
    }

    /// Runs an Open vSwitch client (or any command) with this switch's environment.
    @discardableResult
    public func ovs(_ program: String, _ arguments: [String]) throws -> String {
        let (status, output) = try runProcess("/usr/bin/env", [program] + arguments, environment: environment)
        guard status == 0 else { throw CommandFailed(command: ([program] + arguments).joined(separator: " "), status: status, output: output) }
        return output
    }

    /// A bridge of the userspace datapath.
    public func addBridge(_ name: String) throws {
        try ovs("ovs-vsctl", ["--timeout=30", "--may-exist", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"])
    }

    /// Rules of a bridge without their statistics.
    public func flows(_ bridge: String, _ match: String = "") throws -> [String] {
        try ovs("ovs-ofctl", ["-O", "OpenFlow15", "--no-stats", "dump-flows", bridge] + (match.isEmpty ? [] : [match])).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("OFPST") && !$0.hasPrefix("NXST") }
    }

    public func stop() {
        resume()
        stopSwitch()
        server?.stop()
        server = nil
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}
