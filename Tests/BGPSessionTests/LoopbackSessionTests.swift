import BGPSession
import BagpipeLab
import BGPWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Collects what a peer delivers, from its event loop.
final class Received: @unchecked Sendable {
    private let lock = NIOLock()
    let lock2 = NIOLock()
    var _endOfRIBs: [AddressFamily] = []
    var _refreshes: [RouteRefreshMessage] = []
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

        // The routes also sit in the listener's Adj-RIB-In, sharing one attribute set.
        let counts = try await listenerSide.receivedCounts().get()
        #expect(counts[.ipv4VPN] == 1000)

        connecting.stop()
        let down = try await eventually { !received.downs.isEmpty }
        #expect(down)
        let lastReceived = try await listenerSide.currentStatistics().get().lastNotificationReceived
        #expect(lastReceived == NotificationMessage(code: .cease, subcode: 2))
        // A session that ended with a NOTIFICATION takes the peer's routes with it.
        let after = try await listenerSide.receivedCounts().get()
        #expect(after.values.allSatisfy { $0 == 0 })
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

/// A pair of our speakers on loopback, for the RIB behaviours.
struct Pair {
    let group: MultiThreadedEventLoopGroup
    let listener: BGPListener
    let server: BGPPeer
    let client: BGPPeer
    let serverEvents = Received()

    static func make(server serverConfig: SessionConfiguration, client clientConfig: SessionConfiguration) async throws -> Pair {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = BGPPeer(configuration: serverConfig, remoteAddress: "127.0.0.2", eventLoop: group.next())
        let listener = try await BGPListener.listen(host: "127.0.0.1", port: 0, group: group, peers: ["127.0.0.2": server]).get()
        let client = BGPPeer(configuration: clientConfig, remoteAddress: "127.0.0.1", remotePort: listener.port ?? 0, localAddress: "127.0.0.2", eventLoop: group.next())
        let pair = Pair(group: group, listener: listener, server: server, client: client)
        server.onEndOfRIB = { family in pair.serverEvents.endOfRIB(family) }
        server.onRouteRefresh = { refresh in pair.serverEvents.refresh(refresh) }
        server.onDown = { pair.serverEvents.down($0) }
        return pair
    }

    /// Starts both speakers; true once both sessions are Established.
    func start() async throws -> Bool {
        server.start()
        client.start()
        return try await eventually {
            let a = try await client.state().get()
            let b = try await server.state().get()
            return a == .established && b == .established
        }
    }

    /// The client announces VPNv4 routes with its own address as next hop.
    func clientAnnounces(_ routes: [NLRIElement], extraAttributes: [PathAttribute] = []) {
        client.announce(routes, family: .ipv4VPN, nextHop: clientNextHop, attributes: baseAttributes + extraAttributes)
    }

    func close() async throws {
        client.stop()
        server.stop()
        try await listener.close().get()
        try await group.shutdownGracefully()
    }
}

func vpnRoutes(_ n: Int, label: UInt32 = 100) -> [NLRIElement] {
    (0..<n).map { i in
        let prefix = IPPrefix(.v4(IPv4Address(10, 1, UInt8(i >> 8), UInt8(i & 255))), length: 32)
        return NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [label]), routeDistinguisher: .as2(64512, UInt32(i)), prefix: prefix)))
    }
}

let baseAttributes = [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))]
/// The address of `speaker(2, …)`, next hop of the routes it announces.
let clientNextHop = NextHop.forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 2)))

func speaker(_ id: UInt8, active: Bool, maxPrefixes: [AddressFamily: Int] = [:], gracefulRestart: UInt16? = nil) -> SessionConfiguration {
    var c = SessionConfiguration(
        localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, id), families: [.ipv4VPN, .evpn, .routeTargetConstraint], holdTime: 9,
        active: active, connectRetryTime: 1, connectRetryMaximum: 2, gracefulRestartTime: gracefulRestart)
    c.maxPrefixes = maxPrefixes
    c.maxPrefixRestartTime = 1
    return c
}

