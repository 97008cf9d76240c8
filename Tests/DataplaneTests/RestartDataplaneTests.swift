import BagpipeLab
import Foundation
import Testing

/// Issue 6, acceptance 4: bagpipe-bgp stops and starts again on a host, cleanly (SIGTERM) and by a
/// crash (SIGKILL, everything left in the kernel). Its attachments come back from
/// `[API] attachments_file`; the start-up reconciliation leaves exactly the kernel objects there were
/// before, no stale and no duplicate ones; pings resume once the routes are back.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RestartDataplaneTests {
    /// Our kernel objects on a host, in words that do not depend on interface indexes.
    static func snapshot(_ lab: Lab, _ host: String) throws -> [String] {
        let links = try lab.exec(host, ["ip", "-o", "-d", "link", "show"]).split(separator: "\n").filter { $0.contains("alias bagpipe:") }.map { line in
            String(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0])
        }
        let fdb = try lab.fdb(host).split(separator: "\n").filter { !$0.contains("master") || $0.contains("static") }.map(String.init)
        let rules = try lab.exec(host, ["ip", "rule", "show"]).split(separator: "\n").filter { $0.contains("proto 19") }.map(String.init)
        let routes = try lab.exec(host, ["ip", "route", "show", "table", "all", "proto", "19"]).split(separator: "\n").map(String.init)
        let neighbours = try lab.exec(host, ["ip", "neigh", "show"]).split(separator: "\n").filter { $0.contains("PERMANENT") }.map(String.init)
        return (links.map { "link \($0)" } + fdb.map { "fdb \($0)" } + rules + routes + neighbours.map { "neigh \($0)" }).sorted()
    }

    @Test(arguments: ["SIGTERM", "SIGKILL"])
    func restartReconcilesAndTrafficResumes(signal: String) async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("attachments-\(UUID().uuidString.prefix(6)).json").path
        defer { try? FileManager.default.removeItem(atPath: store) }
        try lab.startHosts(["a", "b"], extra: ["b": "attachments_file = \(store)"])
        do {
            for h in ["a", "b"] { try await lab.waitEstablished(h) }
            try lab.attachVM("a1", host: "a", ip: "10.10.0.1/24", type: "evpn", instance: "net", rt: "64512:10", mac: "52:54:00:00:0a:01")
            try lab.attachVM("b1", host: "b", ip: "10.10.0.2/24", type: "evpn", instance: "net", rt: "64512:10", mac: "52:54:00:00:0b:01")
            try lab.attachVM("a2", host: "a", ip: "10.20.1.1/24", type: "ipvpn", instance: "vrf", rt: "64512:20")
            try lab.attachVM("b2", host: "b", ip: "10.20.2.1/24", type: "ipvpn", instance: "vrf", rt: "64512:20")
            try await lab.pingUntil(from: "a1", "10.10.0.2")
            try await lab.pingUntil(from: "a2", "10.20.2.1")
            let before = try Self.snapshot(lab, "b")
            #expect(before.contains { $0.hasPrefix("link bgpe-") } && before.contains { $0.contains("tun_id") } && before.contains { $0.contains("encap ip") }, "\(before)")

            // Stop B's daemon: cleanly, or as a crash that leaves everything in the kernel.
            let daemon = try #require(lab.daemons["b"])
            if signal == "SIGKILL" {
                kill(daemon.process.processIdentifier, SIGKILL)
                daemon.process.waitUntilExit()
                #expect(try Self.snapshot(lab, "b") == before, "a crash leaves the kernel objects")
            } else {
                daemon.kill()
                let after = try Self.snapshot(lab, "b")
                #expect(!after.contains { $0.hasPrefix("link ") || $0.contains("proto 19") }, "a clean stop removes its objects: \(after)")
            }
            try lab.startHost("b", reflector: "rr", extra: "attachments_file = \(store)")
            try await lab.waitEstablished("b")
            // The attachments come back from the file; traffic resumes once the routes are back.
            try await lab.pingUntil(from: "a1", "10.10.0.2", timeout: 30)
            try await lab.pingUntil(from: "a2", "10.20.2.1", timeout: 30)
            try await lab.pingUntil(from: "b1", "10.10.0.1", timeout: 10)
            let again = try await poll(timeout: 20) { try Self.snapshot(lab, "b").joined(separator: "\n") } until: { $0 == before.joined(separator: "\n") }
            #expect(again == before.joined(separator: "\n"), "exactly the objects of before, none stale, none twice")
            let log = lab.daemons["b"].map(\.log) ?? ""
            #expect(log.contains("2 attachments plugged again"), "\(log)")
        } catch {
            Issue.record("\(error)\n\(lab.logs())")
        }
    }
}
