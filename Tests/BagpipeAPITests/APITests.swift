import BGPEngine
import BGPWire
import BagpipeAPI
import BagpipeVPN
import Dataplane
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing

/// The REST API in process, through Hummingbird's test client.
@Suite struct APITests {
    static func withAPI(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let local = IPv4Address(127, 0, 0, 1)
        let speaker = BGPSpeaker(configuration: .init(localAS: 64512, routerID: local), eventLoop: group.next())
        let service = VPNService(speaker: speaker, configuration: .init(bgpAddress: local, salt: "test")) {
            [.evpn: DummyDriver(vpnType: .evpn, localAddress: local), .ipvpn: DummyDriver(vpnType: .ipvpn, localAddress: local)]
        }
        let app = Application(router: BagpipeAPI.router(service: service, ping: "340282366920938463463374607431768211455"))
        do {
            try await app.test(.router) { client in try await body(client) }
        } catch {
            Issue.record("\(error)")
        }
        try await group.shutdownGracefully()
    }

    /// Behaviour 58: the API server can be instantiated (and answers).
    @Test func behaviour58TheAPIServerAnswers() async throws {
        try await Self.withAPI { client in
            try await client.execute(uri: "/ping", method: .get) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "340282366920938463463374607431768211455")
            }
            let attach = #"{"vpn_type": "evpn", "vpn_instance_id": "net-1", "mac_address": "52:54:00:00:00:01", "local_port": "tap1", "import_rt": "64512:1", "export_rt": "64512:1"}"#
            try await client.execute(uri: "/attach_localport", method: .post, body: ByteBuffer(string: attach)) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "null")
            }
            try await client.execute(uri: "/attach_localport", method: .post, body: ByteBuffer(string: #"{"vpn_type": "evpn"}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body) == #"{"code":"400 Bad Request","title":"Bad Request","message":"Missing parameter: 'vpn_instance_id'"}"#)
            }
            try await client.execute(uri: "/attach_localport", method: .post, body: ByteBuffer(string: "not json")) { response in
                #expect(response.status == .badRequest)
            }
            // As the original: GET on attach and detach is an empty object; other methods are 405s.
            try await client.execute(uri: "/detach_localport", method: .get) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "{}")
            }
            try await client.execute(uri: "/detach_localport", method: .put) { response in
                #expect(response.status == .methodNotAllowed)
            }
            try await client.execute(uri: "/looking-glass/vpns/instances/net-1/route_targets/export", method: .get) { response in
                #expect(String(buffer: response.body) == #"["target:64512:1"]"#)
            }
        }
    }

    /// The looking glass shows an endpoint's `ip_address` as the attach gave it (the original
    /// keeps the string): a bare address stays bare, a prefix keeps its length.
    @Test func lookingGlassShowsTheIPAddressAsGiven() async throws {
        try await Self.withAPI { client in
            for (mac, ip) in [("52:54:00:00:00:01", "10.1.0.11"), ("52:54:00:00:00:02", "10.1.0.12/24")] {
                let attach = #"{"vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": "\#(mac)", "ip_address": "\#(ip)", "gateway_ip": "10.1.0.1", "local_port": "tap-\#(mac.suffix(2))", "import_rt": "64512:1", "export_rt": "64512:1"}"#
                try await client.execute(uri: "/attach_localport", method: .post, body: ByteBuffer(string: attach)) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                }
            }
            try await client.execute(uri: "/looking-glass/vpns/instances/vrf-1/ports", method: .get) { response in
                let body = String(buffer: response.body)
                #expect(body.contains(#""ip_address":"10.1.0.11""#) && body.contains(#""ip_address":"10.1.0.12/24""#), "\(body)")
                #expect(!body.contains("10.1.0.11/32"), "\(body)")
            }
        }
    }

    /// The domain's errors carry no HTTP: the API gives each kind its status.
    @Test func domainErrorsMapToStatuses() {
        #expect(APIError(VPNError("Missing parameter: 'mac_address'")) == APIError("Missing parameter: 'mac_address'"))
        #expect(APIError(VPNError.failed("label allocator exhausted")).status == 500)
        let unavailable = APIError(VPNError(.dataplaneUnavailable, "the dataplane has not answered"))
        #expect(unavailable.status == 503 && unavailable.title == "Service Unavailable")
    }

    @Test func pingValueIsA128BitInteger() {
        let values = Set((0..<20).map { _ in BagpipeAPI.pingValue() })
        #expect(values.count == 20)
        #expect(values.allSatisfy { v in v.allSatisfy(\.isNumber) && (v.count < 39 || (v.count == 39 && v <= "340282366920938463463374607431768211455")) })
    }
}
