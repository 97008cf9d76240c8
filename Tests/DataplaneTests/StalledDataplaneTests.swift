import BagpipeLab
import Foundation
import Testing

/// Issue 12, acceptance 2: a dataplane that stops answering delays neither BGP nor the API.
/// bagpipe-bgp peers with gobgpd on a 3-second hold time; then its dataplane hangs: Open vSwitch
/// frozen with SIGSTOP (the `ovs` IP VPN driver), or every netlink request held at a gate (the
/// `linux` drivers, `BAGPIPE_FAULT_NETLINK_GATE`). For 20 s, while a detach and an attach wait for
/// it, the session stays Established, `/ping` and the looking glass answer, and a route gobgpd
/// sends reaches the VRF. Once the dataplane answers again it converges to what was attached,
/// with the same bagpipe-bgp process.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StalledDataplaneTests {
    enum Stall: String, CaseIterable, CustomTestStringConvertible {
        case openVSwitch, netlink
        var testDescription: String { rawValue }
    }

    static let gobgpd = "/usr/bin/gobgpd", gobgp = "/usr/bin/gobgp"
    static let stallSeconds = 20.0

    /// What marks each part of the attached state in the host's dataplane (rules of br-mpls, or
    /// the routing tables).
    struct Markers {
        var firstPort: String, secondPort: String
        static func of(_ stall: Stall) -> Markers {
            switch stall {
            case .openVSwitch: Markers(firstPort: "in_port=77", secondPort: "in_port=78")
            case .netlink: Markers(firstPort: "10.20.1.1 dev tap-a1", secondPort: "10.20.1.2 dev tap-a2")
            }
        }
    }

    @Test(arguments: Stall.allCases)
    func bgpAndTheAPIStayLiveWhileTheDataplaneHangs(_ stall: Stall) async throws {
        guard Daemon.installed(Self.gobgpd) else { Issue.record("gobgpd is not installed: the README's test command installs it"); return }
        if stall == .openVSwitch, !OpenVSwitch.installed { Issue.record("Open vSwitch is not installed: the README's test command installs it"); return }
        let lab = try Lab(openVSwitch: stall == .openVSwitch)
        let gate = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-netlink-gate-\(UUID().uuidString.prefix(8))").path
        var background: [Process] = []
        defer {
            try? FileManager.default.removeItem(atPath: gate)
            lab.switches["a"]?.resume()
            for p in background where p.isRunning { p.terminate() }
            lab.stop()
        }
        do {
            // Host a and its two ports; gobgpd on gw.
            let drivers: String
            var ports: [String]
            switch stall {
            case .openVSwitch:
                // The underlay stays on eth0: BGP must not cross the switch that is frozen.
                let ovs = try OpenVSwitch(namespace: try lab.addHost("a", address: "192.0.2.1"))
                lab.switches["a"] = ovs
                try ovs.addBridge("br-mpls")
                for (name, number) in [("vm1", 77), ("vm2", 78)] {
                    try ovs.ovs("ovs-vsctl", ["--timeout=30", "add-port", "br-mpls", name, "--", "set", "Interface", name, "type=internal", "ofport_request=\(number)"])
                }
                drivers = "[DATAPLANE_DRIVER_IPVPN]\ndataplane_driver = ovs\novs_bridge = br-mpls\n[DATAPLANE_DRIVER_EVPN]\ndataplane_driver = dummy"
                ports = [#"{"linuxif":"vm1","ovs":{"plugged":true,"port_number":77}}"#, #"{"linuxif":"vm2","ovs":{"plugged":true,"port_number":78}}"#]
            case .netlink:
                let ns = try lab.addHost("a", address: "192.0.2.1")
                for name in ["tap-a1", "tap-a2"] { try run(["ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", name + "p"]) }
                drivers = Lab.linuxDrivers
                ports = [#"{"linuxif":"tap-a1"}"#, #"{"linuxif":"tap-a2"}"#]
            }
            let markers = Markers.of(stall)
            let gw = try lab.addHost("gw", address: "192.0.2.254")
            var neighbor = GoBGPConfiguration.Neighbor(address: "192.0.2.1", localAddress: "192.0.2.254", passive: true)
            neighbor.holdTime = 3
            let toml = GoBGPConfiguration(routerID: "192.0.2.254", port: 179, localAddress: "192.0.2.254", neighbors: [neighbor]).toml
            lab.daemons["gw"] = try Daemon(
                name: "gobgpd-gw", executable: lab.ipCommand,
                arguments: ["netns", "exec", gw, Self.gobgpd, "-f", "$DIR/gobgpd.toml", "--api-hosts=127.0.0.1:50051", "--pprof-disable", "-l", "info"],
                files: ["gobgpd.toml": toml])
            try lab.start(
                "a",
                conf: "[BGP]\nlocal_address = 192.0.2.1\nmy_as = 64512\npeers = 192.0.2.254\nhold_time = 3\n[API]\nport = 8082\n\(drivers)\n",
                environment: stall == .netlink ? ["BAGPIPE_FAULT_NETLINK_GATE": gate] : [:])
            let pid = try #require(lab.daemons["a"]).process.processIdentifier
            try await lab.waitEstablished("a")

            func attachment(_ index: Int) -> String {
                #"{"vpn_instance_id":"vrf-green","vpn_type":"ipvpn","import_rt":["64512:20"],"export_rt":["64512:20"],"mac_address":"52:54:00:00:0a:0\#(index + 1)","ip_address":"10.20.1.\#(index + 1)/24","gateway_ip":"10.20.1.254","local_port":\#(ports[index])}"#
            }
            func addRoute(_ prefix: String) throws {
                try run(["ip", "netns", "exec", gw, Self.gobgp, "-p", "50051", "global", "rib", "-a", "vpnv4", "add", prefix, "label", "100", "rd", "64512:99", "rt", "64512:20"]
                    + (stall == .netlink ? ["encap", "vxlan"] : []) + ["nexthop", "192.0.2.254"])
            }
            func dataplane() throws -> String {
                switch stall {
                case .openVSwitch: try lab.flows("a", "br-mpls").joined(separator: "\n")
                case .netlink: try lab.exec("a", ["ip", "route", "show", "table", "all"])
                }
            }

            // Before the stall: one port attached, a route from gobgpd installed.
            let first = try lab.request("a", "/attach_localport", post: attachment(0))
            #expect(first.status == 200, "\(first.body)")
            try addRoute("10.20.9.0/24")
            _ = try await poll(timeout: 20) { try dataplane() } until: { $0.contains("10.20.9.0") && $0.contains(markers.firstPort) }

            // The dataplane hangs.
            switch stall {
            case .openVSwitch: lab.switches["a"]?.pause()
            case .netlink: #expect(FileManager.default.createFile(atPath: gate, contents: nil))
            }
            let stalled = Date()
            // The first port leaves and the second comes, both waiting for the dataplane.
            func post(_ path: String, _ body: String) throws -> (Process, Pipe) {
                let process = Process()
                let command = try lab.hostCommand("a", ["curl", "-s", "-m", "60", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "-d", body, "http://127.0.0.1:8082\(path)"])
                process.executableURL = URL(fileURLWithPath: command[0])
                process.arguments = Array(command.dropFirst())
                let pipe = Pipe()
                process.standardOutput = pipe
                try process.run()
                background.append(process)
                return (process, pipe)
            }
            let detach = try post("/detach_localport", attachment(0))
            let attach = try post("/attach_localport", attachment(1))
            try addRoute("10.20.8.0/24")

            // For 20 s: the session stays up, the API answers, gobgpd's route reaches the VRF.
            var latencies: [Double] = [], failures: [String] = [], routeArrived = false
            while Date().timeIntervalSince(stalled) < Self.stallSeconds {
                for path in ["/ping", "/looking-glass/bgp/peers/192.0.2.254/protocol/state", "/looking-glass/vpns/instances/vrf-green/received_routes"] {
                    let out = (try? run(try lab.hostCommand("a", ["curl", "-s", "-m", "1", "-w", "\n%{http_code} %{time_total}", "http://127.0.0.1:8082\(path)"]))) ?? ""
                    let lines = out.split(separator: "\n")
                    let status = lines.last?.split(separator: " ")
                    guard let status, status.count == 2, status[0] == "200", let seconds = Double(status[1]) else {
                        failures.append("\(path) did not answer within 1 s after \(Date().timeIntervalSince(stalled)) s: \(out)")
                        continue
                    }
                    latencies.append(seconds)
                    let body = lines.dropLast().joined(separator: "\n")
                    if path.hasSuffix("/state"), body != #""Established""# { failures.append("session \(body) after \(Date().timeIntervalSince(stalled)) s") }
                    if path.hasSuffix("received_routes"), body.contains("10.20.8.0/24") { routeArrived = true }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            latencies.sort()
            let median = latencies.isEmpty ? 0 : latencies[latencies.count / 2]
            print("stalled \(stall.rawValue) dataplane: \(latencies.count) answers, median \(Int(median * 1000)) ms, max \(Int((latencies.last ?? 0) * 1000)) ms")
            #expect(failures.isEmpty, "\(failures.prefix(5))\n\(lab.logs())")
            #expect(routeArrived, "gobgpd's route 10.20.8.0/24 did not reach the VRF while the dataplane hung")
            #expect(detach.0.isRunning, "the detach answered while the dataplane hung: the stall did not stall")
            // /metrics shows the requests waiting.
            let metrics = try lab.api("a", "/metrics")
            let queued = metrics.split(separator: "\n").first { $0.hasPrefix("bagpipe_dataplane_queued_requests ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect((queued ?? 0) > 0, "\(metrics)")

            // The dataplane answers again: it converges to the attached state, same process.
            switch stall {
            case .openVSwitch: lab.switches["a"]?.resume()
            case .netlink: try FileManager.default.removeItem(atPath: gate)
            }
            _ = try await poll(timeout: 60) { try dataplane() } until: {
                $0.contains("10.20.9.0") && $0.contains("10.20.8.0") && $0.contains(markers.secondPort) && !$0.contains(markers.firstPort)
            }
            for (name, (process, pipe)) in [("detach", detach), ("attach", attach)] {
                let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                let status = output.split(separator: "\n").last.map(String.init) ?? ""
                // Answered when the dataplane did, or with a clear 503 when it took longer than the API waits.
                #expect(status == "200" || (status == "503" && output.contains("dataplane")), "\(name): \(output)")
            }
            let daemon = try #require(lab.daemons["a"])
            #expect(daemon.process.isRunning && daemon.process.processIdentifier == pid, "bagpipe-bgp was restarted")
            #expect(try lab.api("a", "/looking-glass/bgp/peers/192.0.2.254/protocol/state") == #""Established""#)
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }
}
