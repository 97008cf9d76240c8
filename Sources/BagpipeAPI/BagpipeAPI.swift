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

    public static let version = "0.5.0"

    /// The API's routes. With a `metrics` registry, `GET /metrics` serves it in Prometheus text
    /// format, with the daemon's gauges refreshed at each scrape, and every request is counted and
    /// timed (Hummingbird's metrics middleware, through swift-metrics).
    public static func router(service: VPNService, config: JSONValue = .object([]), ping: String = pingValue(), metrics: DaemonMetrics? = nil) -> Router<BasicRequestContext> {
        let router = Router()
        if metrics != nil { router.add(middleware: MetricsMiddleware()) }
        router.get("/") { _, _ in json("{}") }
        router.get("/ping") { _, _ in json(ping) }
        // As the original: GET on attach and detach answers an empty object.
        router.get("/attach_localport") { _, _ in json("{}") }
        router.get("/detach_localport") { _, _ in json("{}") }
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
        let info = LookingGlassTree.Info(startTime: WarningLog.timestamp(), version: version, config: config)
        let lookingGlass: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let segments = request.uri.path.split(separator: "/").dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
            let host = request.head.authority ?? "127.0.0.1"
            let base = "http://\(host)/looking-glass"
            guard let node = try await LookingGlassTree.node(segments, of: service, base: base, info: info).get() else {
                let prefix = "/" + (["looking-glass"] + segments.dropLast()).joined(separator: "/")
                return error(APIError(status: 404, title: "Not Found", "No such looking glass object: \(segments.last ?? "") at \(prefix)"))
            }
            return json(node.serialized())
        }
        router.get("/looking-glass", use: lookingGlass)
        router.get("/looking-glass/**", use: lookingGlass)
        if let metrics {
            router.get("/metrics") { _, _ in
                let snapshot = try await service.metrics().get()
                let text = metrics.render(snapshot)
                return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }
        var paths: [(String, [HTTPRequest.Method])] = [
            ("/", [.post, .put, .delete, .patch]), ("/ping", [.post, .put, .delete, .patch]),
            ("/attach_localport", [.put, .delete, .patch]), ("/detach_localport", [.put, .delete, .patch]),
            ("/looking-glass", [.post, .put, .delete, .patch]), ("/looking-glass/**", [.post, .put, .delete, .patch]),
        ]
        if metrics != nil { paths.append(("/metrics", [.post, .put, .delete, .patch])) }
        for (path, methods) in paths {
            for method in methods {
                router.on(RouterPath(path), method: method) { request, _ in
                    error(APIError(status: 405, title: "Method Not Allowed", "\(method.rawValue) is not allowed on \(request.uri.path)"))
                }
            }
        }
        return router
    }

    /// Attach and detach bodies are a few hundred bytes; 1 MiB leaves room for long descriptions.
    static let maximumBody = 1 << 20

    /// Reads a JSON body and runs `body`; API errors become their JSON responses.
    static func handle(_ request: Request, _ body: (JSONValue) async throws -> Void) async throws -> Response {
        var request = request
        let bytes: ByteBuffer
        do {
            bytes = try await request.collectBody(upTo: maximumBody)
        } catch {
            return BagpipeAPI.error(APIError(status: 413, title: "Request Entity Too Large", "the request body is over \(maximumBody) bytes"))
        }
        let parsed: JSONValue
        do {
            parsed = try JSONValue(parsing: Array(bytes.readableBytesView))
        } catch {
            return BagpipeAPI.error(APIError("No local port details received (the body is not JSON)"))
        }
        do {
            try await body(parsed)
            return json("null")
        } catch let e as APIError {
            return BagpipeAPI.error(e)
        } catch let e as VPNError {
            return BagpipeAPI.error(APIError(e))
        }
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// WebOb's error body, as the original answers with `Accept: application/json`: the code is the
    /// status line ("400 Bad Request").
    static func error(_ e: APIError) -> Response {
        let body = JSONValue.object([("code", .string("\(e.status) \(e.title)")), ("title", .string(e.title)), ("message", .string(e.message))])
        return json(body.serialized(), status: HTTPResponse.Status(code: e.status))
    }
}
