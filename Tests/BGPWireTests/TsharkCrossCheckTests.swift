import BagpipeLab
import BGPWire
import Foundation
import NIOCore
import Testing

/// Wireshark as a second opinion: messages covering every family and attribute this library encodes
/// go into a pcap; `tshark -V` must report the RD, prefix, labels, MAC, ESI, route targets, PMSI
/// tunnel, RT-Constraint and flowspec values we put there, and flag nothing as malformed.
/// Where tshark 4.0 does not know a field it names it unknown, and we check it shows our value:
/// the Consistent-Hash-Sort-Order community (opaque subtype 0x14) and the IPv6 flow-label component
/// (type 13). It prints a 4-octet AS in asdot+ form ("64086.59904(4200000000)").
@Suite struct TsharkCrossCheckTests {
    static let rd0 = RouteDistinguisher.as2(64512, 7)
    static let rd1 = RouteDistinguisher.ipv4(IPv4Address(192, 0, 2, 1), 5)
    static let rd2 = RouteDistinguisher.as4(4_200_000_000, 9)
    static let esi = EthernetSegmentIdentifier(high: 0x0011, low: 0x2233_4455_6677_8899)
    static let mac = MACAddress(0x0200_0000_0A01)

    static var commonAttributes: [PathAttribute] {
        [
            PathAttribute(.origin(.igp)), PathAttribute(.asPath(.sequence([64512, 4_200_000_001]))),
            PathAttribute(.multiExitDiscriminator(50)), PathAttribute(.localPreference(120)),
            PathAttribute(.communities([Community(as: 64512, 10), .noExport])),
            PathAttribute(.originatorID(IPv4Address(192, 0, 2, 9))), PathAttribute(.clusterList([0xC000_0263])),
            PathAttribute(.largeCommunities([LargeCommunity(4_200_000_000, 1, 2)])),
        ]
    }

