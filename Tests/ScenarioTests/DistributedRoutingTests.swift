import BagpipeLab
import ControllerLab
import Foundation
import Testing

/// Issue 17, acceptance 1 and 2: Neutron routers realized on every host that has a port on one of
/// their networks, created through the controller's API only (no BGPVPN). Three hosts, a router
/// with three subnets and a VM of each on a different host: every VM reaches every other, the
/// inter-subnet packets go from the source host straight to the destination host (a capture on the
/// underlay), and a second router's networks stay apart. An interface removed cuts its subnet off;
/// added back, it is reachable again.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DistributedRoutingTests {
    @Test(arguments: ComputeLab.Dataplane.allCases)
    func routersAcrossThreeHosts(_ dataplane: ComputeLab.Dataplane) async throws {
        let hosts = ["compute-1", "compute-2", "compute-3"]
        let c = try ComputeLab(hosts: hosts, dataplane: dataplane)
        defer { c.stop() }
        var step = "start"
        do {
            try await c.start()
            step = "router 1 with three subnets, a VM of each on another host"
            let r1 = try await c.router("r1")
            var nets: [ComputeLab.NetworkInfo] = []
            var vms: [VM] = []
            for (i, host) in hosts.enumerated() {
                let net = try await c.makeNetwork("net\(i + 1)", cidr: "10.\(i + 1).0.0/24")
                try await c.addInterface(router: r1, subnet: net.subnetID)
                nets.append(net)
                let name = "v\(i + 1)"
                vms.append(VM(name: name, port: try await c.bootVM(name, network: net.id, host: host, gateway: net.gateway), host: host))
            }
            step = "router 2 with two subnets"
            let r2 = try await c.router("r2")
            var others: [VM] = []
            for (i, host) in [hosts[0], hosts[2]].enumerated() {
                let net = try await c.makeNetwork("other\(i + 1)", cidr: "10.\(i + 4).0.0/24")
                try await c.addInterface(router: r2, subnet: net.subnetID)
                let name = "w\(i + 1)"
                others.append(VM(name: name, port: try await c.bootVM(name, network: net.id, host: host, gateway: net.gateway), host: host))
            }

            step = "every VM of a router reaches every other"
            var silent = await c.pingAll(vms)
            #expect(silent.isEmpty, "\(silent)\n\(silent.isEmpty ? "" : c.diagnostics())")
            silent = await c.pingAll(others)
            #expect(silent.isEmpty, "router 2: \(silent)")

            step = "the two routers stay apart"
            var answering = await c.noneAnswer(from: vms, to: others, settle: 0)
            #expect(answering.isEmpty, "router 1 reaches router 2's networks: \(answering)")
            answering = await c.noneAnswer(from: others, to: vms, settle: 0)
            #expect(answering.isEmpty, "router 2 reaches router 1's networks: \(answering)")

            step = "inter-subnet traffic goes host to host"
            let hops = try await Self.underlayDestinations(c, from: hosts[0]) {
                for _ in 0..<5 { _ = c.lab.ping(from: "v1", vms[2].ip) }
            }
            #expect((hops["192.0.2.3"] ?? 0) >= 5, "v1 (compute-1) → v3 (compute-3) left compute-1 for: \(hops)")
            #expect(hops.keys.allSatisfy { $0 == "192.0.2.3" }, "nothing but compute-3 on the way: \(hops)")

            step = "net2's interface removed"
            // v2 pings v1 every 20 ms meanwhile: its last answer tells when the cut took effect.
            let load = try Self.timestampedPings(c, from: "v2", to: vms[0].ip)
            defer { load.stop() }
            _ = try await poll(timeout: 10) { load.log } until: { $0.contains("bytes from") }
            let removing = Date().timeIntervalSince1970
            try await c.removeInterface(router: r1, subnet: nets[1].subnetID)
            answering = await c.noneAnswer(from: [vms[1]], to: [vms[0], vms[2]])
            #expect(answering.isEmpty, "net2 still reaches: \(answering)")
            load.kill()
            let replies = load.log.split(separator: "\n").filter { $0.contains("bytes from") }.compactMap { Double($0.dropFirst().prefix { $0 != "]" }) }
            if let last = replies.last {
                print("distributed routing (\(dataplane)): net2's last answer \(String(format: "%.3f", last - removing)) s after the remove_router_interface request")
            }
            answering = await c.noneAnswer(from: [vms[0], vms[2]], to: [vms[1]], settle: 0)
            #expect(answering.isEmpty, "net2 still reached: \(answering)")
            silent = await c.pingAll([vms[0], vms[2]], timeout: 20)
            #expect(silent.isEmpty, "the others still talk: \(silent)")

            step = "net2's interface added back"
            try await c.addInterface(router: r1, subnet: nets[1].subnetID)
            silent = await c.pingAll(vms)
            #expect(silent.isEmpty, "\(silent)")
        } catch {
            record(step, error, c)
        }
    }

    /// `ping -D` every 20 ms from a VM, in the background (its output, timestamped, in its log).
    static func timestampedPings(_ c: ComputeLab, from vm: String, to address: String) throws -> Daemon {
        guard let ns = c.lab.vms[vm] else { throw Lab.LabError("no VM \(vm)") }
        return try Daemon(name: "ping", executable: c.lab.ipCommand, arguments: ["netns", "exec", ns, "ping", "-D", "-n", "-i", "0.02", "-W", "1", address], files: [:])
    }

    /// The outer destinations (other than BGP and the controller) of the packets that leave `host`
    /// on the underlay while `traffic` runs, with their counts: captured on the underlay bridge's
    /// port of that host.
    static func underlayDestinations(_ c: ComputeLab, from host: String, _ traffic: () -> Void) async throws -> [String: Int] {
        let filter = "ip and src host \(c.lab.addresses[host] ?? "") and not tcp port 179 and not host 192.0.2.250"
        let capture = try Daemon(
            name: "tcpdump", executable: c.lab.ipCommand,
            arguments: ["netns", "exec", c.lab.underlay, "tcpdump", "-U", "-n", "-Z", "root", "-i", "port-\(host)", "-w", "$DIR/underlay.pcap", filter], files: [:])
        defer { capture.stop() }
        // tcpdump says "listening on …" once it captures.
        _ = try await poll(timeout: 10) { capture.log } until: { $0.contains("listening") }
        traffic()
        capture.kill()
        var hops: [String: Int] = [:]
        // "12:00:00.000000 IP 192.0.2.1.54321 > 192.0.2.3.4789: VXLAN …" (or "… > 192.0.2.3: GREv0 …")
        for line in try run(["tcpdump", "-n", "-r", capture.directory.appendingPathComponent("underlay.pcap").path]).split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let gt = words.firstIndex(of: ">"), gt + 1 < words.count else { continue }
            let address = words[gt + 1].trimmingCharacters(in: [":"]).split(separator: ".").prefix(4).joined(separator: ".")
            hops[address, default: 0] += 1
        }
        return hops
    }
}
