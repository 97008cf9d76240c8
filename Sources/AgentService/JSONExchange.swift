import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// One request with a JSON body (or none) and its whole answer: what both of the agent's REST
/// clients send, each with its own headers.
func jsonExchange(
    _ http: HTTPClient, _ method: HTTPMethod, _ url: String, headers: [(String, String)], body: String?, timeout: TimeAmount, limit: Int
) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    request.headers.add(name: "Accept", value: "application/json")
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await http.execute(request, timeout: timeout)
    return (Int(response.status.code), response.headers, String(buffer: try await response.body.collect(upTo: limit)))
}
