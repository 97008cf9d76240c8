import ArgumentParser
import BGPEngine
import BGPSession
import BGPWire
import BagpipeAPI
import BagpipeConfig
import BagpipeDataplane
import BagpipeVPN
import Hummingbird
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

@main
struct BagpipeBGP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-bgp",
        abstract: "The bagpipe BGP VPN speaker.",
        discussion: """
            Reads bgp.conf (the original's INI file). As a compute node (the default) it peers with \
            [BGP] peers, serves the REST API on [API] host:port (default 127.0.0.1:8082) for \
            attach_localport / detach_localport, and realizes E-VPN and IP VPN instances with the \
            dataplane drivers of [DATAPLANE_DRIVER_EVPN] and [DATAPLANE_DRIVER_IPVPN] (dummy, linux \
            over netlink, ovs), which run on a thread of their own so that a slow dataplane never \
            delays BGP. It can also run as a BGP route reflector (RFC 4456) \
            with RT-Constraint (RFC 4684): set in [BGP]
              route_reflector = True
              cluster_id = <IPv4>          (default: local_address)
              non_client_peers = <list>    (other reflectors; every other peer is a client)
              passive = True|False         (wait for peers to connect; default True for a reflector)
              listen_address, listen_port  (default: local_address, bgp_port)
              hold_time = <seconds>        (default 180)
            with the original's local_address, peers, my_as, enable_rtc and bgp_port.
            Hitless restart: with [BGP] graceful_restart_time = <seconds> (on the hosts and the             reflectors) and [API] attachments_file = <path> (on the hosts), a host's dataplane             outlives its daemon. A crash, a restart or an upgrade loses no packet: the new daemon             takes over the devices, entries and Open vSwitch rules it finds, plugs the stored attachments again, and             removes only what is still unaccounted for once every peer has sent its routes; the             reflectors and other peers keep its routes meanwhile, and a host keeps forwarding on             the routes it has while its reflectors are away (for their restart time). The looking             glass (vpns/dataplane/drivers) and /metrics (bagpipe_dataplane_differences) show where             the dataplane and the instances disagree.
            SIGTERM or SIGINT closes every session with a Cease and exits 0; on a host with             graceful restart and an attachments file it is a restart instead: the dataplane stays,             the sessions are dropped without a Cease (peers keep the routes); bagpipe-bgp-cleanup             removes the dataplane state for good.
            """)

    @Option(name: .customLong("config-file"), help: "Configuration file; repeat to read several, later ones win.")
    var configFiles: [String] = []

    @Option(name: .customLong("config-dir"), help: "Also read every *.conf file of this folder, in name order, after the files.")
    var configDir: String?

    @Flag(name: .long, help: "Log at debug level.")
    var debug = false

    func run() async throws {
        let level: Logger.Level = debug ? .debug : .info
        // Warnings and errors are also kept for the looking glass (`logs`, `warnings_and_errors`).
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return RecordingLogHandler(label: label, inner: handler)
        }
        let logger = Logger(label: "bagpipe.bgp")
        let files = configFiles.isEmpty ? ["/etc/bagpipe-bgp/bgp.conf"] : configFiles
        var warnings: [String] = []
        let configuration: BagpipeConfiguration
        do {
            configuration = try BagpipeConfiguration.load(files: files, directory: configDir, warnings: &warnings)
        } catch let error as ConfigurationError {
            throw Self.fail(error.description)
        }
        for warning in warnings { logger.warning("\(warning)") }
        if configuration.bgp.routeReflector {
            try await Self.runReflector(configuration.bgp, logger: logger)
        } else {
            try await Self.runHost(configuration, logger: logger)
        }
    }

    /// A compute node: sessions to `peers` (active, as the original), the VPN instances the REST API
    /// attaches ports to, and their dataplane drivers.
    static func runHost(_ configuration: BagpipeConfiguration, logger: Logger) async throws {
        let options = configuration.bgp
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let speaker = BGPSpeaker(
            configuration: RouteEngine.Configuration(localAS: options.myAS, routerID: options.localAddress, localAddress: options.localAddress, routeTargetConstraint: options.enableRTC),
            eventLoop: group.next(), logger: logger)
        let service = VPNService(
            speaker: speaker, configuration: .init(bgpAddress: options.localAddress, salt: ProcessInfo.processInfo.hostName, ipv6VPN: options.enableIPv6VPN),
            attachmentsFile: configuration.api.attachmentsFile
        ) {
            [
                .ipvpn: try DataplaneDrivers.make(configuration.ipvpn, bgpAddress: options.localAddress),
                .evpn: try DataplaneDrivers.make(configuration.evpn, bgpAddress: options.localAddress),
            ]
        }
        // Graceful restart with an attachments file: the dataplane outlives the daemon (a crash, an
        // upgrade, a stop), and a daemon that starts again with attachments stored takes it over.
        let keepsForwarding = options.gracefulRestartTime != nil && configuration.api.attachmentsFile != nil
        let restarting = keepsForwarding && service.hasStoredAttachments
        // The drivers check the host now: one that cannot run stops the daemon here, not at an attach.
        do {
            let (replayed, refused) = try await service.start(restarting: restarting, parse: { try AttachRequest(json: $0) }).get()
            if let file = configuration.api.attachmentsFile { logger.notice("\(replayed) attachments plugged again from \(file)") }
            for r in refused { logger.warning("attachment not plugged again (dropped): \(r)") }
        } catch {
            try? await speaker.stop().get()
            try? await group.shutdownGracefully()
            throw fail("\(error)")
        }
        var families: [AddressFamily] = [.ipv4VPN, .evpn, .ipv4FlowSpecVPN]
        if options.enableIPv6VPN { families += [.ipv6VPN, .ipv6FlowSpecVPN] }
        if options.enableRTC { families.append(.routeTargetConstraint) }
        // Before the peers: every End-of-RIB they send counts.
        if restarting, let time = options.gracefulRestartTime {
            logger.notice("restarting with the dataplane as the earlier run left it: stale entries go once every peer has sent its routes (at most \(time) s)")
            speaker.beginRestart(deferral: Double(time), holdEndOfRIB: false).flatMap { service.sweepStale() }.whenSuccess { removed in
                logger.notice("restart over: \(removed.count) stale dataplane entries removed")
            }
        }
        for peer in options.peers {
            _ = try await speaker.addPeer(
                .init(
                    address: "\(peer)", port: options.bgpPort, session: session(options, families: families, restarting: restarting, preservesForwarding: keepsForwarding), client: false,
                    localAddress: options.passive ? nil : "\(options.localAddress)")
            ).get()
        }
        if options.listens {
            let host = "\(options.listenAddress ?? options.localAddress)"
            _ = try await speaker.listen(host: host, port: options.listenPort).get()
        }
        let metrics = DaemonMetrics()
        metrics.bootstrap()
        let api = Application(
            router: BagpipeAPI.router(service: service, config: configuration.lookingGlass, metrics: metrics),
            configuration: .init(address: .hostname(configuration.api.host, port: configuration.api.port), serverName: "bagpipe-bgp"),
            onServerRunning: { channel in logger.notice("REST API listening on \(channel.localAddress?.description ?? "?")") },
            eventLoopGroupProvider: .shared(group), logger: logger)
        logger.notice("host: AS \(options.myAS), router id \(options.localAddress), peers \(options.peers.map(\.description).joined(separator: " ")), dataplane drivers ipvpn \(configuration.ipvpn.driver), evpn \(configuration.evpn.driver)")
        let services = ServiceGroup(
            configuration: .init(
                services: [.init(service: api), .init(service: SpeakerService(speaker: speaker, vpn: service, preservesForwarding: keepsForwarding, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await group.shutdownGracefully()
    }

    /// One peer's session from `[BGP]`: iBGP, the hold time, MD5 and graceful restart when set
    /// (the R bit while `restarting`, the F bits when our forwarding survives us).
    static func session(_ options: BGPOptions, families: [AddressFamily], restarting: Bool = false, preservesForwarding: Bool = false) -> SessionConfiguration {
        var session = SessionConfiguration(
            localAS: options.myAS, peerAS: options.myAS, routerID: options.localAddress, families: families, holdTime: options.holdTime, active: !options.passive,
            gracefulRestartTime: options.gracefulRestartTime, gracefulRestartRestarting: restarting && options.gracefulRestartTime != nil)
        session.gracefulRestartPreservesForwarding = preservesForwarding && options.gracefulRestartTime != nil
        session.gracefulRestartNotification = options.gracefulRestartNotification
        session.security.md5Password = options.md5Password
        return session
    }

    /// A start-up failure: the message on standard error (no usage text: the command line was
    /// fine) and exit status 2.
    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("bagpipe-bgp: \(message)\n".utf8))
        return ExitCode(2)
    }

    static func runReflector(_ options: BGPOptions, logger: Logger) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let engineConfiguration = RouteEngine.Configuration(
            localAS: options.myAS, routerID: options.localAddress, localAddress: options.localAddress, clusterID: options.clusterID, routeTargetConstraint: options.enableRTC)
        let speaker = BGPSpeaker(configuration: engineConfiguration, eventLoop: group.next(), logger: logger)
        var families: [AddressFamily] = [.ipv4VPN, .ipv6VPN, .evpn, .ipv4FlowSpecVPN, .ipv6FlowSpecVPN]
        if options.enableRTC { families.append(.routeTargetConstraint) }
        if let time = options.gracefulRestartTime {
            // Before the peers. Its VPN End-of-RIBs wait for its clients': a client that restarts with
            // it must not sweep routes of other clients it has not learnt again yet (RFC 4724 §4.1).
            speaker.beginRestart(deferral: Double(time), holdEndOfRIB: true).whenSuccess {}
        }
        for peer in options.peers {
            // The Loc-RIB holds the peers' routes: no Adj-RIB-In copy per peer.
            _ = try await speaker.addPeer(
                .init(
                    address: "\(peer)", port: options.bgpPort,
                    // A reflector forwards nothing itself: the routes it reflects stay valid while it restarts.
                    session: session(options, families: families, restarting: true, preservesForwarding: true), client: !options.nonClientPeers.contains(peer),
                    localAddress: options.passive ? nil : "\(options.localAddress)", keepsAdjRIBIn: false)
            ).get()
        }
        if options.listens {
            let host = "\(options.listenAddress ?? options.localAddress)"
            do {
                let port = try await speaker.listen(host: host, port: options.listenPort).get()
                logger.notice("listening for BGP sessions on \(host) port \(port)")
            } catch {
                try? await group.shutdownGracefully()
                throw Self.fail("cannot listen on \(host) port \(options.listenPort): \(error)")
            }
        }
        logger.notice(
            "route reflector: AS \(options.myAS), router id \(options.localAddress), cluster id \(options.clusterID), \(options.peers.count - options.nonClientPeers.count) clients, \(options.nonClientPeers.count) non-clients, RT-Constraint \(options.enableRTC ? "on" : "off")"
        )
        let service = SpeakerService(speaker: speaker, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
        try await group.shutdownGracefully()
    }
}

/// Runs until SIGTERM/SIGINT, then stops every VPN instance (withdrawing its routes, cleaning its
/// dataplane) if there are any, and closes every session with a Cease. With `preservesForwarding`
/// (graceful restart and an attachments file) it is a restart: the dataplane stays as it is and
/// the sessions are dropped without a NOTIFICATION, so that peers keep our routes until we are
/// back (`bagpipe-bgp-cleanup` removes the dataplane state for good).
struct SpeakerService: Service {
    let speaker: BGPSpeaker
    var vpn: VPNService? = nil
    var preservesForwarding = false
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        if preservesForwarding, let vpn {
            logger.notice("stopping for a restart: the dataplane and the attachments stay, sessions dropped for the peers to keep our routes")
            vpn.syncStore()
            try await speaker.stop(preservingForwarding: true).get()
            return
        }
        if let vpn {
            logger.notice("stopping: VPN instances, then every session")
            try? await vpn.stop().get()
            vpn.syncStore()
        } else {
            logger.notice("stopping: closing every session")
        }
        try await speaker.stop().get()
    }
}
