import AgentCore
import Dispatch
import Foundation
import Netlink

/// What the agent needs from the host's dataplane: which VM interfaces are there, each put where
/// bagpipe-bgp expects it (the L2 agent's job), and the host facts the attachments carry.
public protocol PortPlugger: Sendable {
    /// Prepares the host (bridges, patches); called once before the first scan.
    func setUp() async throws
    /// The ports of `wanted` whose interface is on this host, plugged; ports that went are absent.
    func scan(wanted: [String: ViewPort]) async throws -> [String: PortPlug]
    /// What IP VPN attachments name on Open vSwitch; nil on Linux.
    var patchPorts: OVSPatchPorts? { get }
    /// The gateway rules of the networks with an L3 BGPVPN, per local VLAN (Open vSwitch, §4.6).
    func redirectGateways(_ wanted: [Int: GatewayRedirect]) async throws
    /// An element each time the host's interfaces may have changed, so that the agent looks at once
    /// (its periodic look is the safety net); empty when the dataplane cannot tell.
    func changes() -> AsyncStream<Void>
    /// Lays the host out again if its dataplane lost what `setUp` made (ovs-vswitchd restarted);
    /// true when it did.
    func repairIfReset() async throws -> Bool
}

extension PortPlugger {
    public func repairIfReset() async throws -> Bool { false }
    public func redirectGateways(_ wanted: [Int: GatewayRedirect]) async throws {}
    public func changes() -> AsyncStream<Void> { AsyncStream { $0.finish() } }
}

/// Neutron's names: a VM's interface is `tap<first 11 characters of the port id>`, its network's
/// bridge `brq<first 11 characters of the network id>`.
public enum NeutronDeviceNames {
    public static func tap(_ portID: String) -> String { "tap" + portID.prefix(11) }
    public static func bridge(_ networkID: String) -> String { "brq" + networkID.prefix(11) }
}

/// Linux bridges over netlink, as the Linux bridge agent does: a tap that appears is put in its
/// network's bridge (created when missing) and brought up. Netlink calls are blocking system
/// calls: they run on a queue of their own, never on the agent's executor.
public final class LinuxPortPlugger: PortPlugger, @unchecked Sendable {
    private let queue = DispatchQueue(label: "bagpipe-agent.netlink")
    private let netlink: NetlinkSocket
    /// A bridge the agent created carries this alias (so that an operator sees whose it is).
    public static let alias = "bagpipe-agent"

    public init() throws { netlink = try NetlinkSocket() }

    public var patchPorts: OVSPatchPorts? { nil }

    public func setUp() async throws {}

    /// The kernel's link notifications, read on a thread of their own (the read blocks).
    public func changes() -> AsyncStream<Void> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let thread = Thread {
                guard let monitor = try? LinkMonitor() else { return continuation.finish() }
                while (try? monitor.wait()) != nil { continuation.yield() }
                continuation.finish()
            }
            thread.name = "bagpipe-agent.links"
            thread.start()
        }
    }

    public func scan(wanted: [String: ViewPort]) async throws -> [String: PortPlug] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.scanOnQueue(wanted) })
            }
        }
    }

    func scanOnQueue(_ wanted: [String: ViewPort]) throws -> [String: PortPlug] {
        var links = try netlink.links()
        var byName: [String: Link] = [:]
        for l in links { byName[l.name] = l }
        var plugged: [String: PortPlug] = [:]
        for (id, port) in wanted {
            let tap = NeutronDeviceNames.tap(id)
            guard let device = byName[tap] else { continue }
            let bridgeName = NeutronDeviceNames.bridge(port.networkID)
            if byName[bridgeName] == nil {
                try netlink.performAll(LinkRequests.createBridge(bridgeName, alias: Self.alias))
                links = try netlink.links()
                for l in links { byName[l.name] = l }
            }
            guard let bridge = byName[bridgeName] else { continue }
            var requests: [NetlinkRequest] = []
            if !bridge.isUp { requests.append(LinkRequests.set(bridge.index, name: bridgeName, up: true)) }
            if device.master != bridge.index || !device.isUp { requests.append(LinkRequests.set(device.index, name: tap, up: true, master: bridge.index)) }
            if !requests.isEmpty {
                try netlink.performAll(requests)
                byName[bridgeName]?.isUp = true
            }
            plugged[id] = .linux(tap: tap, bridge: bridgeName)
        }
        return plugged
    }
}
