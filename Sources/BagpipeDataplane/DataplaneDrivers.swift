import BGPWire
import BagpipeConfig
import Dataplane
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Builds the dataplane driver a `[DATAPLANE_DRIVER_*]` section names (reference §3.4, §9).
public enum DataplaneDrivers {
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// The driver for one VPN type; its checks of the host run here (as the original's driver
    /// `__init__`), so that a host that cannot run it stops the daemon at start-up.
    public static func make(_ options: DataplaneDriverOptions, bgpAddress: IPv4Address) throws -> any DataplaneDriver {
        let type: VPNType = options.vpnType == .evpn ? .evpn : .ipvpn
        let address = options.localAddress ?? bgpAddress
        switch options.driver {
        case "dummy":
            return DummyDriver(vpnType: type, localAddress: address)
        case "ovs" where type == .evpn:
            return try OVSEVPNDriver(localAddress: address, options: options.driverOptions)
        case "ovs":
            return try OVSIPVPNDriver(localAddress: address, options: options.driverOptions)
        case "linux" where type == .evpn:
            return try LinuxEVPNDriver(localAddress: address, options: options.driverOptions)
        case "linux":
            // The original's IP VPN linux driver is MPLS; this kernel family forwards IP VPN over VXLAN.
            switch options.driverOptions["encapsulation"] ?? "vxlan" {
            case "vxlan": return try LinuxIPVPNDriver(localAddress: address, options: options.driverOptions)
            case "mpls":
                let hasMPLS = access("/proc/sys/net/mpls", F_OK) == 0
                throw Unavailable(
                    description: hasMPLS
                        ? "[DATAPLANE_DRIVER_IPVPN] encapsulation = mpls: the MPLS variant of the linux driver is not in this version; use encapsulation = vxlan"
                        : "[DATAPLANE_DRIVER_IPVPN] encapsulation = mpls: this kernel has no MPLS routing (/proc/sys/net/mpls is missing); use encapsulation = vxlan")
            case let other: throw Unavailable(description: "[DATAPLANE_DRIVER_IPVPN] encapsulation: '\(other)' is not vxlan or mpls")
            }
        default:
            throw Unavailable(description: "[DATAPLANE_DRIVER_\(type.rawValue.uppercased())] dataplane_driver = \(options.driver): not available in this version")
        }
    }

    /// A driver's logger: its warnings are in the looking glass under `driver-<type>`.
    static func logger(_ type: VPNType) -> Logger {
        var l = Logger(label: "bagpipe.dataplane.\(type.rawValue)")
        l[metadataKey: "lg"] = .string("driver-\(type.rawValue)")
        return l
    }

    /// `reconcile_interval` of an Open vSwitch driver: seconds between checks that its rules are
    /// still there (2 by default, as the Neutron agent's canary check); 0 turns the check off.
    static func reconcileInterval(_ options: [String: String], type: VPNType) throws -> Double? {
        guard let text = options["reconcile_interval"] else { return 2 }
        guard let v = Double(text), v >= 0, v <= 3600 else {
            throw Unavailable(description: "[DATAPLANE_DRIVER_\(type.rawValue.uppercased())] reconcile_interval: '\(text)' is not a number of seconds (0 to 3600)")
        }
        return v == 0 ? nil : v
    }

    /// A boolean option of a driver section; `fallback` when absent.
    static func bool(_ options: [String: String], _ key: String, type: VPNType, fallback: Bool = false) throws -> Bool {
        guard let text = options[key] else { return fallback }
        guard let b = parseBoolean(text) else { throw Unavailable(description: "[DATAPLANE_DRIVER_\(type.rawValue.uppercased())] \(key): '\(text)' is not a boolean") }
        return b
    }

    /// A UDP port option of a driver section; nil when absent.
    static func udpPort(_ options: [String: String], _ key: String, type: VPNType) throws -> UInt16? {
        guard let text = options[key] else { return nil }
        guard let p = UInt16(text), p > 0 else { throw Unavailable(description: "[DATAPLANE_DRIVER_\(type.rawValue.uppercased())] \(key): '\(text)' is not a UDP port") }
        return p
    }
}
