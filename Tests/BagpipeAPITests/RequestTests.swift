import BGPWire
import BagpipeAPI
import BagpipeVPN
import Dataplane
import Foundation
import Testing

/// Behaviours 1-7 of the original's unit tests (reference §12), and the client errors the original
/// answered with 500.
@Suite struct RequestTests {
    static let evpn = #"{"vpn_type": "evpn", "vpn_instance_id": "net-1", "mac_address": "52:54:00:aa:bb:01", "local_port": "tap1", "import_rt": ["64512:1"], "export_rt": "64512:1"}"#
    static let ipvpn = #"{"vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": "52:54:00:aa:bb:01", "local_port": {"linuxif": "tap1"}, "import_rt": ["64512:2"], "export_rt": ["64512:2"], "ip_address": "10.0.0.5/24", "gateway_ip": "10.0.0.1"}"#

    func json(_ text: String) throws -> JSONValue { try JSONValue(parsing: text) }

    /// The request with some fields changed (nil removes one).
    func edited(_ text: String, _ changes: [String: JSONValue?]) throws -> JSONValue {
        guard case .object(var pairs) = try json(text) else { throw VPNError("not an object") }
        for (key, value) in changes {
            pairs.removeAll { $0.0 == key }
            if let value { pairs.append((key, value)) }
        }
        return .object(pairs)
    }

