import BGPWire
import BagpipeVPN
import Foundation
import Hummingbird
import NIOCore

/// The REST API of the original bagpipe-bgp (reference §1), wire-compatible so that the OpenStack
/// agent drives it unchanged: `GET /ping`, `POST /attach_localport`, `POST /detach_localport`, and
/// the looking glass under `/looking-glass`. Errors are JSON `{code, title, message}`; a client
/// error is always a 4xx; a known path with another method is a 405.
public enum BagpipeAPI {
    /// A random 128-bit integer, fixed for the life of the process: the agent notices restarts by it.
    public static func pingValue() -> String {
        decimal(high: UInt64.random(in: 0...UInt64.max), low: UInt64.random(in: 0...UInt64.max))
    }

    /// Decimal digits of high * 2^64 + low.
    static func decimal(high: UInt64, low: UInt64) -> String {
        var words = [high >> 32, high & 0xFFFF_FFFF, low >> 32, low & 0xFFFF_FFFF]
        var digits: [Character] = []
        while words.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for i in words.indices {
                let current = remainder << 32 | words[i]
                words[i] = current / 10
                remainder = current % 10
            }
            digits.append(Character(String(remainder)))
        }
        return digits.isEmpty ? "0" : String(digits.reversed())
    }

    public static let version = "0.4.0"

    /// "YYYY-MM-DD HH:MM:SS", UTC, as the original's summary shows it.
    static func startTime() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }

    public static func router(service: VPNService, ping: String = pingValue()) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/ping") { _, _ in json(ping) }
        router.post("/attach_localport") { request, _ in
            try await handle(request) { body in
                let attach = try AttachRequest(json: body)
                try await service.attach(attach).get()
            }
        }
        router.post("/detach_localport") { request, _ in
            try await handle(request) { body in
                let detach = try DetachRequest(json: body)
                try await service.detach(detach).get()
            }
        }
        // The looking glass: GET only; hrefs absolute, from the Host header; unknown paths are 404s.
        let started = startTime()
        let lookingGlass: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let segments = request.uri.path.split(separator: "/").dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
            let host = request.head.authority ?? "127.0.0.1"
            let base = "http://\(host)/looking-glass"
            guard let node = try await service.lookingGlass(path: segments, base: base, startTime: started, version: version).get() else {
                return error(APIError(status: 404, title: "Not Found", "\(request.uri.path) is not in the looking glass"))
            }
            return json(node.serialized())
        }
        router.get("/looking-glass", use: lookingGlass)
        router.get("/looking-glass/**", use: lookingGlass)
        for path in ["/ping", "/attach_localport", "/detach_localport"] {
            for method in [HTTPRequest.Method.put, .delete, .patch, path == "/ping" ? .post : .get] {
                router.on(RouterPath(path), method: method) { _, _ in
                    error(APIError(status: 405, title: "Method Not Allowed", "\(method.rawValue) is not allowed on \(path)"))
                }
            }
        }
        return router
    }

    /// Reads a JSON body and runs `body`; API errors become their JSON responses.
    static func handle(_ request: Request, _ body: (JSONValue) async throws -> Void) async throws -> Response {
        var request = request
        let bytes = try await request.collectBody(upTo: 1 << 20)
        let parsed: JSONValue
        do {
            parsed = try JSONDecoder().decode(JSONValue.self, from: Data(bytes.readableBytesView))
        } catch {
            return BagpipeAPI.error(APIError("the request body is not JSON"))
        }
        do {
            try await body(parsed)
            return json("null")
        } catch let e as APIError {
            return BagpipeAPI.error(e)
        }
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ e: APIError) -> Response {
        let body = JSONValue.object([("code", JSONValue(e.status)), ("title", .string(e.title)), ("message", .string(e.message))])
        return json(body.serialized(), status: HTTPResponse.Status(code: e.status))
    }
}
