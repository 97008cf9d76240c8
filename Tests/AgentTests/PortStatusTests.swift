import BagpipeLab
import ControllerLab
import Foundation
import NeutronModel
import Testing

/// `PUT /v2.0/agent/hosts/<host>/port_status`: many ports in one write; unknown ports named, a port
/// of another host refused with nothing changed, bad bodies refused.
@Suite struct PortStatusTests {
    @Test func manyPortsInOneWriteAndOnlyTheHostsOwn() async throws {
        let c = try await ControllerDaemon()
        defer { c.stop() }
        let admin = try await c.token("admin"), agent = try await c.token("compute-1")
        let net = try #require(try await c.request(.POST, "/v2.0/networks", token: admin, body: #"{"network": {"name": "n"}}"#).json?["network"]?["id"]?.stringValue)
        func port(_ host: String) async throws -> String {
            try #require(try await c.request(.POST, "/v2.0/ports", token: admin, body: #"{"port": {"network_id": "\#(net)", "binding:host_id": "\#(host)"}}"#).json?["port"]?["id"]?.stringValue)
        }
        let mine = [try await port("compute-1"), try await port("compute-1")], theirs = try await port("compute-2")
        func status(_ id: String) async throws -> String? { try await c.request(.GET, "/v2.0/ports/\(id)", token: admin).json?["port"]?["status"]?.stringValue }
        let ghost = UUID().uuidString.lowercased()
        let ok = try await c.request(.PUT, "/v2.0/agent/hosts/compute-1/port_status", token: agent, body: #"{"ports": {"\#(mine[0])": "ACTIVE", "\#(mine[1])": "ACTIVE", "\#(ghost)": "DOWN"}}"#)
        #expect(ok.status == 200, "\(ok.body)")
        #expect(ok.json?["unknown"] == .strings([ghost]) && ok.json?["ports"]?[mine[0]] == "ACTIVE", "\(ok.body)")
        for id in mine { #expect(try await status(id) == "ACTIVE") }
        // Another host's port in the batch: refused, and the batch's other ports unchanged.
        let refused = try await c.request(.PUT, "/v2.0/agent/hosts/compute-1/port_status", token: agent, body: #"{"ports": {"\#(mine[0])": "DOWN", "\#(theirs)": "ACTIVE"}}"#)
        #expect(refused.status == 403 && refused.json?["NeutronError"] != nil, "\(refused.body)")
        #expect(try await status(mine[0]) == "ACTIVE")
        #expect(try await status(theirs) == "DOWN")
        // Another host's path, bad bodies.
        #expect(try await c.request(.PUT, "/v2.0/agent/hosts/compute-2/port_status", token: agent, body: #"{"ports": {}}"#).status == 403)
        for body in [#"{"ports": {"\#(mine[0])": "UP"}}"#, #"{"ports": []}"#, #"{"port": {}}"#, #"{"ports": {}, "x": 1}"#] {
            let r = try await c.request(.PUT, "/v2.0/agent/hosts/compute-1/port_status", token: agent, body: body)
            #expect(r.status == 400 && r.json?["NeutronError"] != nil, "\(body): \(r.status) \(r.body)")
        }
        #expect(try await c.request(.GET, "/v2.0/agent/hosts/compute-1/port_status", token: agent).status == 405)
    }
}