    func attachError(_ body: JSONValue) -> VPNError? {
        do {
            _ = try AttachRequest(json: body)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: ["vpn_instance_id", "mac_address", "local_port", "import_rt", "export_rt"])
    func behaviour1AttachWithoutAMandatoryParameter(field: String) throws {
        let e = attachError(try edited(Self.evpn, [field: nil]))
        #expect(e?.kind == .invalid && e?.message.contains(field) == true, "\(String(describing: e))")
    }

    @Test(arguments: ["vpn_instance_id", "mac_address", "local_port"])
    func behaviour2DetachWithoutAMandatoryParameter(field: String) throws {
        let body = try edited(Self.evpn, [field: nil])
        do {
            _ = try DetachRequest(json: body)
            Issue.record("accepted")
        } catch {
            #expect(error.kind == .invalid && error.message.contains(field))
        }
    }

    @Test func behaviour3ParametersAreReadIntoTypedFields() throws {
        let r = try AttachRequest(json: try json(Self.ipvpn))
        #expect(r.vpnType == .ipvpn && r.vpnInstanceID == "vrf-1" && r.localPort.linuxif == "tap1")
        #expect(r.mac == MACAddress("52:54:00:aa:bb:01") && r.importRTs == [.routeTarget(as: 64512, 2)] && r.exportRTs == [.routeTarget(as: 64512, 2)])
        #expect(r.ipAddress?.text == "10.0.0.5/24" && r.ipAddress?.prefix == IPPrefix(.v4(IPv4Address(10, 0, 0, 5)), length: 24))
        #expect(r.gatewayIP == .v4(IPv4Address(10, 0, 0, 1)) && r.direction == .both && !r.advertiseSubnet && r.vni == 0)
        let e = try AttachRequest(json: try json(Self.evpn))
        #expect(e.localPort.raw == .object([("linuxif", "tap1")]), "a string local_port is {linuxif: s}")
    }

    @Test(arguments: ["gateway_ip", "ip_address"])
    func behaviour4IPVPNNeedsItsAddresses(field: String) throws {
        let e = attachError(try edited(Self.ipvpn, [field: nil]))
        #expect(e?.kind == .invalid && e?.message.contains(field) == true)
        if field == "ip_address" {
            #expect(throws: VPNError.self) { try DetachRequest(json: try edited(Self.ipvpn, [field: nil])) }
        }
    }

    @Test func behaviour5Directions() throws {
        for (value, expected) in [(nil, Direction.both), (JSONValue.null, .both), ("to-port", .toPort), ("from-port", .fromPort), ("both", .both)] as [(JSONValue?, Direction)] {
            let body = try value.map { try edited(Self.evpn, ["direction": $0]) } ?? json(Self.evpn)
            #expect(try AttachRequest(json: body).direction == expected)
        }
        let e = attachError(try edited(Self.evpn, ["direction": "floop"]))
        #expect(e == VPNError("direction should be one of: both, to-port, from-port"))
    }

    @Test func behaviour6MalformedMACAndIP() throws {
        #expect(attachError(try edited(Self.evpn, ["mac_address": "gg:gg:gg:gg:gg:gg"])) == VPNError("MAC address gg:gg:gg:gg:gg:gg is not valid"))
        #expect(attachError(try edited(Self.ipvpn, ["ip_address": "257.303.1."])) == VPNError("IP address 257.303.1. is not valid"))
        for mac in ["52-54-00-aa-bb-01", "5254.00aa.bb01", "525400aabb01"] {
            #expect(try AttachRequest(json: try edited(Self.evpn, ["mac_address": .string(mac)])).mac == MACAddress("52:54:00:aa:bb:01"), "\(mac)")
        }
    }

    @Test func behaviour7DuplicateRouteTargetsRemovedAndCommaSeparatedStringAccepted() throws {
        let r = try AttachRequest(json: try edited(Self.evpn, ["import_rt": "64512:4, 64512:4", "export_rt": ["64512:4", "64512:5", "64512:4"]]))
        #expect(r.importRTs == [.routeTarget(as: 64512, 4)])
        #expect(r.exportRTs == [.routeTarget(as: 64512, 4), .routeTarget(as: 64512, 5)])
        #expect(try AttachRequest(json: try edited(Self.evpn, ["import_rt": "64512:4,,64512:6"])).importRTs.count == 2, "empty items skipped")
    }

    /// Where the original answered 500, a client error is a 400 with a message.
    @Test(arguments: [
        (#"{"import_rt": ["64512"]}"#, "Malformed route target"),
        (#"{"import_rt": ["70000:1"]}"#, "Malformed route target"),
        (#"{"readvertise": {"from_rt": ["64512:1"]}}"#, "'readvertise'"),
        (#"{"readvertise": {"from_rt": "64512:1", "to_rt": ["64512:2"]}}"#, "'readvertise'"),
        (#"{"attract_traffic": {"classifier": {}}}"#, "redirect_rts"),
        (#"{"advertise_subnet": 1}"#, "'advertise_subnet' must be a boolean"),
        (#"{"vpn_type": "l3vpn"}"#, "unknown vpn_type: l3vpn"),
        (#"{"vpn_type": null}"#, "missing instance_type"),
        (#"{"local_port": {"vlan": 3}}"#, "Mandatory key is missing in local_port parameter"),
        (#"{"vni": -1}"#, "'vni'"),
    ])
    func clientErrorsAre400(change: String, message: String) throws {
        guard case .object(let pairs) = try json(change) else { return }
        let body = try edited(Self.ipvpn, Dictionary(uniqueKeysWithValues: pairs.map { ($0.0, Optional($0.1)) }))
        let e = attachError(body)
        #expect(e?.kind == .invalid && e?.message.contains(message) == true, "\(String(describing: e))")
    }

    @Test func bodyThatIsNotAnObject() throws {
        #expect(attachError(try json("[1, 2]"))?.kind == .invalid)
        #expect(attachError(.string("x"))?.kind == .invalid)
    }

    @Test func jsonKeepsBooleansAndNumbersApart() throws {
        #expect(try json("true") == .bool(true))
        #expect(try json("1") == .int(1))
        #expect(try json("1.5") == .double(1.5))
        #expect(try json(#"{"a": [null, "x"]}"#) == .object([("a", .array([.null, "x"]))]))
    }
}

/// `local_port` is parsed into typed fields at the edge: the drivers never read its JSON.
@Suite struct LocalPortTests {
    @Test func ovsAndVLANFieldsAreTyped() {
        let port = LocalPort(linuxif: "tap1", raw: .object([
            ("linuxif", "tap1"), ("vlan", JSONValue(12)),
            ("ovs", .object([("plugged", .bool(true)), ("port_number", "77"), ("port_name", "tap1"), ("vlan", JSONValue(30))])),
        ]))
        #expect(port.vlan == 12)
        #expect(port.ovs == LocalPort.OVSPort(plugged: true, portNumber: 77, portName: "tap1", vlan: 30))
        // A string is only a linux interface; a VLAN that is not an integer is none.
        let plain = LocalPort(linuxif: "tap2", raw: .object([("linuxif", "tap2"), ("vlan", "x")]))
        #expect(plain.ovs == nil && plain.vlan == nil)
    }
}
