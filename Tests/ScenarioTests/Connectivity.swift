import BagpipeLab
import ControllerLab
import Foundation
import Testing

/// A VM of a scenario: its name (the namespace's key in the lab), its port and its address.
struct VM: Sendable, CustomStringConvertible {
    var name: String
    var port: ComputeLab.VMPort
    var host: String
    var ip: String { port.ip }
    var description: String { "\(name)(\(ip) on \(host))" }

    /// The same VM, pinged at another of its addresses.
    func at(_ address: String) -> VM {
        var v = self
        v.port.ip = address
        return v
    }
}

extension ComputeLab {
    /// `count` VMs per host on one network, named `<prefix><host index><letter>`, with fixed IPs when
    /// `address` gives one for (host index, VM index).
    func bootVMs(_ prefix: String, network: NetworkInfo, perHost count: Int, hosts: [String]? = nil, address: ((Int, Int) -> String)? = nil) async throws -> [VM] {
        var vms: [VM] = []
        for (h, host) in (hosts ?? self.hosts).enumerated() {
            for i in 0..<count {
                let name = "\(prefix)\(h + 1)\(Character(UnicodeScalar(UInt8(97 + i))))"
                let port = try await bootVM(name, network: network.id, host: host, gateway: network.gateway, ip: address?(h, i))
                vms.append(VM(name: name, port: port, host: host))
            }
        }
        return vms
    }

    /// networking-bagpipe's `ping_all`: every VM pings every other one, both ways. Pairs are tried
    /// again until all answer or `timeout` seconds pass; the pairs still silent then are returned.
    func pingAll(_ vms: [VM], timeout: Double = 60) async -> [String] {
        var silent = vms.flatMap { a in vms.filter { $0.name != a.name }.map { (a, $0) } }
        let deadline = Date().addingTimeInterval(timeout)
        while !silent.isEmpty && Date() < deadline {
            silent = await sweep(silent, keeping: false)
        }
        return silent.map { "\($0.0) → \($0.1)" }.sorted()
    }

    /// Every pair of `from` × `to` is silent. The pairs that still answer are pinged again until
    /// none does (a change takes up to `settle` seconds to reach the dataplane; polled, not slept),
    /// then every pair once more: the pairs that answered that last time are returned.
    func noneAnswer(from: [VM], to: [VM], settle: Double = 20) async -> [String] {
        let pairs = from.flatMap { a in to.filter { $0.name != a.name }.map { (a, $0) } }
        let deadline = Date().addingTimeInterval(settle)
        var answering = pairs
        repeat {
            answering = await sweep(answering, keeping: true)
        } while !answering.isEmpty && Date() < deadline
        if answering.isEmpty { answering = await sweep(pairs, keeping: true) }
        return answering.map { "\($0.0) → \($0.1)" }.sorted()
    }

    /// One ping per pair, the pairs of each source VM in a task of their own; the pairs that answered
    /// (`keeping` true) or that did not.
    func sweep(_ pairs: [(VM, VM)], keeping answered: Bool) async -> [(VM, VM)] {
        await withTaskGroup(of: [(VM, VM)].self) { group in
            for source in Set(pairs.map(\.0.name)).sorted() {
                let mine = pairs.filter { $0.0.name == source }
                group.addTask { mine.filter { self.lab.ping(from: $0.0.name, $0.1.ip) == answered } }
            }
            var out: [(VM, VM)] = []
            for await s in group { out += s }
            return out
        }
    }
}

/// Records the failure with what the lab shows.
func record(_ step: String, _ error: any Error, _ lab: ComputeLab) {
    Issue.record("\(step): \(error)\n\(lab.diagnostics())")
}

extension ComputeLab.Reflector: CustomTestStringConvertible {
    public var testDescription: String { self == .gobgp ? "gobgpd reflector" : "our reflector" }
}
