import Foundation
import Glibc
import NIOCore
import NIOPosix

/// A peer daemon started by a test (gobgpd, bgpd, exabgp, bird) in a folder of its own; `stop()` ends it
/// and removes the folder. Tests call `stop()` on every path, also when an expectation fails.
final class Daemon: @unchecked Sendable {
    let directory: URL
    let process = Process()
    let name: String

    init(name: String, executable: String, arguments: [String], files: [String: String], directory: URL? = nil, environment: [String: String] = [:]) throws {
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

    var log: String { (try? String(contentsOf: directory.appendingPathComponent("daemon.log"), encoding: .utf8)) ?? "" }

    func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops the process but keeps its folder, for a restart with the same files. SIGTERM first; a
    /// daemon still there after 3 seconds (bgpd without zebra) gets SIGKILL.
    func kill() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    static func installed(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }
}

/// Runs a command and returns its standard output.
@discardableResult
func shell(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// A TCP port nobody listens on right now.
func freePort(host: String = "127.0.0.1") throws -> Int {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let channel = try ServerBootstrap(group: group).bind(host: host, port: 0).wait()
    let port = channel.localAddress?.port ?? 0
    try channel.close().wait()
    return port
}

import BGPSession
import BGPWire
import Testing

/// The "they connect" check of every interop suite: our speaker listens on 127.0.0.3 (passive), the
/// daemon that `start` launches (given our port) connects from 127.0.0.1, and the session must come up
/// with `families`.
func peerConnectsToUs(families: [AddressFamily], timeout: Double = 20, start: (Int) throws -> Daemon) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let ourPort = try freePort(host: "127.0.0.3")
    let peer = BGPPeer(
        configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 3), families: families, holdTime: 9, active: false),
        remoteAddress: "127.0.0.1", eventLoop: group.next())
    let listener = try await BGPListener.listen(host: "127.0.0.3", port: ourPort, group: group, peers: ["127.0.0.1": peer]).get()
    peer.start()
    var daemon: Daemon? = nil
    do {
        let started = try start(ourPort)
        daemon = started
        let up = try await eventually(timeout: timeout) { try await peer.state().get() == .established }
        #expect(up, "\(started.name) did not connect: \(started.log.suffix(2000))")
        let negotiated = try await peer.negotiated().get()
        #expect(negotiated?.families == families)
    } catch {
        Issue.record("\(error)\n\(daemon?.log.suffix(2000) ?? "")")
    }
    peer.stop()
    daemon?.stop()
    try await listener.close().get()
    try await group.shutdownGracefully()
}

/// The peer shut the session down with Cease / Administrative Shutdown and this RFC 9003 message:
/// we received and decoded it.
func expectShutdownCommunication(_ peer: BGPPeer, _ message: String) async throws {
    let notified = try await eventually { try await peer.currentStatistics().get().lastNotificationReceived?.shutdownCommunication == message }
    let notification = try await peer.currentStatistics().get().lastNotificationReceived
    #expect(notified, "last NOTIFICATION received: \(String(describing: notification))")
    #expect(notification?.code == .cease && notification?.subcode == 2)
}

/// What an interop test owns: an event loop group, the daemon (which the test may restart) and our
/// speakers. `withInterop` stops all of them on every path.
final class Interop {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var daemon: Daemon
    private(set) var speakers: [BGPPeer] = []

    init(daemon: Daemon) { self.daemon = daemon }

    /// Registers one of our speakers to be stopped when the test ends; returns it.
    func own(_ speaker: BGPPeer) -> BGPPeer {
        speakers.append(speaker)
        return speaker
    }
}

/// Starts a daemon and runs an interop scenario against it. Whether `body` returns or throws, our
/// speakers and the daemon are stopped and the group shut down; a thrown error is recorded with the
/// end of the daemon's log.
func withInterop(_ start: () throws -> Daemon, _ body: (Interop) async throws -> Void) async throws {
    let interop = Interop(daemon: try start())
    do {
        try await body(interop)
    } catch {
        Issue.record("\(error)\n\(interop.daemon.name) log:\n\(interop.daemon.log.suffix(3000))")
    }
    for speaker in interop.speakers { speaker.stop() }
    interop.daemon.stop()
    try await interop.group.shutdownGracefully()
}