@Suite(.serialized) struct AdjRIBSessionTests {
    @Test func endOfRIBWithdrawRefreshAndReplacement() async throws {
        let pair = try await Pair.make(server: speaker(1, active: false), client: speaker(2, active: true))
        do {
            // Routes announced before the session exists go out when it comes up, then End-of-RIB.
            pair.clientAnnounces(vpnRoutes(300))
            #expect(try await pair.start())
            let eor = try await eventually { Set(pair.serverEvents.endOfRIBs) == [.ipv4VPN, .evpn, .routeTargetConstraint] }
            #expect(eor)
            #expect(try await pair.server.receivedCounts().get()[.ipv4VPN] == 300)

            // Replacement: same keys, new label and attributes; still 300 routes.
            pair.clientAnnounces(vpnRoutes(300, label: 200), extraAttributes: [PathAttribute(.multiExitDiscriminator(5))])
            let replaced = try await eventually {
                try await pair.server.receivedRoutes(.ipv4VPN).get().allSatisfy { entry in
                    if case .vpnPrefix(let p) = entry.element.nlri { return p.labels.labels == [200] } else { return false }
                }
            }
            #expect(replaced)
            #expect(try await pair.server.receivedCounts().get()[.ipv4VPN] == 300)

            // Withdraw half.
            pair.client.withdraw(Array(vpnRoutes(300).prefix(150)), family: .ipv4VPN)
            let halved = try await eventually { try await pair.server.receivedCounts().get()[.ipv4VPN] == 150 }
            #expect(halved)

            // Route refresh: the client sends its table again, between BoRR and EoRR.
            pair.server.requestRefresh(.ipv4VPN)
            let bracketed = try await eventually {
                pair.serverEvents.refreshes.map(\.subtype) == [.beginningOfRouteRefresh, .endOfRouteRefresh]
            }
            #expect(bracketed, "\(pair.serverEvents.refreshes)")
            // BoRR and EoRR are counted as ROUTE-REFRESH messages, not as UPDATEs.
            #expect(try await pair.client.currentStatistics().get().messagesSent["route-refresh"] == 2)
            #expect(try await pair.server.receivedCounts().get()[.ipv4VPN] == 150)
        } catch { Issue.record("\(error)") }
        try await pair.close()
    }

    @Test func maximumPrefixStopsWithCeaseAndRestarts() async throws {
        let pair = try await Pair.make(server: speaker(1, active: false, maxPrefixes: [.ipv4VPN: 100]), client: speaker(2, active: true))
        do {
            #expect(try await pair.start())
            pair.clientAnnounces(vpnRoutes(101))
            let stopped = try await eventually { try await pair.client.currentStatistics().get().lastNotificationReceived?.subcode == 1 }
            #expect(stopped)
            let notification = try #require(try await pair.client.currentStatistics().get().lastNotificationReceived)
            #expect(notification.code == .cease)
            #expect(notification.data == [0, 1, 128, 0, 0, 0, 100])  // AFI 1, SAFI 128, limit 100 (RFC 4486)
            // The server restarts the session by itself after the configured time.
            let downs = pair.serverEvents.downs.count
            #expect(downs >= 1)
            let restarted = try await eventually { try await pair.server.currentStatistics().get().messagesSent["open", default: 0] >= 2 }
            #expect(restarted)
        } catch { Issue.record("\(error)") }
        try await pair.close()
    }

    @Test func gracefulRestartHelperKeepsStaleRoutesUntilEndOfRIB() async throws {
        // The client offers graceful restart; the server is its helper.
        let pair = try await Pair.make(server: speaker(1, active: false), client: speaker(2, active: true, gracefulRestart: 30))
        do {
            pair.clientAnnounces(vpnRoutes(10))
            #expect(try await pair.start())
            let all = try await eventually { try await pair.server.receivedCounts().get()[.ipv4VPN] == 10 }
            #expect(all)

            // The client "crashes": the connection drops without a NOTIFICATION. The server keeps its routes.
            pair.client.abort()
            pair.client.stop()
            let down = try await eventually { try await pair.server.state().get() != .established }
            #expect(down)
            #expect(try await pair.server.receivedRoutes(.ipv4VPN).get().filter(\.stale).count == 10)

            // It comes back restarting (R and F bits) and advertises only half, then End-of-RIB.
            var restarted = speaker(2, active: true, gracefulRestart: 30)
            restarted.gracefulRestartRestarting = true
            let again = BGPPeer(configuration: restarted, remoteAddress: "127.0.0.1", remotePort: pair.listener.port ?? 0, localAddress: "127.0.0.2", eventLoop: pair.group.next())
            again.announce(Array(vpnRoutes(10).prefix(5)), family: .ipv4VPN, nextHop: clientNextHop, attributes: baseAttributes)
            again.start()
            let swept = try await eventually {
                let routes = try await pair.server.receivedRoutes(.ipv4VPN).get()
                return routes.count == 5 && routes.allSatisfy { !$0.stale }
            }
            #expect(swept, "after End-of-RIB exactly the re-advertised routes remain")
            again.stop()
        } catch { Issue.record("\(error)") }
        try await pair.close()
    }

