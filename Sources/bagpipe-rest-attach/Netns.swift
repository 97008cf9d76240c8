import Foundation

/// The namespace helper of `--port netns` (reference §10.1): a namespace standing for a VM, joined
/// to the host by a veth pair, set up with `ip` as the original did.
enum Netns {
    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a command; throws with its output when it fails.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw CommandFailed(description: "\(arguments.joined(separator: " ")): \(text.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return text
    }

    /// Creates the namespace (if needed) and a fresh veth pair: `outside` on the host (MTU 9000, up),
    /// `inside` in the namespace (or a VLAN on it) with the address, MTU 1420 and a default route.
    static func plug(namespace: String, outside: String, inside: String, vlan: Int?, mac: String?, address: String, gateway: String) throws {
        print("Will plug local namespace \(namespace) into network")
        if (try? run(["ip", "netns", "pids", namespace])) == nil { try run(["ip", "netns", "add", namespace]) }
        let raw = vlan == nil ? inside : "ns2vpn-raw"
        // Leftovers of an earlier run: the inner end, the port in OVS (which would take it back), the outer end.
        _ = try? run(["ip", "netns", "exec", namespace, "ip", "link", "delete", raw])
        if FileManager.default.fileExists(atPath: "/usr/bin/ovs-vsctl") { _ = try? run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-port", outside]) }
        _ = try? run(["ip", "link", "delete", outside])
        try run(["ip", "link", "add", outside, "type", "veth", "peer", "name", raw, "netns", namespace, "mtu", "65535"])
        try run(["ip", "link", "set", "dev", outside, "up", "mtu", "9000"])
        try run(["ip", "netns", "exec", namespace, "ip", "link", "set", "dev", raw, "up"])
        if let vlan {
            try run(["ip", "netns", "exec", namespace, "ip", "link", "add", "link", raw, "name", inside, "type", "vlan", "id", "\(vlan)"])
            try run(["ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up"])
        }
        if let mac { try run(["ip", "netns", "exec", namespace, "ip", "link", "set", inside, "address", mac]) }
        try run(["ip", "netns", "exec", namespace, "ip", "addr", "replace", address, "dev", inside])
        try run(["ip", "netns", "exec", namespace, "ip", "link", "set", inside, "mtu", "1420"])
        _ = try? run(["ip", "netns", "exec", namespace, "ip", "route", "replace", "default", "via", gateway, "dev", inside])
    }

    /// The MAC address of an interface in a namespace.
    static func mac(namespace: String, interface: String) throws -> String {
        try run(["ip", "netns", "exec", namespace, "cat", "/sys/class/net/\(interface)/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
