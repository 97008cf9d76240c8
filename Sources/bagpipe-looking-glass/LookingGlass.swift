import ArgumentParser
import BGPWire
import BagpipeCLI
import Foundation

/// The original's `bagpipe-looking-glass` (reference §10.2): prints a looking-glass node as indented
/// text, following links into sub-nodes with `--recurse`.
@main
struct LookingGlassCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-looking-glass",
        abstract: "Browse the looking glass of a bagpipe-bgp daemon.",
        discussion: """
            The path is a list of segments: bagpipe-looking-glass vpns instances; bagpipe-looking-glass \
            bgp peers 192.0.2.1 protocol. Objects print as 'key: value' lines indented by two spaces, lists \
            as '* item' lines, empty values as '-'; a sub-node prints as its id and '(...)', or, with -r, \
            as its own content.
            """)

    @Option(help: "Address of the bagpipe-bgp API.") var server = "127.0.0.1"
    @Option(help: "Port of the bagpipe-bgp API (default: [API] port of --config-file, else 8082).") var port: Int?
    @Option(help: "URL prefix of the looking glass.") var prefix = "looking-glass"
    @Flag(name: [.short, .customLong("recurse")], help: "Follow links into sub-nodes.") var recurse = false
    @Option(name: .customLong("config-file"), help: "bgp.conf, for [API] port.") var configFile = BagpipeCLI.defaultConfigFile
    @Argument(help: "Path segments of the object to show.") var path: [String] = []

    func run() async throws {
        let port = self.port ?? (try? BagpipeCLI.apiPort(configFile: configFile)) ?? 8082
        let quoted = path.map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? $0 }
        var url = "http://\(server):\(port)/\(prefix)/\(quoted.joined(separator: "/"))"
        do {
            var response = try await BagpipeCLI.request(url)
            guard response.status == 200 else {
                if response.status == 404 {
                    print("No such looking glass path: \(quoted.joined(separator: " "))\n(\(url))")
                } else {
                    print("Error code \(response.status): \(response.body)")
                }
                throw ExitCode(1)
            }
            var data = try BagpipeCLI.json(response.body)
            // A node that is only a link: show what it links to.
            if case .object(let fields) = data, fields.count == 1, let href = data["href"]?.stringValue {
                response = try await BagpipeCLI.request(href)
                if response.status == 200 {
                    url = href
                    data = try BagpipeCLI.json(response.body)
                }
            }
            var printer = Printer(recurse: recurse)
            await printer.print(data, indent: 0, url: url, atLineStart: true)
            Swift.print(printer.output, terminator: "")
        } catch let error as BagpipeCLI.ConnectionFailed {
            print("No server at http://\(server):\(port) : \(error)")
            throw ExitCode(1)
        }
    }
}

/// The original's text layout.
struct Printer {
    let recurse: Bool
    var output = ""

    init(recurse: Bool) { self.recurse = recurse }

    mutating func write(_ s: String) { output += s }
    func spaces(_ n: Int) -> String { String(repeating: " ", count: n) }

    mutating func print(_ value: JSONValue, indent: Int, url: String, atLineStart: Bool) async {
        var atLineStart = atLineStart
        switch value {
        case .object(var fields):
            var linked = false
            if let id = value["id"], value["href"] != nil {
                write(Self.scalar(id))
                fields.removeAll { $0.0 == "id" }
            }
            if let href = value["href"]?.stringValue {
                linked = true
                if recurse, href.hasPrefix(url) {
                    if let response = try? await BagpipeCLI.request(href), response.status == 200, let data = try? BagpipeCLI.json(response.body) {
                        await print(data, indent: indent + 2, url: href, atLineStart: false)
                        return
                    }
                    write(" (ERROR)")
                }
                fields.removeAll { $0.0 == "href" }
                write(" (...)")
                atLineStart = false
            }
            guard !fields.isEmpty else {
                write(linked ? "\n" : "-\n")
                return
            }
            if !atLineStart { write("\n") }
            for (i, (key, v)) in fields.enumerated() {
                if i > 0 || !atLineStart { write(spaces(indent)) }
                write("\(key): ")
                await print(v, indent: indent + 2, url: url, atLineStart: false)
            }
        case .array(let items):
            guard !items.isEmpty else {
                write("-\n")
                return
            }
            if !atLineStart { write("\n") }
            for item in items {
                write(spaces(indent) + "* ")
                switch item {
                case .object, .array: await print(item, indent: indent + 2, url: url, atLineStart: true)
                default: write(Self.scalar(item) + "\n")
                }
            }
        default:
            var text = Self.scalar(value)
            if text.contains("\n") {
                text = text.trimmingCharacters(in: CharacterSet(charactersIn: "\n")).replacingOccurrences(of: "\n", with: "\n" + spaces(indent))
                write("\n" + spaces(indent))
            }
            write(text + "\n")
        }
    }

    /// Scalars as the original's Python printed them.
    static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): s
        case .bool(let b): b ? "True" : "False"
        case .null: "None"
        default: value.serialized()
        }
    }
}