    /// (description, message bytes, lines tshark must print).
    static func cases() -> [(String, [UInt8], [String])] {
        var out: [(String, [UInt8], [String])] = []
        let builder = UpdateBuilder()

        let open = OpenMessage(
            asn: 4_200_000_001, holdTime: 90, bgpIdentifier: IPv4Address(192, 0, 2, 1),
            capabilities: [
                .multiprotocol(.ipv4VPN), .multiprotocol(.evpn), .multiprotocol(.routeTargetConstraint), .multiprotocol(.ipv4FlowSpecVPN),
                .routeRefresh, .enhancedRouteRefresh, .extendedMessage,
                .gracefulRestart(GracefulRestartCapability(flags: 0x8, restartTime: 120, families: [.init(family: .ipv4VPN, flags: 0x80)])),
                .addPath([AddPathEntry(family: .ipv4VPN, mode: .receive)]),
                .extendedNextHop([ExtendedNextHopEntry(family: .ipv4VPN, nextHopAFI: .ipv6)]),
            ])
        out.append(("open", BGPMessage.open(open).encodedBytes(), ["My AS: 23456", "Hold Time: 90", "BGP Identifier: 192.0.2.1", "AS Number: 4200000001", "Restart Timers: 0x8078, Restart state", "Preserve forwarding state: Yes", "Capability: Route refresh capability", "Enhanced route refresh capability", "Extended Message", "SAFI: Route Target Filter (132)", "SAFI: Flow Spec Filter VPN (134)"]))

        // VPNv4 with the three RD types, and the extended communities bagpipe uses.
        let vpn: [NLRIElement] = [
            NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [1000]), routeDistinguisher: rd0, prefix: IPPrefix("10.1.0.7/32")!))),
            NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [2000]), routeDistinguisher: rd1, prefix: IPPrefix("10.2.0.0/24")!))),
            NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [3000, 3001]), routeDistinguisher: rd2, prefix: IPPrefix("10.3.0.0/16")!))),
        ]
        let vpnCommunities: [ExtendedCommunity] = [
            .routeTarget(as: 64512, 100), .routeTarget(ipv4: IPv4Address(192, 0, 2, 1), 200), .routeTarget(as4: 4_200_000_000, 300),
            .encapsulation(.mplsInGRE), .consistentHashSortOrder(1),
        ]
        let vpnUpdate = builder.announce(
            vpn, family: .ipv4VPN, nextHop: .forFamily(.ipv4VPN, .v4(IPv4Address(192, 0, 2, 1))),
            attributes: commonAttributes + [PathAttribute(.extendedCommunities(vpnCommunities))])[0]
        out.append(("vpnv4", Array(vpnUpdate.readableBytesView), [
            "Prefix Length: 120", "Label Stack: 1000 (bottom)", "Route Distinguisher: 64512:7", "MP Reach NLRI IPv4 prefix: 10.1.0.7",
            "Prefix Length: 112", "Label Stack: 2000 (bottom)", "Route Distinguisher: 192.0.2.1:5", "MP Reach NLRI IPv4 prefix: 10.2.0.0",
            "Prefix Length: 128", "Label Stack: 3000,3001 (bottom)", "Route Distinguisher: 4200000000:9", "MP Reach NLRI IPv4 prefix: 10.3.0.0",
            "Route Target: 64512:100", "Route Target: 192.0.2.1:200", "Route Target: 64086.59904(4200000000):300",
            "MPLS in GRE Encapsulation", "Unknown subtype 0x14: 0x0000 0x0001 0x0000", "Multiple exit discriminator: 50",
            "Local preference: 120", "64512:10", "Originator identifier: 192.0.2.9",
            "192.0.2.99", "4200000000:1:2", "Next hop:  RD=0:0 IPv4=192.0.2.1",
        ]))

        let vpn6: [NLRIElement] = [NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [16]), routeDistinguisher: rd0, prefix: IPPrefix("2001:db8:1::/48")!)))]
        let vpn6Update = builder.announce(vpn6, family: .ipv6VPN, nextHop: .forFamily(.ipv6VPN, .v6(IPv6Address("2001:db8::1")!)), attributes: commonAttributes)[0]
        out.append(("vpnv6", Array(vpn6Update.readableBytesView), ["RD=64512:7, IPv6=2001:db8:1::/48", "Label Stack=16 (bottom)"]))

        // EVPN: MAC/IP with ESI and both labels, inclusive multicast with PMSI, A-D, ES and IP prefix routes.
        let evpn: [NLRIElement] = [
            NLRIElement(.evpn(.macIPAdvertisement(EVPNMACIPRoute(routeDistinguisher: rd1, esi: esi, ethernetTag: 0, mac: mac, ip: .v4(IPv4Address(10, 0, 0, 11)), labelField1: 10100, labelField2: 20200)))),
            NLRIElement(.evpn(.ethernetAutoDiscovery(EVPNEthernetAutoDiscoveryRoute(routeDistinguisher: rd0, esi: esi, ethernetTag: 0xFFFF_FFFF, labelField: 0)))),
            NLRIElement(.evpn(.ethernetSegment(EVPNEthernetSegmentRoute(routeDistinguisher: rd0, esi: esi, originatingRouter: .v4(IPv4Address(192, 0, 2, 3)))))),
            NLRIElement(.evpn(.ipPrefix(EVPNIPPrefixRoute(routeDistinguisher: rd0, prefix: IPPrefix("10.9.0.0/24")!, gateway: .v4(IPv4Address(10, 9, 0, 1)), labelField: 5000)))),
        ]
        let evpnCommunities: [ExtendedCommunity] = [
            .routeTarget(as: 64512, 100), .encapsulation(.vxlan), .macMobility(sequence: 7), .routerMAC(MACAddress(0x0200_0000_00FE)),
            .esiLabel(16, singleActive: true), .defaultGateway,
        ]
        let evpnUpdate = builder.announce(evpn, family: .evpn, nextHop: .ipv4(IPv4Address(192, 0, 2, 1)), attributes: commonAttributes + [PathAttribute(.extendedCommunities(evpnCommunities))])[0]
        out.append(("evpn", Array(evpnUpdate.readableBytesView), [
            "MAC Advertisement Route", "Route Distinguisher: 0001c000020100005 (192.0.2.1:5)".replacingOccurrences(of: "0001c000020100005", with: "0001c00002010005"),
            "(02:00:00:00:0a:01)", "ESI: 00:11:22:33:44:55:66:77:88:99", "IPv4 address: 10.0.0.11", "Ethernet AD Route", "Ethernet Segment Route",
            "IP Prefix route", "IPv4 address: 10.9.0.0", "Route Target: 64512:100", "VXLAN Encapsulation", "Sequence number: 7",
            "Router's MAC: 02:00:00:00:00:fe", "Ethernet Tag ID: 4294967295", "ESI MPLS Label: Single-Active redundancy", "MPLS Label: 16",
            "Default Gateway", "MAC Mobility", "ESI Type: ESI 9 bytes value (0)", "VNI: 10100", "VNI: 20200",
        ]))

        let multicast: [NLRIElement] = [NLRIElement(.evpn(.inclusiveMulticast(EVPNInclusiveMulticastRoute(routeDistinguisher: rd1, ethernetTag: 0, originatingRouter: .v4(IPv4Address(192, 0, 2, 1))))))]
        let pmsi = PMSITunnel.ingressReplication(endpoint: .v4(IPv4Address(192, 0, 2, 1)), labelField: 10100)
        let multicastUpdate = builder.announce(multicast, family: .evpn, nextHop: .ipv4(IPv4Address(192, 0, 2, 1)), attributes: commonAttributes + [PathAttribute(.pmsiTunnel(pmsi))])[0]
        out.append(("evpn-imet", Array(multicastUpdate.readableBytesView), [
            "Inclusive Multicast Route", "Route Distinguisher: 0001c00002010005 (192.0.2.1:5)", "IPv4 address: 192.0.2.1",
            "Ingress Replication", "MPLS Label: 631", "Tunnel ID",
        ]))

        let rtc: [NLRIElement] = [
            NLRIElement(.routeTargetMembership(.default)),
            NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 64512, routeTarget: .routeTarget(as: 64512, 100)))),
            NLRIElement(.routeTargetMembership(RouteTargetMembership(originAS: 4_200_000_001, routeTarget: .routeTarget(ipv4: IPv4Address(192, 0, 2, 1), 200)))),
        ]
        let rtcUpdate = builder.announce(rtc, family: .routeTargetConstraint, nextHop: .ipv4(IPv4Address(192, 0, 2, 1)), attributes: commonAttributes)[0]
        out.append(("rtc", Array(rtcUpdate.readableBytesView), ["Originating AS: 64512", "Community Prefix: 64512:100", "Originating AS: 4200000001", "Community Prefix: 192.0.2.1:200", "Prefix Length: 96"]))

        let flow = FlowSpecRule(components: [
            .destination(IPPrefix("10.3.0.0/24")!), .source(IPPrefix("20.3.0.0/24")!),
            .match(type: FlowSpecComponentType.ipProtocol, [FlowSpecMatch(comparison: FlowSpecMatch.equal, value: 6)]),
            .match(type: FlowSpecComponentType.destinationPort, [
                FlowSpecMatch(comparison: FlowSpecMatch.equal, value: 80),
                FlowSpecMatch(comparison: FlowSpecMatch.greaterThan | FlowSpecMatch.equal, value: 8080),
                FlowSpecMatch(comparison: FlowSpecMatch.lessThan | FlowSpecMatch.equal, value: 8088, and: true),
            ]),
            .match(type: FlowSpecComponentType.packetLength, [FlowSpecMatch(comparison: FlowSpecMatch.equal, value: 100)]),
        ])
        let flowActions: [ExtendedCommunity] = [
            .trafficRate(as: 64512, bytesPerSecond: 1000), .trafficAction(terminal: true, sample: true), .redirect(as: 64512, 100),
            .trafficMarking(dscp: 10),
        ]
        let flowUpdate = builder.announce([NLRIElement(.flowSpec(flow))], family: .ipv4FlowSpec, nextHop: .none, attributes: commonAttributes + [PathAttribute(.extendedCommunities(flowActions))])[0]
        out.append(("flowspec", Array(flowUpdate.readableBytesView), [
            "Filter: Destination prefix filter (10.3.0.0/24)", "Filter: Source prefix filter (20.3.0.0/24)", "Filter: Protocol / Next Header filter (=6)",
            "Filter: Destination port filter (=80 || >=8080 && <=8088)", "Filter: Packet Length filter (=100)", "Flow spec traffic-rate",
            "Flow spec traffic-action", "Flow spec redirect AS 2 bytes", "Flow spec traffic-remarking",
        ]))

        var vpnFlow = flow
        vpnFlow.routeDistinguisher = rd0
        let vpnFlowActions: [ExtendedCommunity] = [.redirect(ipv4: IPv4Address(192, 0, 2, 1), 7), .redirect(as4: 4_200_000_000, 8), .redirectToIP(copy: false)]
        let vpnFlowUpdate = builder.announce([NLRIElement(.flowSpec(vpnFlow))], family: .ipv4FlowSpecVPN, nextHop: .none, attributes: commonAttributes + [PathAttribute(.extendedCommunities(vpnFlowActions))])[0]
        out.append(("flowspec-vpn", Array(vpnFlowUpdate.readableBytesView), ["Filter: Destination prefix filter (10.3.0.0/24)", "Administrator Subfield: 64512", "Assigned Number Subfield: 0x00000007 (7)", "Flow spec redirect IPv4 format", "IPv4 address: 192.0.2.1", "Flow spec redirect AS-4byte format", "4-Octet AS: 4200000000", "Transitive Flow spec redirect/mirror to IP next-hop"]))

        let flow6 = FlowSpecRule(components: [.destination(IPPrefix("2001:db8::/32")!), .match(type: FlowSpecComponentType.flowLabel, [FlowSpecMatch(comparison: FlowSpecMatch.equal, value: 2013)])])
        let flow6Update = builder.announce([NLRIElement(.flowSpec(flow6))], family: .ipv6FlowSpec, nextHop: .none, attributes: commonAttributes)[0]
        out.append(("flowspec-v6", Array(flow6Update.readableBytesView), ["Filter: Destination prefix filter (2001:db8::/32)", "IPv6 prefix offset: 0", "Filter type: Unknown (13)"]))

        let unicast = UpdateMessage(
            attributes: [
                PathAttribute(.origin(.egp)), PathAttribute(.asPath(.sequence([23456]))), PathAttribute(.nextHop(IPv4Address(192, 0, 2, 254))),
                PathAttribute(.atomicAggregate), PathAttribute(.aggregator(Aggregator(asn: 23456, address: IPv4Address(192, 0, 2, 2)))),
                PathAttribute(.as4Path(.sequence([4_200_000_001]))), PathAttribute(.as4Aggregator(Aggregator(asn: 4_200_000_001, address: IPv4Address(192, 0, 2, 2)))),
            ],
            nlri: NLRIBlock(family: .ipv4Unicast, [.prefix(IPPrefix("198.51.100.0/24")!)]))
        out.append(("unicast", BGPMessage.update(unicast).encodedBytes(context: WireContext(fourOctetAS: false)), [
            "NLRI prefix: 198.51.100.0", "NLRI prefix length: 24", "Next hop: 192.0.2.254", "Path Attribute - ATOMIC_AGGREGATE",
            "AGGREGATOR: AS: 23456 origin: 192.0.2.2", "AS4_PATH: 4200000001", "AS4_AGGREGATOR: AS: 4200000001 origin: 192.0.2.2",
        ]))

        let labeled = [NLRIElement(.labeledPrefix(LabeledPrefix(labels: MPLSLabelStack(labels: [800001]), prefix: IPPrefix("198.51.100.100/32")!)))]
        let labeledUpdate = builder.announce(labeled, family: .ipv4LabeledUnicast, nextHop: .ipv4(IPv4Address(192, 0, 2, 1)), attributes: commonAttributes)[0]
        out.append(("labeled", Array(labeledUpdate.readableBytesView), ["800001", "198.51.100.100"]))

        out.append(("notification", BGPMessage.notification(.cease(subcode: 2, communication: "maintenance window")).encodedBytes(), ["Administratively Shutdown", "maintenance window"]))
        out.append(("route-refresh", BGPMessage.routeRefresh(RouteRefreshMessage(family: .evpn, subtype: .beginningOfRouteRefresh)).encodedBytes(), ["ROUTE-REFRESH", "Demarcation of the beginning of a route refresh (1)", "Layer-2 VPN (25)", "EVPN (70)"]))
        out.append(("keepalive", BGPMessage.keepalive.encodedBytes(), ["KEEPALIVE Message"]))
        return out
    }

    @Test func tsharkReadsWhatWeEncode() throws {
        guard let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Issue.record("tshark is not installed: the README's test command installs it")
            return
        }
        let cases = Self.cases()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-tshark-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var failures: [String] = []
        var checked = 0
        // One capture per case, so each expectation is checked against its own message.
        for (name, bytes, expected) in cases {
            // Our own decoder reads it back first.
            if (try? BGPMessage.decode(bytes: bytes, context: name == "unicast" ? WireContext(fourOctetAS: false) : .standard)) == nil {
                failures.append("\(name): does not decode")
            }
            let file = directory.appendingPathComponent("\(name).pcap")
            try PcapWriter.capture(messages: [bytes]).write(to: file)
            let output = try shell(tshark, ["-r", file.path, "-V", "-O", "bgp", "-o", "tcp.analyze_sequence_numbers:FALSE"], includingStandardError: false)
            if ProcessInfo.processInfo.environment["BAGPIPE_TSHARK_DUMP"] != nil { print("=== \(name)\n\(output)") }
            if output.contains("Malformed") || output.contains("Expert Info (Error") { failures.append("\(name): tshark reports a malformed packet") }
            for line in expected {
                checked += 1
                if !output.contains(line) { failures.append("\(name): tshark does not show \"\(line)\"") }
            }
        }
        print("tshark cross-check: \(cases.count) messages, \(checked - failures.count)/\(checked) fields as encoded")
        if !failures.isEmpty { Issue.record("\(failures.count) mismatches:\n\(failures.joined(separator: "\n"))") }
    }
}

/// Writes BGP messages into a pcap as one TCP stream from 192.0.2.1:179 to 192.0.2.2:50000.
enum PcapWriter {
    static func capture(messages: [[UInt8]]) -> Data {
        var out = Data()
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
        var sequence: UInt32 = 1000
        for (i, message) in messages.enumerated() {
            var packet: [UInt8] = [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]
            let total = 20 + 20 + message.count
            packet += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]
            packet += [0, 179, 0xC3, 0x50] + bigEndian(sequence) + [0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
            packet += message
            sequence &+= UInt32(message.count)
            le32(UInt32(i)); le32(0); le32(UInt32(packet.count)); le32(UInt32(packet.count))
            out.append(contentsOf: packet)
        }
        return out
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}
