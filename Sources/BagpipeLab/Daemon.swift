import Foundation
import Glibc
import NIOCore
import NIOPosix

/// A peer daemon started by a test (gobgpd, bgpd, exabgp, bird) in a folder of its own; `stop()` ends it
/// and removes the folder. Tests call `stop()` on every path, also when an expectation fails.
public final class Daemon: @unchecked Sendable {
    public let directory: URL
    public let process = Process()
    public let name: String

    public init(name: String, executable: String, arguments: [String], files: [String: String], directory: URL? = nil, environment: [String: String] = [:]) throws {
        self.name = name
        self.directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let directory = self.directory
        for (file, text) in files { try text.write(to: directory.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments.map { $0.replacingOccurrences(of: "$DIR", with: directory.path) }
        process.currentDirectoryURL = directory
        let log = FileManager.default.createFile(atPath: directory.appendingPathComponent("daemon.log").path, contents: nil)
        _ = log
        let handle = try FileHandle(forWritingTo: directory.appendingPathComponent("daemon.log"))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("daemon.log"), encoding: .utf8)) ?? "" }

    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops the process but keeps its folder, for a restart with the same files. SIGTERM first; a
    /// daemon still there after 3 seconds (bgpd without zebra) gets SIGKILL.
    public func kill() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    public static func installed(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }
}

/// Runs a command and returns its standard output, with its standard error unless
/// `includingStandardError` is false (a tool whose output is parsed, and whose stderr has warnings).
@discardableResult
public func shell(_ executable: String, _ arguments: [String], includingStandardError: Bool = true) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = includingStandardError ? pipe : FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// The built executables, beside the test bundle.
public func builtProduct(_ name: String) -> String {
    let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [here, here.deletingLastPathComponent()] where FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent(name).path) {
        return candidate.appendingPathComponent(name).path
    }
    return here.appendingPathComponent(name).path
}

/// A TCP port nobody listens on right now.
public func freePort(host: String = "127.0.0.1") throws -> Int {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let channel = try ServerBootstrap(group: group).bind(host: host, port: 0).wait()
    let port = channel.localAddress?.port ?? 0
    try channel.close().wait()
    return port
}


/// Polls `condition` on the clock until it holds or the deadline passes: synchronization by
/// observation, never by sleeping a fixed time.
public func eventually(timeout: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout * 1e9))
    while NIODeadline.now() < deadline {
        if try await condition() { return true }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return try await condition()
}

/// Polls a command until its output satisfies `condition` and returns that output; throws
/// `PollTimeout` (with the last output) when the deadline passes first.
public func poll(timeout: Double = 10, _ command: () throws -> String, until condition: (String) -> Bool) async throws -> String {
    var output = ""
    let held = try await eventually(timeout: timeout) {
        output = try command()
        return condition(output)
    }
    guard held else { throw PollTimeout(seconds: timeout, lastOutput: output) }
    return output
}

public struct PollTimeout: Error, CustomStringConvertible {
    public var seconds: Double
    public var lastOutput: String
    public var description: String { "condition not met within \(seconds) s; last output:\n\(lastOutput.prefix(3000))" }
}
