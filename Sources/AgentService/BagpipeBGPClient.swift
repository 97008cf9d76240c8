import AgentCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NeutronModel

/// bagpipe-bgp's REST API as the OpenStack agent uses it (reference §2.5): `GET /ping`,
/// `POST /attach_localport`, `POST /detach_localport`, and the looking glass's VPN instances.
/// Unlike the original client, every call has a timeout.
public struct BagpipeBGPClient: Sendable {
    public let baseURL: String
    let http: HTTPClient
    let timeout: TimeAmount
    /// The original sends the agent type; bagpipe-bgp logs it.
    let userAgent: String

    public init(baseURL: String, http: HTTPClient, timeout: Double = 10, userAgent: String = "bagpipe-agent") {
        self.baseURL = baseURL
        self.http = http
        self.timeout = .milliseconds(Int64(timeout * 1000))
        self.userAgent = userAgent
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// bagpipe-bgp answered 4xx: the request itself is refused, sending it again will not help.
        public var refused: Bool
    }

    /// The number bagpipe-bgp chose when it started, as text (it is up to 2^128: never an `Int`).
    public func ping() async throws -> String {
        let (status, body) = try await call(.GET, "/ping", nil)
        guard status == 200 else { throw Failure(description: "GET /ping: HTTP \(status) \(body.prefix(200))", refused: false) }
        return body.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func attach(_ body: JSONObject) async throws { try await post("/attach_localport", body) }
    public func detach(_ body: JSONObject) async throws { try await post("/detach_localport", body) }

    func post(_ path: String, _ body: JSONObject) async throws {
        let (status, text) = try await call(.POST, path, JSON.object(body).serialized)
        guard status == 200 else { throw Failure(description: "POST \(path): HTTP \(status) \(text.prefix(300))", refused: (400..<500).contains(status)) }
    }

    /// The endpoints bagpipe-bgp holds that an agent attached:
    /// what a restarted agent compares with what should be there.
    public func agentEndpoints() async throws -> [LookingGlassEndpoint] {
        let (status, text) = try await call(.GET, "/looking-glass/vpns/instances", nil)
        guard status == 200, let list = try? JSON.parse(text).arrayValue else { throw Failure(description: "GET /looking-glass/vpns/instances: HTTP \(status)", refused: false) }
        var out: [LookingGlassEndpoint] = []
        for item in list {
            // An instance's name says its type (EVI-<n>, VRF-<n>); its ports are a subtree.
            guard let id = item["id"]?.stringValue else { continue }
            let type: VPNType = item["name"]?.stringValue?.hasPrefix("EVI") == true ? .evpn : .ipvpn
            let path = "/looking-glass/vpns/instances/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id)/ports"
            let (s, t) = try await call(.GET, path, nil)
            guard s == 200, let ports = (try? JSON.parse(t))?.objectValue else { continue }
            for (linuxif, port) in ports {
                for e in port["endpoints"]?.arrayValue ?? [] {
                    // The agent's endpoints: a description naming a port (BGPVPN attachments), or an
                    // instance named the agent's way (the network's E-VPN carries no description).
                    let portID = e["description"]?["port"]?.stringValue
                    guard let mac = e["mac_address"]?.stringValue, portID != nil || id.hasPrefix("evpn_") || id.hasPrefix("ipvpn_") else { continue }
                    out.append(LookingGlassEndpoint(vpnType: type, vpnInstanceID: id, portID: portID, macAddress: mac, ipAddress: e["ip_address"]?.stringValue, linuxif: linuxif))
                }
            }
        }
        return out
    }

    func call(_ method: HTTPMethod, _ path: String, _ body: String?) async throws -> (Int, String) {
        let r = try await jsonExchange(http, method, baseURL + path, headers: [("User-Agent", userAgent)], body: body, timeout: timeout, limit: 1 << 26)
        return (r.status, r.body)
    }
}

/// An endpoint of a VPN instance as bagpipe-bgp's looking glass shows it.
public struct LookingGlassEndpoint: Sendable, Equatable {
    public var vpnType: VPNType
    public var vpnInstanceID: String
    public var portID: String?
    public var macAddress: String
    public var ipAddress: String?
    public var linuxif: String
}
