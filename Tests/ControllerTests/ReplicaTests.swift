import ControllerLab
import BagpipeLab
import Foundation
import NeutronModel
import Testing

/// Issue 13, acceptance 5: several controllers on one PostgreSQL database, and a controller killed
/// in the middle of a burst of writes.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReplicaTests {
    @Test func aWriteOnOneReplicaReachesTheOthersWatchersAndReads() async throws {
        guard let database = try TestPostgres.freshDatabase() else { return }
        let a = try await ControllerDaemon(database: database)
        defer { a.stop() }
        let b = try await ControllerDaemon(database: database)
        defer { b.stop() }
        // A token from one replica is good on the other (they share the signing key).
        let admin = try await a.token("admin")
        let agent = try await b.token("compute-1")
        let view = try await b.request(.GET, "/v2.0/agent/hosts/compute-1/view", token: agent)
        guard case .int(let version)? = view.json?["resource_version"] else { throw ControllerTestError("view: \(view.status) \(view.body)") }
        let watch = try await WatchTests.WatchStream(b, host: "compute-1", from: version, token: agent)
        defer { watch.close() }
        // Writes on A, in turn with writes on B (each replica writes after catching up).
        let net = try await a.request(.POST, "/v2.0/networks", token: admin, body: #"{"network": {"name": "from-a"}}"#)
        let netID = try #require(net.json?["network"]?["id"]?.stringValue)
        let netB = try await b.request(.POST, "/v2.0/networks", token: admin, body: #"{"network": {"name": "from-b"}}"#)
        #expect(netB.status == 201, "\(netB.body)")
        #expect(net.json?["network"]?["provider:segmentation_id"] != netB.json?["network"]?["provider:segmentation_id"], "the replicas allocate distinct VNIs")
        let start = Date()
        let port = try await a.request(.POST, "/v2.0/ports", token: admin, body: #"{"port": {"network_id": "\#(netID)", "binding:host_id": "compute-1"}}"#)
        let portID = try #require(port.json?["port"]?["id"]?.stringValue)
        #expect(try await watch.waitFor(5) { $0.contains { $0["type"] == "ADDED" && $0["id"]?.stringValue == portID } })
        print("a write on replica A reached a watcher on replica B in \(Int(Date().timeIntervalSince(start) * 1000)) ms")
        let shown = try await b.request(.GET, "/v2.0/ports/\(portID)", token: admin)
        #expect(shown.status == 200)
        let listed = try await a.request(.GET, "/v2.0/networks?name=from-b", token: admin)
        #expect(listed.json?["networks"]?.arrayValue?.count == 1, "\(listed.body)")
    }

    @Test func killedDuringABurstOfWritesLeavesNoPartialObject() async throws {
        guard let database = try TestPostgres.freshDatabase() else { return }
        var controller = try await ControllerDaemon(database: database)
        defer { controller.stop() }
        let admin = try await controller.token("admin")
        // Bulk creates of 10 networks each, one transaction per request, from 4 writers at once.
        let bulk = #"{"networks": [\#((0..<10).map { #"{"name": "bulk-\#($0)"}"# }.joined(separator: ","))]}"#
        let c = controller
        let writers = (0..<4).map { _ in
            Task {
                var created = 0
                while !Task.isCancelled {
                    guard let r = try? await c.request(.POST, "/v2.0/networks", token: admin, body: bulk), r.status == 201 else { break }
                    created += 1
                }
                return created
            }
        }
        // Kill -9 once some writes went through.
        _ = try await eventually(timeout: 20) {
            let r = try? await c.request(.GET, "/v2.0/networks?fields=id", token: admin)
            return (r?.json?["networks"]?.arrayValue?.count ?? 0) >= 200
        }
        Glibc.kill(controller.daemon.process.processIdentifier, SIGKILL)
        controller.daemon.process.waitUntilExit()
        var acknowledged = 0
        for w in writers { acknowledged += await w.value }
        // Restarted on the same database: every bulk request is there whole or not at all, every
        // acknowledged one is there, and VNIs are unique.
        let directory = controller.daemon.directory
        controller = try await ControllerDaemon(database: database, directory: directory, port: controller.port)
        let token = try await controller.token("admin")
        let list = try await controller.request(.GET, "/v2.0/networks", token: token)
        let networks = try #require(list.json?["networks"]?.arrayValue)
        #expect(networks.count % 10 == 0, "\(networks.count) networks: a bulk request was stored in part")
        #expect(networks.count >= acknowledged * 10, "\(networks.count) networks for \(acknowledged) acknowledged requests")
        let vnis = networks.compactMap { $0["provider:segmentation_id"] }
        #expect(Set(vnis).count == networks.count)
        // And it goes on: a new write after the restart.
        #expect(try await controller.request(.POST, "/v2.0/networks", token: token, body: #"{"network": {"name": "after"}}"#).status == 201)
    }
}