    @Test func aCeaseEndsTheSessionAndItsRoutes() async throws {
        let pair = try await Pair.make(server: speaker(1, active: false), client: speaker(2, active: true, gracefulRestart: 30))
        do {
            pair.clientAnnounces(vpnRoutes(10))
            #expect(try await pair.start())
            _ = try await eventually { try await pair.server.receivedCounts().get()[.ipv4VPN] == 10 }
            pair.client.stop()
            let gone = try await eventually { (try await pair.server.receivedCounts().get()[.ipv4VPN] ?? 0) == 0 }
            #expect(gone, "a Cease NOTIFICATION is not a graceful restart: the routes go")
        } catch { Issue.record("\(error)") }
        try await pair.close()
    }
}

extension Received {
    func endOfRIB(_ family: AddressFamily) { lock2.withLock { _endOfRIBs.append(family) } }
    func refresh(_ r: RouteRefreshMessage) { lock2.withLock { _refreshes.append(r) } }
    var endOfRIBs: [AddressFamily] { lock2.withLock { _endOfRIBs } }
    var refreshes: [RouteRefreshMessage] { lock2.withLock { _refreshes } }
}

@Suite(.serialized) struct CollisionTests {
    /// Both speakers connect to each other at once (RFC 4271 §6.8): one session survives, on the
    /// connection opened by the higher identifier, and it stays up.
    @Test(arguments: 0..<3)
    func simultaneousConnectionsLeaveOneSession(round: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let portA = try freePort(host: "127.0.0.1"), portB = try freePort(host: "127.0.0.2")
        func config(_ id: UInt8) -> SessionConfiguration {
            SessionConfiguration(localAS: 64512, peerAS: 64512, routerID: IPv4Address(192, 0, 2, id), families: [.ipv4VPN], holdTime: 3, connectRetryTime: 1, connectRetryMaximum: 2)
        }
        let a = BGPPeer(configuration: config(1), remoteAddress: "127.0.0.2", remotePort: portB, localAddress: "127.0.0.1", eventLoop: group.next())
        let b = BGPPeer(configuration: config(2), remoteAddress: "127.0.0.1", remotePort: portA, localAddress: "127.0.0.2", eventLoop: group.next())
        let listenerA = try await BGPListener.listen(host: "127.0.0.1", port: portA, group: group, peers: ["127.0.0.2": a]).get()
        let listenerB = try await BGPListener.listen(host: "127.0.0.2", port: portB, group: group, peers: ["127.0.0.1": b]).get()
        a.start()
        b.start()
        let up = try await eventually {
            let sa = try await a.state().get()
            let sb = try await b.state().get()
            return sa == .established && sb == .established
        }
        #expect(up)
        // It stays up: keepalives keep flowing on the surviving session (hold time 3 s).
        let before = try await a.currentStatistics().get().messagesReceived["keepalive", default: 0]
        let flowing = try await eventually(timeout: 5) {
            let now = try await a.currentStatistics().get().messagesReceived["keepalive", default: 0]
            let sa = try await a.state().get()
            let sb = try await b.state().get()
            return now >= before + 2 && sa == .established && sb == .established
        }
        #expect(flowing)
        let lastA = try await a.currentStatistics().get().lastNotificationReceived
        #expect(lastA == nil || lastA == NotificationMessage(code: .cease, subcode: 7), "\(String(describing: lastA))")
        a.stop()
        b.stop()
        try await listenerA.close().get()
        try await listenerB.close().get()
        try await group.shutdownGracefully()
    }
}

