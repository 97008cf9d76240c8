import ControllerLab
import BagpipeLab
import Foundation
import Testing

/// Issue 13, acceptance 2: openstacksdk and the `openstack` CLI create, show, list, update and
/// delete every resource (networks, subnets, ports, routers and their interfaces, BGPVPNs and their
/// network, router and port associations) against the controller (`python/openstack_clients.py`).
@Suite(.serialized, .timeLimit(.minutes(10))) struct ClientTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("python/openstack_clients.py").path
    static let steps = ["sdk network", "sdk subnet", "sdk port", "sdk router", "sdk bgpvpn", "sdk associations", "sdk delete",
                        "cli network subnet port router", "cli bgpvpn and associations", "cli delete"]

    @Test(arguments: Storage.allCases) func openstacksdkAndTheCLIDriveEveryResource(on storage: Storage) async throws {
        guard let database = try storage.database() else { return }
        guard OpenStackVenv.installed else {
            Issue.record("openstacksdk is not installed in \(OpenStackVenv.path) (scripts/test.sh installs it)")
            return
        }
        let controller = try await ControllerDaemon(database: database)
        defer { controller.stop() }
        let run = try OpenStackVenv.run("python", [Self.script, "\(controller.url)/v3"])
        let done = run.output.components(separatedBy: "\n").filter { $0.hasPrefix("ok ") }.map { String($0.dropFirst(3)) }
        #expect(run.status == 0 && done == Self.steps, "steps done: \(done)\n\(run.output.suffix(5000))\ncontroller log:\n\(controller.daemon.log.suffix(2000))")
    }
}
