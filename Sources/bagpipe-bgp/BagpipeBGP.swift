import ArgumentParser
import BGPEngine
import BGPSession
import BGPWire
import BagpipeConfig
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
            Reads bgp.conf (the original's INI file). This version runs as a BGP route reflector \
            (RFC 4456) with RT-Constraint (RFC 4684): set in [BGP]
              route_reflector = True
              cluster_id = <IPv4>          (default: local_address)
              non_client_peers = <list>    (other reflectors; every other peer is a client)
              passive = True|False         (wait for peers to connect; default True for a reflector)
              listen_address, listen_port  (default: local_address, bgp_port)
              hold_time = <seconds>        (default 180)
            with the original's local_address, peers, my_as, enable_rtc and bgp_port. VPN instances, \
            the REST API and the dataplane drivers of a compute-node speaker are not in this version.
            SIGTERM or SIGINT closes every session with a Cease and exits 0.
            """)

    @Option(name: .customLong("config-file"), help: "Configuration file; repeat to read several, later ones win.")
    var configFiles: [String] = []

    @Option(name: .customLong("config-dir"), help: "Also read every *.conf file of this folder, in name order, after the files.")
    var configDir: String?

    @Flag(name: .long, help: "Log at debug level.")
    var debug = false

    func run() async throws {
        let level: Logger.Level = debug ? .debug : .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "bagpipe.bgp")
        let files = configFiles.isEmpty ? ["/etc/bagpipe-bgp/bgp.conf"] : configFiles
        var warnings: [String] = []
        let options: BGPOptions
        do {
            options = try BagpipeConfiguration.load(files: files, directory: configDir, warnings: &warnings).bgp
        } catch let error as ConfigurationError {
            throw Self.fail(error.description)
        }
        for warning in warnings { logger.warning("\(warning)") }
        guard options.routeReflector else {
            throw Self.fail(
                "this version of bagpipe-bgp runs only as a route reflector: set route_reflector = True in [BGP] (VPN instances, the REST API and dataplane drivers are not in it yet)")
        }
        try await Self.runReflector(options, logger: logger)
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
        var families: [AddressFamily] = [.ipv4VPN, .ipv6VPN, .evpn, .ipv4FlowSpecVPN]
        if options.enableRTC { families.append(.routeTargetConstraint) }
        for peer in options.peers {
            let session = SessionConfiguration(
                localAS: options.myAS, peerAS: options.myAS, routerID: options.localAddress, families: families, holdTime: options.holdTime, active: !options.passive)
            // The Loc-RIB holds the peers' routes: no Adj-RIB-In copy per peer.
            try await speaker.addPeer(
                .init(
                    address: "\(peer)", port: options.bgpPort, session: session, client: !options.nonClientPeers.contains(peer),
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

/// Runs until SIGTERM/SIGINT, then closes the sessions.
struct SpeakerService: Service {
    let speaker: BGPSpeaker
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.notice("stopping: closing every session")
        try await speaker.stop().get()
    }
}
