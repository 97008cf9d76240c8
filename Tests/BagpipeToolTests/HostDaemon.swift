import BagpipeLab
import BGPWire
import BagpipeCLI
import Foundation

/// A `bagpipe-bgp` compute-node process with dummy dataplanes and its API on a free port of
/// 127.0.0.1; `stop()` ends it and removes its folder.
final class HostDaemon: @unchecked Sendable {
    let daemon: Daemon
    let apiPort: Int

    /// `peers` may be empty (no BGP session: the API and the instances are enough).
    init(localAddress: String = "127.0.0.2", peers: String = "", extra: String = "") async throws {
        apiPort = try freePort()
        let conf = "[BGP]\nlocal_address = \(localAddress)\nmy_as = 64512\n" + (peers.isEmpty ? "" : "peers = \(peers)\n") + "[API]\nport = \(apiPort)\n" + extra
        daemon = try Daemon(name: "bagpipe-bgp", executable: builtProduct("bagpipe-bgp"), arguments: ["--config-file", "$DIR/bgp.conf"], files: ["bgp.conf": conf])
        let port = apiPort
        let up = try await eventually(timeout: 20) { (try? await BagpipeCLI.request("http://127.0.0.1:\(port)/ping"))?.status == 200 }
        guard up else {
            daemon.stop()
            throw DaemonDidNotStart(log: daemon.log)
        }
    }

    struct DaemonDidNotStart: Error, CustomStringConvertible {
        var log: String
        var description: String { "bagpipe-bgp did not answer: \(log.suffix(2000))" }
    }

    var base: String { "http://127.0.0.1:\(apiPort)" }

    func get(_ path: String) async throws -> BagpipeCLI.Response { try await BagpipeCLI.request(base + path) }
    func post(_ path: String, _ body: String) async throws -> BagpipeCLI.Response { try await BagpipeCLI.request(base + path, method: .POST, json: body) }

    /// A looking-glass node, parsed.
    func lookingGlass(_ path: String) async throws -> JSONValue { try BagpipeCLI.json(try await get("/looking-glass/" + path).body) }

    var isRunning: Bool { daemon.process.isRunning }
    func stop() { daemon.stop() }
}

/// Runs a built tool and returns its exit status and output (standard output and error).
func runTool(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    try runProcess(builtProduct(name), arguments, environment: environment)
}
