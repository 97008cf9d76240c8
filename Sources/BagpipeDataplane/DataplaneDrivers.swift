import BGPWire
import BagpipeConfig
import BagpipeVPN

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
        default:
            throw Unavailable(description: "[DATAPLANE_DRIVER_\(type.rawValue.uppercased())] dataplane_driver = \(options.driver): not available in this version")
        }
    }
}
