import BGPSession
import BGPWire
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// `--connect`: a BGP session to a peer, printing what it receives as JSON lines.
struct Probe {
    var peer: String
    var port: Int
    var localAddress: String?
    var localAS: UInt32
    var peerAS: UInt32
    var routerID: IPv4Address
    var families: [AddressFamily]
    var holdTime: UInt16
    var duration: Double
    var count: Int
    var rtcDefault: Bool

    /// Runs until the duration passes, `count` UPDATEs arrived, or the session goes down after being
    /// up. Returns whether the session was ever established.
    func run() throws -> Bool {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var logger = Logger(label: "bagpipe-bgp-decode.probe")
        logger.logLevel = .info
        let configuration = SessionConfiguration(
            localAS: localAS, peerAS: peerAS, routerID: routerID, families: families, holdTime: holdTime, connectRetryTime: 2)
        let session = BGPPeer(configuration: configuration, remoteAddress: peer, remotePort: port, localAddress: localAddress, eventLoop: group.next(), logger: logger)
        let done = group.next().makePromise(of: Void.self)
        let state = ProbeState()
        session.onEstablished = { negotiated in
            state.established = true
            print(JSONValue.object([
                ("type", "established"), ("peer_as", JSONValue(negotiated.peerAS)), ("peer_router_id", .string(negotiated.peerRouterID.description)),
                ("hold_time", JSONValue(negotiated.holdTime)), ("families", .array(negotiated.families.map { .string($0.description) })),
            ]).serialized())

        }
        session.onUpdate = { update in
            guard case .object(let fields) = BGPMessage.update(update).json(context: .standard) else { return }
            print(JSONValue.object([("peer", .string(peer))] + fields).serialized())
            fflush(nil)
            state.updates += 1
            if count > 0 && state.updates >= count { done.succeed() }
        }
        session.onWithdrawals = { blocks, reason in
            print(JSONValue.object([("type", "treat-as-withdraw"), ("reason", .string(reason)), ("withdrawn", .array(blocks.map { $0.json() }))]).serialized())
        }
        session.onDown = { reason in
            print(JSONValue.object([("type", "down"), ("reason", .string(reason))]).serialized())
            done.succeed()
        }
        // Ask for everything a peer doing RT-Constraint would otherwise keep back (RFC 4684 default
        // route); it is sent if the family is negotiated, End-of-RIB follows.
        if rtcDefault {
            session.announce(
                [NLRIElement(.routeTargetMembership(.default))], family: .routeTargetConstraint, nextHop: .ipv4(routerID),
                attributes: [PathAttribute(.origin(.igp)), PathAttribute(.asPath(ASPath())), PathAttribute(.localPreference(100))])
        }
        session.start()
        group.next().scheduleTask(in: .nanoseconds(Int64(duration * 1e9))) { done.succeed() }
        try done.futureResult.wait()
        session.stop()
        return state.established
    }
}

final class ProbeState: @unchecked Sendable {
    var established = false
    var updates = 0
}
