import BGPSession
import BGPWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Polls `condition` on the clock until it holds or the deadline passes: synchronization by
/// observation, never by sleeping a fixed time.
func eventually(timeout: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout * 1e9))
    while NIODeadline.now() < deadline {
        if try await condition() { return true }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return try await condition()
}

/// Collects what a peer delivers, from its event loop.
final class Received: @unchecked Sendable {
    private let lock = NIOLock()
    private var _updates: [UpdateMessage] = []
    private var _downs: [String] = []
    var updates: [UpdateMessage] { lock.withLock { _updates } }
    var downs: [String] { lock.withLock { _downs } }
    func add(_ u: UpdateMessage) { lock.withLock { _updates.append(u) } }
    func down(_ r: String) { lock.withLock { _downs.append(r) } }
}

@Suite(.serialized) struct LoopbackSessionTests {
    @Test func twoSpeakersEstablishExchangeRoutesAndStop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do { try await exchange(group) } catch { Issue.record("\(error)") }
        try await group.shutdownGracefully()
    }

    func exchange(_ group: MultiThreadedEventLoopGroup) async throws {
        let families: [AddressFamily] = [.ipv4VPN, .evpn, .routeTargetConstraint]
        let listenerSide = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 1), families: families, holdTime: 9, active: false),
            remoteAddress: "127.0.0.2", eventLoop: group.next())
        let received = Received()
        listenerSide.onUpdate = { received.add($0) }
        listenerSide.onDown = { received.down($0) }
        let listener = try await BGPListener.listen(host: "127.0.0.1", port: 0, group: group, peers: ["127.0.0.2": listenerSide]).get()
        let port = try #require(listener.port)

        let connecting = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 2), families: families, holdTime: 9),
            remoteAddress: "127.0.0.1", remotePort: port, localAddress: "127.0.0.2", eventLoop: group.next())
        listenerSide.start()
        connecting.start()
        let up = try await eventually {
            let a = try await connecting.state().get()
            let b = try await listenerSide.state().get()
            return a == .established && b == .established
        }
        #expect(up)
        let session = try #require(try await connecting.negotiated().get())
        #expect(session.families == families)
        #expect(session.holdTime == 9)

        // 1000 VPNv4 routes packed into few UPDATEs.
        var routes: [NLRIElement] = []
        for i in 0..<1000 {
            let prefix = IPPrefix(.v4(IPv4Address(10, 0, UInt8(i >> 8), UInt8(i & 255))), length: 32)
            let vpn = VPNPrefix(labels: MPLSLabelStack(labels: [UInt32(100 + i)]), routeDistinguisher: .as2(64512, UInt32(i)), prefix: prefix)
            routes.append(NLRIElement(.vpnPrefix(vpn)))
        }
        let updates = UpdateBuilder(context: session.sendContext).announce(
            routes, family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 2))),
            attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100)), PathAttribute(.extendedCommunities([.routeTarget(as: 64512, 1)]))])
        #expect(updates.count < 30)
        try await connecting.send(updates: updates).get()
        let all = try await eventually { received.updates.flatMap(\.announced).reduce(0) { $0 + $1.count } == 1000 }
        #expect(all)
        let got = received.updates.flatMap(\.announced).flatMap(\.elements)
        #expect(got == routes)

        // Keepalives hold the session past several hold times' worth of... a few seconds of quiet.
        let stats = try await listenerSide.currentStatistics().get()
        #expect(stats.messagesReceived["update"] == updates.count)

        connecting.stop()
        let down = try await eventually { !received.downs.isEmpty }
        #expect(down)
        let lastReceived = try await listenerSide.currentStatistics().get().lastNotificationReceived
        #expect(lastReceived == NotificationMessage(code: .cease, subcode: 2))
        try await listener.close().get()
    }

    @Test func unknownPeersAreClosed() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do { try await stranger(group) } catch { Issue.record("\(error)") }
        try await group.shutdownGracefully()
    }

    func stranger(_ group: MultiThreadedEventLoopGroup) async throws {
        let listener = try await BGPListener.listen(host: "127.0.0.1", port: 0, group: group, peers: [:]).get()
        let stranger = BGPPeer(
            configuration: SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, 9), families: [.ipv4VPN], holdTime: 9, connectRetryTime: 1),
            remoteAddress: "127.0.0.1", remotePort: try #require(listener.port), eventLoop: group.next())
        stranger.start()
        // It connects, is closed at once, and never gets past OpenSent.
        let tried = try await eventually(timeout: 3) { try await stranger.currentStatistics().get().messagesSent["open", default: 0] >= 1 }
        #expect(tried)
        let state = try await stranger.state().get()
        #expect(state != .established)
        stranger.stop()
        try await listener.close().get()
    }
}
