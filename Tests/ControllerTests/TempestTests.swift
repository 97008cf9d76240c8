import ControllerLab
import BagpipeLab
import Foundation
import Testing

/// Issue 13, acceptance 1: neutron-tempest-plugin's bgpvpn API tests, unchanged, against the
/// controller and its own Keystone, with pre-provisioned credentials.
@Suite(.serialized, .timeLimit(.minutes(10))) struct TempestTests {
    static let expectedTests = 21

    /// Runs the suite against a controller on `database` (nil: SQLite).
    static func runTempest(database: String? = nil) async throws {
        guard OpenStackVenv.installed else {
            Issue.record("tempest is not installed in \(OpenStackVenv.path) (scripts/test.sh installs it)")
            return
        }
        let controller = try await ControllerDaemon(database: database)
        defer { controller.stop() }
        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-tempest-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: workspace) }
        let initialized = try OpenStackVenv.run("tempest", ["init", workspace.path])
        try #require(initialized.status == 0, "tempest init: \(initialized.output)")
        let etc = workspace.appendingPathComponent("etc")
        var accounts = ""
        for (user, role) in [("admin", "admin"), ("demo", "member"), ("alt", "member")] {
            accounts += "- username: \(user)\n  project_name: \(user)\n  password: secret\n  domain_name: Default\n  roles:\n  - \(role)\n"
        }
        try accounts.write(to: etc.appendingPathComponent("accounts.yaml"), atomically: true, encoding: .utf8)
        let conf = """
            [DEFAULT]
            log_file = tempest.log
            [auth]
            use_dynamic_credentials = False
            test_accounts_file = \(etc.appendingPathComponent("accounts.yaml").path)
            default_credentials_domain_name = Default
            create_isolated_networks = False
            admin_domain_name = Default
            [identity]
            uri_v3 = \(controller.url)/v3
            auth_version = v3
            region = RegionOne
            admin_role = admin
            [identity-feature-enabled]
            api_v2 = False
            [network-feature-enabled]
            api_extensions = all
            [service_available]
            neutron = True
            nova = False
            glance = False
            cinder = False
            swift = False
            bgpvpn = True
            """
        try conf.write(to: etc.appendingPathComponent("tempest.conf"), atomically: true, encoding: .utf8)
        let run = try OpenStackVenv.run("tempest", ["run", "--concurrency", "1", "--regex", "neutron_tempest_plugin.bgpvpn.api.test_bgpvpn"], in: workspace)
        let passed = run.output.components(separatedBy: "\n").filter { $0.contains("neutron_tempest_plugin.bgpvpn.api.test_bgpvpn") && $0.hasSuffix("... ok") }
        #expect(run.status == 0, "tempest failed:\n\(run.output.suffix(6000))\ncontroller log:\n\(controller.daemon.log.suffix(3000))")
        #expect(passed.count == expectedTests, "\(passed.count) of \(expectedTests) passed:\n\(run.output.suffix(4000))")
    }

    @Test(arguments: Storage.allCases) func bgpvpnAPITestsPass(on storage: Storage) async throws {
        guard let database = try storage.database() else { return }
        try await Self.runTempest(database: database)
    }
}
