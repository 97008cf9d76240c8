import AgentCore
import AgentService
import BagpipeLab
import INIConfig
import Testing

/// agent.conf: Neutron's option names, inline comments as in the issue's example, a bad value
/// named with its option, `--help` naming every option.
@Suite struct AgentConfigurationTests {
    static let example = """
        [DEFAULT]
        host = compute-1
        [controller]
        url = http://127.0.0.1:9696
        username = compute-1
        password = secret
        [agent]
        dataplane = ovs                  ; or linux
        extensions = bagpipe, bagpipe_bgpvpn   ; Neutron's names: networks as E-VPNs, BGPVPN associations
        [ovs]
        ovsdb_connection = unix:/var/run/openvswitch/db.sock   ; Neutron's option; tcp:IP:PORT too
        datapath_type = system           ; or netdev (the userspace datapath the tests use)
        [BAGPIPE]
        bagpipe_bgp_ip = 127.0.0.1
        bagpipe_bgp_port = 8082
        ping_interval = 10
        mpls_bridge = br-mpls
        [ml2_bagpipe_extension]
        as_number = 64512
        """

    @Test func theIssuesExampleReads() throws {
        let c = try AgentConfiguration(try INIFile(parsing: Self.example, origin: "agent.conf"), defaultHost: "x")
        #expect(c.host == "compute-1" && c.dataplane == .ovs && c.extensions == [.bagpipe, .bagpipeBGPVPN] && c.datapathType == "system")
        #expect(c.ovsdbConnection == "unix:/var/run/openvswitch/db.sock" && c.bagpipeBGPURL == "http://127.0.0.1:8082" && c.pingInterval == 10 && c.asNumbers == [64512])
    }

    @Test(arguments: [
        ("[agent]\ndataplane = vpp", "[agent] dataplane"), ("[agent]\nextensions = bagpipe, sfc", "unknown extension sfc"),
        ("[BAGPIPE]\nbagpipe_bgp_port = 70000", "bagpipe_bgp_port"), ("[BAGPIPE]\nping_interval = -1", "ping_interval"),
        ("[ovs]\novsdb_connection = /run/db.sock", "ovsdb_connection"), ("[ml2_bagpipe_extension]\nas_number = 64512, x", "as_number"),
        ("[controller]\nurl = 127.0.0.1:9696", "[controller] url"),
    ])
    func aBadValueNamesItsOption(_ text: String, _ named: String) throws {
        let file = try INIFile(parsing: "[controller]\npassword = secret\n" + text, origin: "agent.conf")
        do {
            _ = try AgentConfiguration(file, defaultHost: "compute-1")
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(named), "\(error)")
        }
    }

    @Test func aMissingPasswordIsNamed() throws {
        #expect(throws: ConfigurationError.self) { try AgentConfiguration(try INIFile(parsing: "[DEFAULT]\nhost = h", origin: "agent.conf"), defaultHost: "h") }
    }

    @Test func helpNamesEveryOption() throws {
        let (status, output) = try runProcess(builtProduct("bagpipe-agent"), ["--help"])
        #expect(status == 0)
        for option in ["host", "url", "username", "password", "watch_heartbeat", "dataplane", "extensions", "polling_interval", "ovsdb_connection", "datapath_type",
            "integration_bridge", "tunnel_bridge", "bagpipe_bgp_ip", "bagpipe_bgp_port", "ping_interval", "mpls_bridge", "as_number", "--config-file"] {
            #expect(output.contains(option), "--help does not name \(option)")
        }
        let bad = try runProcess(builtProduct("bagpipe-agent"), ["--config-file", "/nonexistent/agent.conf"])
        #expect(bad.status != 0 && bad.output.contains("/nonexistent/agent.conf"), "\(bad.output)")
    }
}
