import AgentCore
import AgentService
import ArgumentParser
import AsyncHTTPClient
import Foundation
import INIConfig
import Logging

@main
struct BagpipeAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-agent",
        abstract: "The compute-node agent of bagpipe: plugs VM ports, realizes Neutron networks as E-VPNs and BGPVPN associations, and drives the local bagpipe-bgp.",
        discussion: AgentConfiguration.help)

    @Option(name: .customLong("config-file"), help: "agent.conf; may be repeated (later files override earlier ones).")
    var configFiles: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        let config: AgentConfiguration
        do {
            config = try AgentConfiguration(try INIFile(files: configFiles), defaultHost: ProcessInfo.processInfo.hostName)
        } catch let e as ConfigurationError {
            throw ValidationError(e.description)
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "bagpipe.agent")
        let plugger: any PortPlugger
        switch config.dataplane {
        case .linux: plugger = try LinuxPortPlugger()
        case .ovs:
            var bridges = OVSPortPlugger.Bridges()
            bridges.integration = config.integrationBridge
            bridges.tunnel = config.tunnelBridge
            bridges.mpls = config.mplsBridge
            bridges.datapathType = config.datapathType
            plugger = OVSPortPlugger(bridges: bridges, ovsdbConnection: config.ovsdbConnection)
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let agent = Agent(
            configuration: config, controller: ControllerClient(configuration: config, http: http),
            bagpipe: BagpipeBGPClient(baseURL: config.bagpipeBGPURL, http: http, timeout: config.requestTimeout), plugger: plugger, logger: logger)
        logger.notice(
            "bagpipe-agent for host \(config.host): controller \(config.controllerURL), bagpipe-bgp \(config.bagpipeBGPURL), dataplane \(config.dataplane.rawValue), extensions \(config.extensions.map(\.rawValue).sorted().joined(separator: ", "))")
        try await agent.run()
        try await http.shutdown()
    }
}
