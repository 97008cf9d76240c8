import BagpipeLab
import NIOPosix
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
