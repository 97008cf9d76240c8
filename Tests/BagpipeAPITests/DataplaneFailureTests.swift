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

/// A dummy driver whose instances refuse to plug the port `refused`, as the `ovs` drivers refuse a
/// port they cannot find: everything else goes to the dummy instance.
final class RefusingDriver: DataplaneDriver {
    let dummy: DummyDriver
    init(_ dummy: DummyDriver) { self.dummy = dummy }
    var vpnType: VPNType { dummy.vpnType }
    var encapsulations: [TunnelType] { dummy.encapsulations }
    var supportsECMP: Bool { dummy.supportsECMP }
    var localAddress: IPv4Address { dummy.localAddress }
    var lookingGlass: JSONValue { dummy.lookingGlass }
    func makeInstance(id: UInt32, externalID: String, label: UInt32, options: InstanceOptions) throws -> any DataplaneInstance {
        RefusingInstance(try dummy.makeInstance(id: id, externalID: externalID, label: label, options: options))
    }
}

final class RefusingInstance: DataplaneInstance {
    let inner: any DataplaneInstance
    init(_ inner: any DataplaneInstance) { self.inner = inner }
    func plug(_ endpoint: Endpoint) throws {
        if endpoint.port.linuxif == "refused" { throw DataplaneRefusal("local_port: no port refused on the bridge") }
        try inner.plug(endpoint)
    }
    func unplug(_ endpoint: Endpoint, lastEndpointOfPort: Bool) throws { try inner.unplug(endpoint, lastEndpointOfPort: lastEndpointOfPort) }
    func setUp(_ remote: RemoteEndpoint) throws { try inner.setUp(remote) }
    func remove(_ remote: RemoteEndpoint) throws { try inner.remove(remote) }
    func addFlood(_ flood: FloodEndpoint) throws { try inner.addFlood(flood) }
    func removeFlood(_ flood: FloodEndpoint) throws { try inner.removeFlood(flood) }
    func addTrafficClassifier(_ classifier: TrafficClassifier, redirectTo instance: UInt32) throws { try inner.addTrafficClassifier(classifier, redirectTo: instance) }
    func removeTrafficClassifier(_ classifier: TrafficClassifier) throws { try inner.removeTrafficClassifier(classifier) }
    func setGatewayPort(_ linuxif: String, gateway: IPAddress) throws { try inner.setGatewayPort(linuxif, gateway: gateway) }
    func gatewayPortDown(_ linuxif: String) throws { try inner.gatewayPortDown(linuxif) }
    func updateFallback(_ fallback: Fallback?) { inner.updateFallback(fallback) }
    func cleanup() { inner.cleanup() }
    var lookingGlass: JSONValue { inner.lookingGlass }
}

/// An attach whose dataplane work fails answers with the driver's reason and changes nothing: the
/// endpoint is not kept, its route never goes out, and the same MAC can then attach on a good port.
@Suite struct DataplaneFailureTests {
    static func attach(_ port: String) -> String {
        #"{"vpn_type": "ipvpn", "vpn_instance_id": "vrf-1", "mac_address": "52:54:00:00:00:01", "ip_address": "10.1.0.11", "gateway_ip": "10.1.0.1", "local_port": "\#(port)", "import_rt": "64512:1", "export_rt": "64512:1"}"#
    }

    @Test func aRefusedPlugAnswers400AndIsUndone() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let local = IPv4Address(127, 0, 0, 1)
        let speaker = BGPSpeaker(configuration: .init(localAS: 64512, routerID: local), eventLoop: group.next())
        let service = VPNService(speaker: speaker, configuration: .init(bgpAddress: local, salt: "test")) {
            [.evpn: DummyDriver(vpnType: .evpn, localAddress: local), .ipvpn: RefusingDriver(DummyDriver(vpnType: .ipvpn, localAddress: local))]
        }
        let app = Application(router: BagpipeAPI.router(service: service, ping: "1"))
        do {
            try await app.test(.router) { client in
                try await client.execute(uri: "/attach_localport", method: .post, body: ByteBuffer(string: Self.attach("refused"))) { response in
                    #expect(response.status == .badRequest)
                    #expect(String(buffer: response.body).contains("local_port: no port refused on the bridge"), "\(String(buffer: response.body))")
                }
                try await client.execute(uri: "/looking-glass/vpns/instances/vrf-1/ports", method: .get) { response in
                    #expect(!String(buffer: response.body).contains("52:54:00:00:00:01"), "the refused endpoint was kept: \(String(buffer: response.body))")
                }
                try await client.execute(uri: "/looking-glass/vpns/instances/vrf-1/adv_routes", method: .get) { response in
                    #expect(!String(buffer: response.body).contains("10.1.0.11"), "the refused endpoint was advertised: \(String(buffer: response.body))")
                }
                // Nothing of it is left: the MAC attaches on another port.
                try await client.execute(uri: "/attach_localport", method: .post, body: ByteBuffer(string: Self.attach("tap1"))) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                }
                try await client.execute(uri: "/looking-glass/vpns/instances/vrf-1/adv_routes", method: .get) { response in
                    #expect(String(buffer: response.body).contains("10.1.0.11"), "\(String(buffer: response.body))")
                }
            }
        } catch {
            Issue.record("\(error)")
        }
        try await group.shutdownGracefully()
    }
}
