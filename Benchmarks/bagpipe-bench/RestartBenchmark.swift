import ArgumentParser
import BagpipeLab
import Foundation

/// Issue 16, acceptance 5: what a VM sees while bagpipe-bgp is killed (-9) and started again on its
/// peer's host, ours against the original Python bagpipe-bgp, in one harness. Hosts a and b in
/// namespaces with the Linux E-VPN drivers, our reflector with graceful restart; VM a1 pings b1
/// (E-VPN) every 10 ms; b's daemon is killed, started again `--downtime` seconds later. Ours has
/// graceful restart and an attachments file. The original keeps nothing: its agent replays the
/// attachment once the new daemon answers `/ping` (here at once: the original's best case; its
/// agent polls every 10 s by default). Counted: pings lost, and the time from the new start until
/// each host holds the other's route again.
struct RestartBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Pings lost while bagpipe-bgp is killed and started again, ours against the original Python bagpipe-bgp (needs root).",
        discussion: """
            The original is networking-bagpipe 21.0.0 (the last release with the Linux E-VPN driver) with
            ExaBGP 4.2.25, from a virtualenv (--python-venv); when it is missing it is made with:
              python3 -m venv V && V/bin/pip install networking-bagpipe==21.0.0 && V/bin/pip install --no-deps exabgp==4.2.25
            """)

    @Option(parsing: .upToNextOption, help: "Daemons on host b: ours, python.") var daemons: [String] = ["ours", "python"]
    @Option(help: "Virtualenv of the original (networking-bagpipe 21.0.0).") var pythonVenv = ".build/python-bagpipe-21"
    @Option(help: "Seconds between the kill and the new start.") var downtime = 1.0
    @Option(help: "Kills per daemon.") var rounds = 3

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the restart benchmark needs root (it creates network namespaces)") }
        print("| daemon on b | kill -9, started again after | pings lost (10 ms apart), per round | traffic cut (median) | new start → both hosts hold each other's route (median) | vs ours |")
        print("|---|---|---|---|---|---|")
        var oursCut: Double?
        for daemon in daemons {
            do {
                if daemon == "python" { try ensurePython() }
                var lost: [Int] = [], back: [Double] = []
                for _ in 0..<rounds {
                    let r = try await measure(daemon)
                    lost.append(r.lost)
                    back.append(r.routesBack)
                }
                let cut = Double(lost.sorted()[lost.count / 2]) * 10
                if daemon == "ours" { oursCut = cut }
                let ratio = daemon == "ours" ? "1" : oursCut.map { $0 == 0 ? "ours loses none" : "\(format(cut / $0, 1))× more lost" } ?? ""
                print("| \(daemon) | \(format(downtime, 1)) s | \(lost.map(String.init).joined(separator: ", ")) | \(format(cut, 0)) ms | \(format(back.sorted()[back.count / 2] * 1000, 0)) ms | \(ratio) |")
            } catch {
                print("| \(daemon) | \(error) | | | | |")
            }
            fflush(nil)
        }
    }

    func ensurePython() throws { try PythonOriginal.ensure(venv: pythonVenv, version: "21.0.0") }

    func conf(_ daemon: String, address: String, store: String) -> String {
        if daemon == "python" {
            return """
                [BGP]
                local_address = \(address)
                peers = 192.0.2.254
                my_as = 64512
                enable_rtc = True
                [API]
                host = 127.0.0.1
                port = 8082
                [COMMON]
                root_helper =
                [DATAPLANE_DRIVER_EVPN]
                dataplane_driver = linux
                [DATAPLANE_DRIVER_IPVPN]
                dataplane_driver = dummy
                """
        }
        return """
            [BGP]
            local_address = \(address)
            my_as = 64512
            peers = 192.0.2.254
            graceful_restart_time = 120
            [API]
            port = 8082
            attachments_file = \(store)
            \(Lab.linuxDrivers)
            """
    }

    func measure(_ daemon: String) async throws -> (lost: Int, routesBack: Double) {
        let lab = try Lab()
        defer { lab.stop() }
        do {
            return try await measure(daemon, lab: lab)
        } catch {
            throw ValidationError("\(error)\n\(lab.logs())")
        }
    }

    func measure(_ daemon: String, lab: Lab) async throws -> (lost: Int, routesBack: Double) {
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("restart-bench-\(UUID().uuidString.prefix(6))").path
        defer {
            for h in ["a", "b"] { try? FileManager.default.removeItem(atPath: "\(store)-\(h)") }
        }
        let python = URL(fileURLWithPath: pythonVenv).standardizedFileURL.appendingPathComponent("bin/bagpipe-bgp").path
        for (i, h) in ["a", "b"].enumerated() { try lab.addHost(h, address: "192.0.2.\(i + 1)") }
        try lab.addHost("rr", address: "192.0.2.254")
        try lab.start("rr", conf: "[BGP]\nlocal_address = 192.0.2.254\nmy_as = 64512\npeers = 192.0.2.1, 192.0.2.2\nroute_reflector = True\ngraceful_restart_time = 120\n")
        // The original runs its root commands through `sudo privsep-helper`, and we are root already…
        let shim = FileManager.default.temporaryDirectory.appendingPathComponent("restart-bench-sudo-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: shim, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: shim) }
        try "#!/bin/sh\nexec \"$@\"\n".write(to: shim.appendingPathComponent("sudo"), atomically: true, encoding: .utf8)
        // …and loads the vxlan module, which this kernel has built in (modprobe finds no module).
        try "#!/bin/sh\nexit 0\n".write(to: shim.appendingPathComponent("modprobe"), atomically: true, encoding: .utf8)
        // …and drives bridges with brctl (bridge-utils), said here with ip.
        let brctl = """
            #!/bin/sh
            case "$1" in
              addbr) exec ip link add "$2" type bridge ;;
              delbr) exec ip link del "$2" ;;
              addif) exec ip link set "$3" master "$2" ;;
              delif) exec ip link set "$3" nomaster ;;
              setfd) exec ip link set "$2" type bridge forward_delay 0 ;;
              stp) exit 0 ;;
              show) printf 'bridge name\\tbridge id\\t\\tSTP enabled\\tinterfaces\\n'
                    for b in $(ip -o link show type bridge | awk -F': ' '{print $2}'); do printf '%s\\t8000.0\\tno\\t\\t\\n' "$b"; done ;;
            esac

            """
        try brctl.write(to: shim.appendingPathComponent("brctl"), atomically: true, encoding: .utf8)
        for tool in ["sudo", "modprobe", "brctl"] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: shim.appendingPathComponent(tool).path) }
        let path = "\(shim.path):\(URL(fileURLWithPath: python).deletingLastPathComponent().path):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"
        let startB = {
            try lab.start(
                "b", conf: conf(daemon, address: "192.0.2.2", store: "\(store)-b"), environment: daemon == "python" ? ["PATH": path] : [:], executable: daemon == "python" ? python : nil)
        }
        try lab.start("a", conf: conf("ours", address: "192.0.2.1", store: "\(store)-a"))
        try startB()
        for h in ["a", "b"] { _ = try await poll(timeout: 60) { (try? lab.api(h, "/looking-glass/summary")) ?? "" } until: { $0.contains(#""BGP_established_peers": 1"#) || $0.contains(#""BGP_established_peers":1"#) } }
        let attachB1 = { try lab.attachVM("b1", host: "b", ip: "10.10.0.2/24", type: "evpn", instance: "net", rt: "64512:10", mac: "52:54:00:00:0b:01", extra: ["--vni", "10"]) }
        try lab.attachVM("a1", host: "a", ip: "10.10.0.1/24", type: "evpn", instance: "net", rt: "64512:10", mac: "52:54:00:00:0a:01", extra: ["--vni", "10"])
        try attachB1()
        try await lab.pingUntil(from: "a1", "10.10.0.2", timeout: 60)
        guard let vm = lab.vms["a1"] else { throw ValidationError("no VM a1") }

        // 10 ms pings over the kill, the downtime and the return.
        let pings = Process()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("restart-bench-ping-\(UUID().uuidString.prefix(6))")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        pings.executableURL = URL(fileURLWithPath: lab.ipCommand)
        pings.arguments = ["netns", "exec", vm, "ping", "-q", "-i", "0.01", "-W", "1", "-c", "\((Int(downtime) + 20) * 100)", "10.10.0.2"]
        pings.standardOutput = try FileHandle(forWritingTo: output)
        try pings.run()
        defer { if pings.isRunning { pings.terminate() } }
        try await Task.sleep(for: .seconds(2))
        guard let b = lab.daemons["b"] else { throw ValidationError("no daemon on b") }
        kill(b.process.processIdentifier, SIGKILL)
        b.process.waitUntilExit()
        try await Task.sleep(for: .seconds(downtime))
        let start = Date()
        try startB()
        if daemon == "python" {
            // The agent's replay: the new daemon answers /ping, the attachment is posted again.
            _ = try await poll(timeout: 60) { (try? lab.api("b", "/ping")) ?? "" } until: { !$0.isEmpty }
            try attachB1()
        }
        let both = try await poll(timeout: 60) {
            let a = (try? lab.api("a", "/looking-glass/bgp/routes")) ?? "", b = (try? lab.api("b", "/looking-glass/bgp/routes")) ?? ""
            return a.lowercased().contains("52:54:00:00:0b:01") && b.lowercased().contains("52:54:00:00:0a:01") ? "back" : "not yet"
        } until: { $0 == "back" }
        let back = both == "back" ? Date().timeIntervalSince(start) : .nan
        _ = try await poll(timeout: downtime + 40) { pings.isRunning ? "running" : "done" } until: { $0 == "done" }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.contains("packets transmitted") }) else { throw ValidationError("no ping summary: \(text)") }
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        guard numbers.count >= 2 else { throw ValidationError("ping summary: \(line)") }
        return (numbers[0] - numbers[1], back)
    }
}
