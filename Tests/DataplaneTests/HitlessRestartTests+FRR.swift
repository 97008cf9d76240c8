import BagpipeLab
import Foundation

extension HitlessRestartTests {
    /// FRR's bgpd as the reflector, standalone (no zebra: every next hop counts as reachable), with
    /// graceful restart: the helper of a restarting client (for VPNv4; FRR 8.4 is none for EVPN).
    static func startFRRReflector(_ lab: Lab, namespace: String, clients: [String]) throws -> Daemon {
        let neighbors = clients.map { c in
            " neighbor \(c) remote-as 64512\n neighbor \(c) passive\n neighbor \(c) timers 3 9"
        }.joined(separator: "\n")
        let families = ["ipv4 vpn", "l2vpn evpn"].map { family in
            " address-family \(family)\n" + clients.map { "  neighbor \($0) activate\n  neighbor \($0) route-reflector-client" }.joined(separator: "\n") + "\n exit-address-family"
        }.joined(separator: "\n")
        let configuration = """
            frr defaults traditional
            hostname rr
            log stdout informational
            router bgp 64512
             bgp router-id 192.0.2.254
             bgp cluster-id 1.2.3.4
             no bgp default ipv4-unicast
             bgp graceful-restart
             bgp graceful-restart restart-time \(restartTime)
            \(neighbors)
            \(families)
            exit
            """
        return try Daemon(
            name: "frr-rr", executable: lab.ipCommand,
            arguments: ["netns", "exec", namespace, "/usr/lib/frr/bgpd", "-f", "$DIR/bgpd.conf", "-S", "-Z", "-n", "-l", "192.0.2.254", "-p", "179", "-P", "0",
                "--vty_socket", "$DIR", "-i", "$DIR/bgpd.pid", "-u", "root", "-g", "root"],
            files: ["bgpd.conf": configuration])
    }
}
