import BagpipeLab
import BGPWire
import BagpipeCLI
import Foundation
import Testing

/// Issue 5, acceptance 3: the original's Python `bagpipe-rest-attach`, `bagpipe-looking-glass` and
/// `bagpipe-impex2dot` (PyPI package networking-bagpipe, in the virtualenv `scripts/test.sh` makes)
/// drive our daemon unchanged.
@Suite(.serialized, .timeLimit(.minutes(5))) struct OriginalClientsTests {
    /// The virtualenv with networking-bagpipe: `BAGPIPE_PYTHON_VENV`, else `.build/python-bagpipe`.
    static var venv: String {
        if let v = ProcessInfo.processInfo.environment["BAGPIPE_PYTHON_VENV"] { return v }
        let here = URL(fileURLWithPath: builtProduct("bagpipe-bgp")).deletingLastPathComponent()
        // .build/<triple>/debug/bagpipe-bgp → .build/python-bagpipe
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("python-bagpipe").path
    }

    /// Runs one of the original's tools. `bagpipe-rest-attach` reads `[API] port` from
    /// /etc/bagpipe-bgp/bgp.conf and nowhere else: it runs in a mount namespace where a folder of
    /// ours is mounted over /etc/bagpipe-bgp, so the host's own file (if any) is never touched.
    static func python(_ tool: String, _ arguments: [String], apiPort: Int) throws -> (status: Int32, output: String) {
        let etc = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-etc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: etc) }
        try "[API]\nport = \(apiPort)\n".write(to: etc.appendingPathComponent("bgp.conf"), atomically: true, encoding: .utf8)
        let created = !FileManager.default.fileExists(atPath: "/etc/bagpipe-bgp")
        if created { try FileManager.default.createDirectory(atPath: "/etc/bagpipe-bgp", withIntermediateDirectories: true) }
        defer { if created { try? FileManager.default.removeItem(atPath: "/etc/bagpipe-bgp") } }
        let command = (["\(venv)/bin/\(tool)"] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try runProcess("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", "mount --bind '\(etc.path)' /etc/bagpipe-bgp && exec \(command)"])
    }

    @Test func theOriginalToolsDriveOurDaemon() async throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.venv)/bin/bagpipe-rest-attach") else {
            Issue.record("networking-bagpipe is not installed in \(Self.venv) (scripts/test.sh installs it)")
            return
        }
        let host = try await HostDaemon()
        defer { host.stop() }
        let port = host.apiPort
        // Attach: an E-VPN port, and a VRF port with re-advertisement and traffic attraction (the
        // original client sends `attract_traffic.to`, which its own server ignored, quirk Q15).
        var r = try Self.python("bagpipe-rest-attach", ["--attach", "--network-type", "evpn", "--port", "tap1", "--mac", "52:54:00:00:00:01", "--ip", "10.0.0.1", "--vpn-instance-id", "net1", "--rt", "64512:10"], apiPort: port)
        #expect(r.status == 0 && r.output.contains("response: 200"), "\(r.output)")
        r = try Self.python(
            "bagpipe-rest-attach",
            ["--attach", "--network-type", "ipvpn", "--port", "tap2", "--mac", "52:54:00:00:00:02", "--ip", "10.1.0.5", "--vpn-instance-id", "vrf1", "--rt", "64512:20",
             "--readv-from-rt", "64512:21", "--readv-to-rt", "64512:22", "--redirect-rts", "64512:23", "--destination-port", "80", "--protocol", "tcp",
             "--attract-to-rt", "64512:22", "--static-destination-prefix", "20.0.0.0/24"], apiPort: port)
        #expect(r.status == 0 && r.output.contains("response: 200"), "\(r.output)")
        let attract = try await host.lookingGlass("vpns/instances/vrf1/attract_traffic")
        #expect(attract["to"] == ["target:64512:22"] && attract["static_destination_prefixes"] == ["20.0.0.0/24"], "\(attract)")
        // A refused attach: the client reports the error and fails.
        r = try Self.python("bagpipe-rest-attach", ["--attach", "--network-type", "evpn", "--port", "tap3", "--mac", "gg:gg:gg:gg:gg:gg", "--ip", "10.0.0.3", "--vpn-instance-id", "net1"], apiPort: port)
        #expect(r.status != 0 && r.output.contains("error 400"), "\(r.output)")

        // Browse with the original looking-glass client.
        r = try Self.python("bagpipe-looking-glass", ["--port", "\(port)", "summary"], apiPort: port)
        #expect(r.output.contains("vpn_instances_count: 2") && r.output.contains("BGP_established_peers: 0"), "\(r.output)")
        r = try Self.python("bagpipe-looking-glass", ["--port", "\(port)", "vpns", "instances"], apiPort: port)
        #expect(r.output.contains("* net1 (...)") && r.output.contains("* vrf1 (...)"), "\(r.output)")
        r = try Self.python("bagpipe-looking-glass", ["--port", "\(port)", "-r", "vpns", "instances", "net1"], apiPort: port)
        #expect(r.output.contains("instance_type: EVI") && r.output.contains("mac_address: 52:54:00:00:00:01") && r.output.contains("* target:64512:10"), "\(r.output)")
        r = try Self.python("bagpipe-looking-glass", ["--port", "\(port)", "vpns", "instances", "vrf1", "route_targets", "import"], apiPort: port)
        #expect(r.output.contains("* target:64512:20"), "\(r.output)")
        r = try Self.python("bagpipe-looking-glass", ["--port", "\(port)", "no", "such", "path"], apiPort: port)
        #expect(r.output.contains("No such looking glass path: no such path"), "\(r.output)")
        r = try Self.python("bagpipe-impex2dot", ["--port", "\(port)", "--server", "127.0.0.1"], apiPort: port)
        #expect(r.output.contains("digraph import_export") && r.output.contains("rt_64512_10 -> vpn_127_0_0_1__net1:0"), "\(r.output)")

        // Detach: the instances go with their last port.
        r = try Self.python("bagpipe-rest-attach", ["--detach", "--network-type", "evpn", "--port", "tap1", "--mac", "52:54:00:00:00:01", "--ip", "10.0.0.1", "--vpn-instance-id", "net1", "--rt", "64512:10"], apiPort: port)
        #expect(r.status == 0 && r.output.contains("response: 200"), "\(r.output)")
        r = try Self.python("bagpipe-rest-attach", ["--detach", "--network-type", "ipvpn", "--port", "tap2", "--mac", "52:54:00:00:00:02", "--ip", "10.1.0.5", "--vpn-instance-id", "vrf1", "--rt", "64512:20"], apiPort: port)
        #expect(r.status == 0 && r.output.contains("response: 200"), "\(r.output)")
        #expect(try await host.lookingGlass("vpns/instances") == .array([]))
    }
}
