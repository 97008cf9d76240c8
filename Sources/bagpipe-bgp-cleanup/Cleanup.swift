import ArgumentParser
import BagpipeConfig
import BagpipeDataplane
import BagpipeVPN
import Foundation

/// The original's `bagpipe-bgp-cleanup` (reference §4): removes what the configured dataplane
/// drivers left on this host (bridges, VXLAN devices, routes, rules …) after bagpipe-bgp stopped.
@main
struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-bgp-cleanup",
        abstract: "Remove the dataplane state bagpipe-bgp's drivers left on this host.",
        discussion: "Reads the same bgp.conf as bagpipe-bgp and asks each configured driver to remove what it owns; nothing else is touched.")

    @Option(name: .customLong("config-file"), help: "Configuration file; repeat to read several, later ones win.") var configFiles: [String] = []
    @Option(name: .customLong("config-dir"), help: "Also read every *.conf file of this folder.") var configDir: String?

    func run() throws {
        var warnings: [String] = []
        let configuration: BagpipeConfiguration
        do {
            configuration = try BagpipeConfiguration.load(files: configFiles.isEmpty ? ["/etc/bagpipe-bgp/bgp.conf"] : configFiles, directory: configDir, warnings: &warnings)
        } catch {
            FileHandle.standardError.write(Data("bagpipe-bgp-cleanup: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var failed = false
        for section in [configuration.ipvpn, configuration.evpn] {
            do {
                let driver = try DataplaneDrivers.make(section, bgpAddress: configuration.bgp.localAddress)
                try driver.resetState()
                print("\(section.vpnType.rawValue): \(section.driver) driver state removed")
            } catch {
                FileHandle.standardError.write(Data("bagpipe-bgp-cleanup: \(section.vpnType.rawValue): \(error)\n".utf8))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
