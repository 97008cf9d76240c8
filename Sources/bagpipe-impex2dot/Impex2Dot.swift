import Foundation
import ArgumentParser
import BGPWire
import BagpipeCLI

/// The original's `bagpipe-impex2dot` (reference §10.4): a Graphviz graph of which VPN instances
/// import and export which route targets, across one or more bagpipe-bgp servers.
@main
struct Impex2Dot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-impex2dot",
        abstract: "Draw the route targets imported and exported by the VPN instances of bagpipe-bgp servers.",
        discussion: "Example: bagpipe-impex2dot --server s1 --server s2 | dot -Tpdf > impex.pdf")

    @Option(name: .customLong("server"), help: "A bagpipe-bgp API address (repeatable; default localhost).") var servers: [String] = []
    @Option(help: "Port of the bagpipe-bgp API (default: [API] port of --config-file, else 8082).") var port: Int?
    @Option(help: "URL prefix of the looking glass.") var prefix = "looking-glass"
    @Option(name: .customLong("config-file"), help: "bgp.conf, for [API] port.") var configFile = BagpipeCLI.defaultConfigFile

    /// One VPN instance of one server, with what the graph needs of it.
    struct Instance {
        var server: String
        var id: String
        var type: String
        var imports: [String]
        var exports: [String]
        var readvertise: (from: String, to: String)?
        var ports: [String]
        var linkedVRF: String?
    }

    static func normalize(_ s: String) -> String {
        s.replacingOccurrences(of: "target:", with: "rt:").map { ":-.".contains($0) ? "_" : String($0) }.joined()
    }

    static func short(_ id: String) -> String { id.count > 11 ? id.prefix(4) + ".." + id.suffix(5) : id }
    static func uid(_ server: String, _ id: String) -> String { "vpn_\(normalize(server))__\(normalize(id))" }

    func get(_ server: String, _ port: Int, _ path: [String]) async throws -> JSONValue {
        let url = "http://\(server):\(port)/\(prefix)/" + path.map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0 }.joined(separator: "/")
        do {
            let response = try await BagpipeCLI.request(url)
            if response.status == 404 { return .object([]) }
            guard response.status == 200 else { throw ValidationError("Error requesting \(url): \(response.status) \(response.body)") }
            return try BagpipeCLI.json(response.body)
        } catch let error as BagpipeCLI.ConnectionFailed {
            throw ValidationError("Error requesting \(url): \(error)")
        }
    }

    func run() async throws {
        let port = self.port ?? (try? BagpipeCLI.apiPort(configFile: configFile)) ?? 8082
        var instances: [Instance] = []
        for server in servers.isEmpty ? ["localhost"] : servers {
            for item in try await get(server, port, ["vpns", "instances"]).arrayValue ?? [] {
                guard let id = item["id"]?.stringValue else { continue }
                let node = try await get(server, port, ["vpns", "instances", id])
                let strings = { (v: JSONValue?) in (v?.arrayValue ?? []).compactMap(\.stringValue) }
                var readvertise: (String, String)?
                if let r = node["readvertise"], let from = strings(r["from"]).first, let to = strings(r["to"]).first { readvertise = (from, to) }
                let ports: [String]
                if case .object(let fields)? = try await get(server, port, ["vpns", "instances", id, "ports"]) as JSONValue? { ports = fields.map(\.0) } else { ports = [] }
                instances.append(
                    Instance(
                        server: server, id: id, type: String((item["name"]?.stringValue ?? "").prefix(3)),
                        imports: strings(node["route_targets"]?["import"]), exports: strings(node["route_targets"]?["export"]),
                        readvertise: readvertise, ports: ports, linkedVRF: node["gateway_port"]?["ipvpn"]?["external_instance_id"]?.stringValue))
            }
        }
        print(Self.graph(instances), terminator: "")
    }

    static let rtText = #"color="orange",fontcolor="orange""#
    static let rtEdge = #"color="orange",fontcolor="orange",arrowhead=onormal"#
    static let readvFrom = #"color="orange",fontcolor="orange",style=dashed,arrowhead=diamond,arrowtail=oinv,headclip=false,dir=both"#
    static let readvTo = #"color="orange",fontcolor="orange",style=dashed,arrowhead=onormal,tailclip=false,dir=both,arrowtail=oinv"#
    static let portLink = #"style=dashed,dir=none,color="gray",weight=3"#

    static func graph(_ instances: [Instance]) -> String {
        var out = "digraph import_export {\n   node [fontname=\"Helvetica\"];\n   edge [fontname=\"Helvetica\"];\n   nodesep=0.55;\n"
        var rts = Set<String>()
        for i in instances {
            rts.formUnion((i.imports + i.exports).map(normalize))
            if let r = i.readvertise { rts.formUnion([normalize(r.from), normalize(r.to)]) }
        }
        out += "   subgraph rts {\n       rank=same;\n"
        for rt in rts.sorted() { out += "        \(rt) [shape=\"circle\",label=\"\(rt.uppercased().replacingOccurrences(of: "_", with: "\\n"))\",\(rtText)];\n" }
        out += "    }\n"
        func server(_ s: String) -> String { s == "localhost" ? "" : "\\n[\(s)]" }
        out += "    subgraph ipvpns {\n        rank=same;\n"
        for i in instances where i.type == "VRF" { out += "        \(uid(i.server, i.id)) [label=\"{<0>VRF\\n\(short(i.id))\(server(i.server))|<readv>}\",shape=\"record\"];\n" }
        out += "    }\n    subgraph evpns {\n"
        for i in instances where i.type == "EVI" { out += "        \(uid(i.server, i.id)) [label=\"{<0>EVI\\n\(short(i.id))\(server(i.server))}\",shape=\"record\"];\n" }
        out += "    }\n"
        var ports: [(String, String)] = []
        for i in instances {
            let u = uid(i.server, i.id)
            out += "    /* \(i.server):\(i.id) */\n"
            for rt in i.imports { out += "    \(normalize(rt)) -> \(u):0 [\(rtEdge)];\n" }
            for rt in i.exports { out += "    \(u):0 -> \(normalize(rt)) [\(rtEdge)];\n" }
            if let r = i.readvertise {
                out += "    \(normalize(r.from)) -> \(u):readv [label=\"\",\(readvFrom)];\n"
                out += "    \(u):readv -> \(normalize(r.to)) [label=\"\",\(readvTo)];\n"
            }
            for p in i.ports {
                out += "    \(u) -> port_\(normalize(i.server))_\(normalize(p)) [\(portLink),weight=5];\n"
                ports.append((i.server, normalize(p)))
            }
            if let vrf = i.linkedVRF { out += "    \(u) -> \(uid(i.server, vrf)) [weight=500];\n" }
        }
        var dests: [(String, String)] = []
        for (s, p) in ports {
            out += "    port_\(normalize(s))_\(p) [label=\"\",style=invis,height=0,width=0,fixedsize=true];\n"
            if p.hasPrefix("to_"), let dest = p.split(separator: "_").dropFirst().first {
                out += "    port_\(normalize(s))_\(p) -> dest_\(normalize(s))_\(dest) [style=dashed,dir=none,color=\"gray\",weight=5];\n"
                if !dests.contains(where: { $0 == (s, String(dest)) }) { dests.append((s, String(dest))) }
            }
        }
        for (s, d) in dests { out += "    dest_\(normalize(s))_\(normalize(d)) [label=\"\(d)\\n[\(s)]\",shape=\"square\",color=\"gray\"];\n" }
        return out + "}\n"
    }
}
