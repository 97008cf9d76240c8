import ControllerCore
import ControllerService
import Foundation
import Hummingbird
import NIOCore
import NeutronModel

/// What agents use, under `/v2.0/agent` (an agent's token reads only its own host):
/// - `GET hosts/<host>/view`: the host's view and its `resource_version`;
/// - `GET hosts/<host>/watch?resource_version=N[&heartbeat=S]`: newline-delimited JSON events after
///   version N (ADDED, MODIFIED, DELETED), BOOKMARK events every S seconds (default 10) carrying the
///   current version; 410 when N is older than the events kept (list again);
/// - `PUT ports/<id>/status` with `{"status": "ACTIVE" | "DOWN"}`: the port is plugged, or not;
/// - `PUT hosts/<host>/port_status` with `{"ports": {"<id>": "ACTIVE" | "DOWN", …}}`: many at once,
///   one write (the L2 agent's `update_device_list`); ports that do not exist are named in `unknown`.
struct AgentAPI: Sendable {
    let controller: Controller

    func handle(_ request: Request, path: [String], caller: Caller) async throws -> Response {
        if path.count == 3, path[0] == "hosts" {
            let host = path[1]
            guard caller.isAdmin || (caller.isAgent && caller.host == host) else { throw NeutronError.policy("get_host_view") }
            if path[2] == "port_status" { return try await portStatuses(request, caller: caller) }
            guard request.method == .get else { throw NeutronAPI.notAllowed(request.method, allowed: ["GET"]) }
            switch path[2] {
            case "view": return await view(host)
            case "watch": return try await watch(host, request)
            default: throw NeutronAPI.noSuchResource(["agent"] + path)
            }
        }
        if path.count == 3, path[0] == "ports", path[2] == "status" {
            guard request.method == .put else { throw NeutronAPI.notAllowed(request.method, allowed: ["PUT"]) }
            guard Identifiers.isUUID(path[1]) else { throw NeutronError.notFound(.port, path[1]) }
            let document = try await NeutronAPI.body(request)
            guard let status = document["status"]?.stringValue, ["ACTIVE", "DOWN"].contains(status), document.objectValue?.count == 1 else {
                throw NeutronError.badRequest("Expected {\"status\": \"ACTIVE\" | \"DOWN\"}")
            }
            let context = WriteContext(caller: caller, settings: await controller.settings)
            let id = path[1].lowercased()
            let port = try await controller.write { state in state.render(try state.setPortStatus(id, up: status == "ACTIVE", context)) }
            return Responses.member("port", port)
        }
        throw NeutronAPI.noSuchResource(["agent"] + path)
    }

    func portStatuses(_ request: Request, caller: Caller) async throws -> Response {
        guard request.method == .put else { throw NeutronAPI.notAllowed(request.method, allowed: ["PUT"]) }
        let document = try await NeutronAPI.body(request)
        guard let map = document["ports"]?.objectValue, document.objectValue?.count == 1 else {
            throw NeutronError.badRequest("Expected {\"ports\": {\"<port id>\": \"ACTIVE\" | \"DOWN\", …}}")
        }
        var wanted: [(id: String, up: Bool)] = []
        for (id, value) in map {
            guard let status = value.stringValue, ["ACTIVE", "DOWN"].contains(status) else { throw NeutronError.badRequest("The status of port \(id.prefix(64)) must be ACTIVE or DOWN") }
            wanted.append((id.lowercased(), status == "ACTIVE"))
        }
        let context = WriteContext(caller: caller, settings: await controller.settings)
        let wantedPorts = wanted
        let (done, unknown) = try await controller.write { state -> ([String: String], [String]) in
            var done: [String: String] = [:], unknown: [String] = []
            for (id, up) in wantedPorts {
                guard Identifiers.isUUID(id) else {
                    unknown.append(id)
                    continue
                }
                do {
                    done[id] = try state.setPortStatus(id, up: up, context).status
                } catch let e as NeutronError where e.kind == .notFound {
                    unknown.append(id)
                }
            }
            return (done, unknown.sorted())
        }
        let ports = JSONObject(done.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) })
        return Responses.json(.object(JSONObject([("ports", .object(ports)), ("unknown", .strings(unknown))])))
    }

    func view(_ host: String) async -> Response {
        let (version, objects) = await controller.listHost(host)
        let items: [JSON] = objects.map { key, o in .object(JSONObject([("kind", .string(key.kind.rawValue)), ("id", .string(key.id)), ("object", .object(o))])) }
        return Responses.json(.object(JSONObject([("host", .string(host)), ("resource_version", .int(version)), ("objects", .array(items))])))
    }

    func watch(_ host: String, _ request: Request) async throws -> Response {
        let params = request.uri.queryParameters
        guard let text = params["resource_version"], let from = Int64(text) else {
            throw NeutronError.badRequest("resource_version is required: the version of the view listed, or of the last event seen")
        }
        var interval = 10.0
        if let h = params["heartbeat"] {
            guard let v = Double(h), v >= 0.05, v <= 3600 else { throw NeutronError.badRequest("heartbeat must be a number of seconds from 0.05 to 3600") }
            interval = v
        }
        let heartbeat = interval
        switch await controller.watchHost(host, from: from, heartbeat: heartbeat) {
        case .gone(let oldest, let current):
            throw NeutronError(.gone, "ResourceVersionTooOld", "resource_version \(from) is not available (events are kept from \(oldest), the current version is \(current)): list the view again")
        case .events(let id, let backlog, let live):
            let controller = self.controller
            let body = ResponseBody { writer in
                // Bookmarks come from the controller in the same stream as the events, so that one
                // never overtakes an event of its version.
                defer { Task { await controller.stopWatching(host, id) } }
                for event in backlog { try await writer.write(event.buffer) }
                for await event in live { try await writer.write(event.buffer) }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
        }
    }
}
