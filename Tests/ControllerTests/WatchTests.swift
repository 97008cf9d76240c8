import ControllerLab
import AsyncHTTPClient
import BagpipeLab
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NeutronModel
import Testing

/// Issue 13, acceptance 4: the per-host list and watch that agents consume.
@Suite(.serialized, .timeLimit(.minutes(5))) struct WatchTests {
    /// The events of one watch connection, read as they arrive.
    final class WatchStream: @unchecked Sendable {
        let status: Int
        private let lines = NIOLockedValueBox<[JSON]>([])
        private var reader: Task<Void, Never>?

        init(_ controller: ControllerDaemon, host: String, from version: Int64, token: String, heartbeat: Double = 0.2) async throws {
            var request = HTTPClientRequest(url: "\(controller.url)/v2.0/agent/hosts/\(host)/watch?resource_version=\(version)&heartbeat=\(heartbeat)")
            request.headers.add(name: "X-Auth-Token", value: token)
            let response = try await ControllerDaemon.client.execute(request, timeout: .seconds(600))
            status = Int(response.status.code)
            let box = lines
            reader = Task {
                var pending = ""
                do {
                    for try await chunk in response.body {
                        pending += String(buffer: chunk)
                        while let nl = pending.firstIndex(of: "\n") {
                            let line = String(pending[..<nl])
                            pending = String(pending[pending.index(after: nl)...])
                            if let j = try? JSON.parse(line) { box.withLockedValue { $0.append(j) } }
                        }
                    }
                } catch {}
            }
        }

        var events: [JSON] { lines.withLockedValue { $0 } }
        /// Events other than bookmarks.
        var changes: [JSON] { events.filter { $0["type"] != "BOOKMARK" } }

        func waitFor(_ timeout: Double = 10, _ condition: @escaping ([JSON]) -> Bool) async throws -> Bool {
            try await eventually(timeout: timeout) { condition(self.events) }
        }

        func close() { reader?.cancel() }
    }

    struct Setup {
        let controller: ControllerDaemon
        let admin: String
        var netA = "", netB = "", portA = "", portB = "", bgpvpn = "", assocB = ""

        init(_ controller: ControllerDaemon) async throws {
            self.controller = controller
            admin = try await controller.token("admin")
            netA = try await create("/v2.0/networks", #"{"network": {"name": "a"}}"#, "network")
            _ = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(netA)", "cidr": "10.1.0.0/24"}}"#, "subnet")
            netB = try await create("/v2.0/networks", #"{"network": {"name": "b"}}"#, "network")
            _ = try await create("/v2.0/subnets", #"{"subnet": {"network_id": "\#(netB)", "cidr": "10.2.0.0/24"}}"#, "subnet")
            portA = try await create("/v2.0/ports", #"{"port": {"network_id": "\#(netA)", "binding:host_id": "compute-1"}}"#, "port")
            portB = try await create("/v2.0/ports", #"{"port": {"network_id": "\#(netB)", "binding:host_id": "compute-2"}}"#, "port")
            bgpvpn = try await create("/v2.0/bgpvpn/bgpvpns", #"{"bgpvpn": {"name": "v", "route_targets": ["64512:7"]}}"#, "bgpvpn")
            assocB = try await create("/v2.0/bgpvpn/bgpvpns/\(bgpvpn)/network_associations", #"{"network_association": {"network_id": "\#(netB)"}}"#, "network_association")
        }

        func create(_ path: String, _ body: String, _ member: String) async throws -> String {
            let r = try await controller.request(.POST, path, token: admin, body: body)
            guard r.status == 201, let id = r.json?[member]?["id"]?.stringValue else { throw ControllerTestError("POST \(path): \(r.status) \(r.body)") }
            return id
        }

        func view(_ host: String, token: String) async throws -> (version: Int64, keys: Set<String>, objects: [JSON]) {
            let r = try await controller.request(.GET, "/v2.0/agent/hosts/\(host)/view", token: token)
            guard r.status == 200, case .int(let v)? = r.json?["resource_version"], let objects = r.json?["objects"]?.arrayValue else {
                throw ControllerTestError("view of \(host): \(r.status) \(r.body)")
            }
            return (v, Set(objects.compactMap { o in o["kind"]?.stringValue.flatMap { k in o["id"]?.stringValue.map { "\(k)/\($0)" } } }), objects)
        }
    }

    static func version(_ e: JSON) -> Int64 { if case .int(let v)? = e["resource_version"] { v } else { -1 } }
    static func key(_ e: JSON) -> String { "\(e["kind"]?.stringValue ?? "")/\(e["id"]?.stringValue ?? "")" }

    @Test(arguments: Storage.allCases) func eachHostSeesOnlyItsViewAndItsChanges(on storage: Storage) async throws {
        guard let database = try storage.database() else { return }
        let controller = try await ControllerDaemon(database: database)
        defer { controller.stop() }
        let s = try await Setup(controller)
        let agent1 = try await controller.token("compute-1"), agent2 = try await controller.token("compute-2")
        // An agent reads only its own host.
        #expect(try await controller.request(.GET, "/v2.0/agent/hosts/compute-2/view", token: agent1).status == 403)
        #expect(try await controller.request(.GET, "/v2.0/agent/hosts/compute-1/view", token: try await controller.token("demo")).status == 403)
        let v1 = try await s.view("compute-1", token: agent1), v2 = try await s.view("compute-2", token: agent2)
        #expect(v1.keys.contains("port/\(s.portA)") && v1.keys.contains("network/\(s.netA)"))
        #expect(!v1.keys.contains("port/\(s.portB)") && !v1.keys.contains("network/\(s.netB)") && !v1.keys.contains("network_association/\(s.assocB)"))
        #expect(v2.keys.contains("network_association/\(s.assocB)") && !v2.keys.contains("port/\(s.portA)"))
        let assoc = v2.objects.first { $0["id"]?.stringValue == s.assocB }
        #expect(assoc?["object"]?["bgpvpn"]?["route_targets"] == .strings(["64512:7"]), "\(String(describing: assoc))")

        let w1 = try await WatchStream(controller, host: "compute-1", from: v1.version, token: agent1)
        let w2 = try await WatchStream(controller, host: "compute-2", from: v2.version, token: agent2)
        defer { w1.close(); w2.close() }
        #expect(w1.status == 200 && w2.status == 200)
        // A route-target update reaches compute-2 (its network's association), not compute-1.
        let r = try await controller.request(.PUT, "/v2.0/bgpvpn/bgpvpns/\(s.bgpvpn)", token: s.admin, body: #"{"bgpvpn": {"route_targets": ["64512:8"]}}"#)
        #expect(r.status == 200)
        #expect(try await w2.waitFor { e in e.contains { $0["type"] == "MODIFIED" && $0["id"]?.stringValue == s.assocB && $0["object"]?["bgpvpn"]?["route_targets"] == .strings(["64512:8"]) } })
        // Bookmarks keep coming on both, with the current version.
        let current = Self.version(w2.changes.last ?? .null)
        #expect(try await w1.waitFor { e in e.filter { $0["type"] == "BOOKMARK" && Self.version($0) >= current }.count >= 2 })
        #expect(w1.changes.isEmpty, "compute-1 heard of: \(w1.changes)")
        // A second port on compute-1 in network B: B, its subnet and association enter its view.
        let portB1 = try await s.create("/v2.0/ports", #"{"port": {"network_id": "\#(s.netB)", "binding:host_id": "compute-1"}}"#, "port")
        #expect(try await w1.waitFor { e in
            let added = Set(e.filter { $0["type"] == "ADDED" }.map(Self.key))
            return added.isSuperset(of: ["port/\(portB1)", "network/\(s.netB)", "network_association/\(s.assocB)"])
        })
        // Its deletion takes them out again.
        #expect(try await controller.request(.DELETE, "/v2.0/ports/\(portB1)", token: s.admin).status == 204)
        #expect(try await w1.waitFor { e in Set(e.filter { $0["type"] == "DELETED" }.map(Self.key)).isSuperset(of: ["port/\(portB1)", "network/\(s.netB)", "network_association/\(s.assocB)"]) })
        #expect(!w1.changes.contains { Self.key($0) == "port/\(s.portB)" }, "compute-1 never hears of compute-2's port")
        // Ordered and without repeats: versions never go back, a (version, object) pair appears once.
        for w in [w1, w2] {
            let versions = w.events.map(Self.version)
            #expect(versions == versions.sorted(), "\(versions)")
            let pairs = w.changes.map { "\(Self.version($0)) \(Self.key($0))" }
            #expect(Set(pairs).count == pairs.count, "\(pairs)")
        }
    }

    @Test(arguments: Storage.allCases) func aWatcherResumesFromItsVersionAndRelistsAfterARestart(on storage: Storage) async throws {
        guard let database = try storage.database() else { return }
        let first = try await ControllerDaemon(database: database)
        var controller = first
        defer { controller.stop() }
        let s = try await Setup(controller)
        let agent = try await controller.token("compute-2")
        let listed = try await s.view("compute-2", token: agent)
        // Changes while the agent is away; it resumes from the version it had and gets exactly them.
        _ = try await controller.request(.PUT, "/v2.0/bgpvpn/bgpvpns/\(s.bgpvpn)", token: s.admin, body: #"{"bgpvpn": {"route_targets": ["64512:9"]}}"#)
        let second = try await s.create("/v2.0/ports", #"{"port": {"network_id": "\#(s.netB)", "binding:host_id": "compute-2"}}"#, "port")
        _ = try await s.create("/v2.0/ports", #"{"port": {"network_id": "\#(s.netA)", "binding:host_id": "compute-1"}}"#, "port")
        let w = try await WatchStream(controller, host: "compute-2", from: listed.version, token: agent)
        #expect(try await w.waitFor { $0.contains { $0["type"] == "BOOKMARK" } })
        let keys = w.changes.map(Self.key)
        #expect(keys == ["network_association/\(s.assocB)", "port/\(second)"], "\(w.changes)")
        let last = Self.version(w.events.last ?? .null)
        w.close()
        // Resuming from the last version seen: nothing repeated.
        let again = try await WatchStream(controller, host: "compute-2", from: last, token: agent)
        #expect(try await again.waitFor { $0.contains { $0["type"] == "BOOKMARK" } })
        #expect(again.changes.isEmpty, "\(again.changes)")
        again.close()

        // A restart: the events before it are gone. Resuming from an older version is a 410 …
        let directory = controller.daemon.directory
        controller.daemon.kill()
        controller = try await ControllerDaemon(database: database, directory: directory, port: first.port)
        let token = try await controller.token("compute-2")
        let gone = try await WatchStream(controller, host: "compute-2", from: listed.version, token: token)
        #expect(gone.status == 410)
        gone.close()
        // … resuming from the version current at the restart loses nothing …
        let resumed = try await WatchStream(controller, host: "compute-2", from: last, token: token)
        #expect(resumed.status == 200)
        defer { resumed.close() }
        // … and a re-list shows the state as stored: nothing was lost.
        let relisted = try await s.view("compute-2", token: token)
        #expect(relisted.keys.contains("port/\(second)") && relisted.version == last)
        _ = try await controller.request(.DELETE, "/v2.0/ports/\(second)", token: try await controller.token("admin"))
        #expect(try await resumed.waitFor { $0.contains { $0["type"] == "DELETED" && Self.key($0) == "port/\(second)" } })
    }
}
