import AsyncHTTPClient
import BGPWire
import BagpipeConfig
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOHTTP1

/// What the command-line tools share: where the daemon's API is, and HTTP to it.
public enum BagpipeCLI {
    public static let defaultConfigFile = "/etc/bagpipe-bgp/bgp.conf"

    /// Servers a connection was made to.
    static let reachable = NIOLockedValueBox<Set<String>>([])

    /// `[API] port` of a bgp.conf (the original's tools read it, as do ours), or nil when the file is
    /// missing. A file that exists but does not parse is an error.
    public static func apiPort(configFile: String) throws -> Int? {
        guard FileManager.default.fileExists(atPath: configFile) else { return nil }
        var warnings: [String] = []
        guard let text = try? String(contentsOfFile: configFile, encoding: .utf8) else { throw ConfigurationError("cannot read \(configFile)") }
        let ini = try INIFile(parsing: text, origin: configFile)
        return try APIOptions(ini, warnings: &warnings).port
    }

    /// An HTTP answer: status and body.
    public struct Response: Sendable {
        public var status: Int
        public var reason: String
        public var body: String
    }

    public struct ConnectionFailed: Error, CustomStringConvertible {
        public var description: String
    }

    /// GET, or POST with a JSON body; a failure to connect or to read the answer throws `ConnectionFailed`.
    public static func request(_ url: String, method: HTTPMethod = .GET, json: String? = nil, timeout: Int64 = 30) async throws -> Response {
        try await request(url, method: method, body: json.map { Array($0.utf8) }, timeout: timeout)
    }

    /// The same with any bytes as the JSON body (tests send malformed ones).
    public static func request(_ url: String, method: HTTPMethod, body: [UInt8]?, timeout: Int64 = 30) async throws -> Response {
        // AsyncHTTPClient retries a refused connection until the deadline: a daemon that is not
        // there is told at once instead (checked once per server).
        if let parsed = URL(string: url), let host = parsed.host, let port = parsed.port ?? (parsed.scheme == "http" ? 80 : nil),
            !reachable.withLockedValue({ $0.contains("\(host):\(port)") })
        {
            do {
                let channel = try await ClientBootstrap(group: HTTPClient.shared.eventLoopGroup).connectTimeout(.seconds(5)).connect(host: host, port: port).get()
                try? await channel.close()
                reachable.withLockedValue { _ = $0.insert("\(host):\(port)") }
            } catch {
                throw ConnectionFailed(description: "\(error)")
            }
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
            let body = try await response.body.collect(upTo: 64 << 20)
            return Response(status: Int(response.status.code), reason: response.status.reasonPhrase, body: String(buffer: body))
        } catch {
            throw ConnectionFailed(description: "\(error)")
        }
    }

    /// Parses a JSON answer.
    public static func json(_ text: String) throws -> JSONValue { try JSONValue(parsing: text) }
}
