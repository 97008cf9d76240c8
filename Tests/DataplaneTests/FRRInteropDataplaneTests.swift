import BagpipeLab
import Foundation
import Testing

/// Issue 6, acceptance 3: FRR in a namespace of its own as a VTEP (zebra and bgpd, its own bridge
/// and VXLAN device, `advertise-all-vni`) shares an L2 segment with a bagpipe host through our route
/// reflector; a host behind FRR and our VM ping each other over VXLAN.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FRRInteropDataplaneTests {
    @Test func aHostBehindFRRAndOurVMShareASegment() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/lib/frr/zebra") else {
            Issue.record("FRR is not installed (scripts/test.sh installs it)")
            return
        }
        let lab = try Lab()
        var frr: [Daemon] = []
        defer {
            for d in frr { d.stop() }
            lab.stop()
        }
        for (name, address) in [("a", "192.0.2.1"), ("rr", "192.0.2.254"), ("frr", "192.0.2.10")] { try lab.addHost(name, address: address) }
        let frrNS = try #require(lab.hosts["frr"])
        // FRR's side: a bridge with its VXLAN device (VNI 100) and a host behind it.
        try run(["ip", "-n", frrNS, "link", "add", "br100", "type", "bridge"])
        try run(["ip", "-n", frrNS, "link", "add", "vx100", "type", "vxlan", "id", "100", "local", "192.0.2.10", "dstport", "4789", "nolearning"])
        try run(["ip", "-n", frrNS, "link", "set", "vx100", "master", "br100", "up"])
        try run(["ip", "-n", frrNS, "link", "set", "br100", "up"])
        let behind = try lab.spaces.add("lab-behind")
        lab.vms["behind"] = behind
        try run(["ip", "link", "add", "eth0", "netns", behind, "type", "veth", "peer", "name", "to-behind", "netns", frrNS])
        try run(["ip", "-n", frrNS, "link", "set", "to-behind", "master", "br100", "up"])
        try run(["ip", "-n", behind, "link", "set", "eth0", "up"])
        try run(["ip", "-n", behind, "addr", "add", "10.100.0.50/24", "dev", "eth0"])
        // zebra and bgpd in that namespace, as FRR's own user, with their files in folders it can write.
        func folder(_ name: String) throws -> URL {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-\(name)-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
            return url
        }
        let zebra = try Daemon(
            name: "frr-zebra", executable: lab.ipCommand,
            arguments: ["netns", "exec", frrNS, "/usr/lib/frr/zebra", "-f", "$DIR/zebra.conf", "-i", "$DIR/zebra.pid", "-z", "$DIR/zserv.api", "--vty_socket", "$DIR"],
            files: ["zebra.conf": "hostname frr\n"], directory: try folder("zebra"))
        frr.append(zebra)
        let bgpd = try Daemon(
            name: "frr-bgpd", executable: lab.ipCommand,
            arguments: ["netns", "exec", frrNS, "/usr/lib/frr/bgpd", "-f", "$DIR/bgpd.conf", "-i", "$DIR/bgpd.pid", "-z", "\(zebra.directory.path)/zserv.api", "--vty_socket", "$DIR", "-p", "179"],
            files: ["bgpd.conf": """
                router bgp 64512
                 bgp router-id 192.0.2.10
                 no bgp default ipv4-unicast
                 neighbor 192.0.2.254 remote-as 64512
                 address-family l2vpn evpn
                  neighbor 192.0.2.254 activate
                  advertise-all-vni
                 exit-address-family
                """], directory: try folder("bgpd"))
        frr.append(bgpd)
        try lab.startReflector("rr", peers: ["a", "frr"])
        try lab.startHost("a", reflector: "rr")
        func vtysh(_ command: String) -> String {
            (try? run(["vtysh", "--vty_socket", bgpd.directory.path, "-d", "bgpd", "-c", command])) ?? ""
        }
        do {
            try await lab.waitEstablished("a")
            _ = try await poll(timeout: 30) { vtysh("show bgp l2vpn evpn summary") } until: { $0.contains("192.0.2.254") && !$0.contains("Active") && !$0.contains("Connect") }
            // Our VM in the E-VPN of VNI 100 (FRR's auto route target is 64512:100).
            try lab.attachVM("vm", host: "a", ip: "10.100.0.1/24", type: "evpn", instance: "vni100", rt: "64512:100", mac: "52:54:00:00:64:01", extra: ["--vni", "100"])
            // FRR's type-3 route reaches our flood list, ours reaches FRR's VXLAN device.
            _ = try await poll(timeout: 30) { try lab.fdb("a") } until: { $0.contains("00:00:00:00:00:00 dst 192.0.2.10") }
            _ = try await poll(timeout: 30) { try run(["bridge", "-n", frrNS, "fdb", "show", "dev", "vx100"]) } until: { $0.contains("dst 192.0.2.1") }
            try await lab.pingUntil(from: "behind", "10.100.0.1", timeout: 30)
            try await lab.pingUntil(from: "vm", "10.100.0.50", timeout: 10)
            // FRR learned our VM's MAC from our type-2 route, and we learned the host's from FRR's.
            _ = try await poll(timeout: 20) { vtysh("show bgp l2vpn evpn route") } until: { $0.contains("52:54:00:00:64:01") }
            let behindMAC = try run(["ip", "netns", "exec", behind, "cat", "/sys/class/net/eth0/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try await poll(timeout: 20) { try lab.fdb("a") } until: { $0.contains("\(behindMAC) dst 192.0.2.10") }
        } catch {
            var frrFDB = (try? run(["bridge", "-n", frrNS, "fdb", "show", "dev", "vx100"])) ?? ""
            frrFDB += (try? run(["ip", "-n", behind, "neigh"])) ?? ""
            frrFDB += (try? lab.exec("vm", ["ip", "neigh"])) ?? ""
            frrFDB += (try? lab.exec("a", ["ip", "-s", "link"])) ?? ""
            frrFDB += (try? run(["ip", "-n", frrNS, "-s", "link"])) ?? ""
            Issue.record("\(error)\nours: \((try? lab.fdb("a")) ?? "")\nFRR's FDB: \(frrFDB)\nFRR: \(vtysh("show bgp l2vpn evpn route"))\n\(vtysh("show evpn vni"))\nbgpd: \(bgpd.log.suffix(1500))\nzebra: \(zebra.log.suffix(800))\n\(lab.logs())")
        }
    }
}
