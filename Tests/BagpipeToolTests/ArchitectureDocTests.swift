import Foundation
import Testing

/// Issue 12, acceptance 4: `docs/architecture.md` names only types, files and targets that exist,
/// so the map cannot drift from the code unnoticed.
@Suite struct ArchitectureDocTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every path under the repository's source folders, and all their Swift text.
    static func tree() throws -> (paths: [String], swift: String) {
        var paths: [String] = [], swift = ""
        for folder in ["Sources", "Tests", "Benchmarks", "docs"] {
            let base = root.appendingPathComponent(folder)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker {
                let relative = folder + "/" + url.path.dropFirst(base.path.count + 1)
                paths.append(relative)
                if url.pathExtension == "swift" { swift += try String(contentsOf: url, encoding: .utf8) + "\n" }
            }
        }
        return (paths, swift)
    }

    @Test func everyNameInTheArchitectureGuideExists() throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let (paths, swift) = try Self.tree()
        let names = Set(swift.split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init))
        var missing: [String] = []
        var spans = doc.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        spans.removeAll { $0.contains(" ") && !$0.contains(".swift") && !$0.contains("(") }
        for span in spans {
            // Argument labels (`init(json:)`) and commands (`ovs-vsctl`) are not names of ours.
            for word in span.split(whereSeparator: { " ,()→".contains($0) }).map(String.init) where !word.isEmpty && !word.hasSuffix(":") && !word.contains("-") {
                if word.hasSuffix(".swift") || word.hasSuffix(".md") || word.contains("/") {
                    // A file (`BGPPeer*.swift` is a family of files) or a folder.
                    let pattern = String(word.replacingOccurrences(of: "*", with: "").trimmingSuffix("/"))
                    let parts = pattern.split(separator: ".", maxSplits: 1).map(String.init)
                    let found = paths.contains { path in
                        let file = path.split(separator: "/").last.map(String.init) ?? ""
                        return path.hasSuffix(pattern) || (word.contains("*") && file.hasPrefix(parts[0]) && file.hasSuffix(parts.count > 1 ? parts[1] : ""))
                    }
                    if !found && !word.hasPrefix("/") { missing.append(word) }
                } else {
                    // A type, member or target: each dotted part is a name in the code (targets are
                    // folder names).
                    for part in word.split(separator: ".").map(String.init) where part.first?.isLetter == true {
                        if !names.contains(part) && !paths.contains(where: { $0.hasPrefix("Sources/\(part)") }) { missing.append(word) }
                    }
                }
            }
        }
        #expect(missing.isEmpty, "docs/architecture.md names what does not exist: \(Set(missing).sorted())")
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> Substring { hasSuffix(suffix) ? dropLast(suffix.count) : Substring(self) }
}
