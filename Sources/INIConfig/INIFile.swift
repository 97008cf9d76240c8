/// An oslo.config-style INI file: `[SECTION]` headers (names case-insensitive), `key = value` or
/// `key: value` lines, `#` and `;` comments, indented lines continuing the previous value. Files read
/// later override earlier ones (`--config-file` then `--config-dir`).
public struct INIFile: Sendable {
    public struct Entry: Sendable, Hashable {
        public var value: String
        /// Where it was set, for error messages.
        public var origin: String
    }

    /// Section (upper-cased) → option → entry.
    public private(set) var sections: [String: [String: Entry]] = [:]

    public init() {}

    public init(parsing text: String, origin: String) throws {
        try merge(text, origin: origin)
    }

    public mutating func merge(_ text: String, origin: String) throws {
        var section: String?
        var last: (section: String, key: String)?
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let trimmed = line.trimmingWhitespace
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if line.first == " " || line.first == "\t", let (s, k) = last {
                sections[s]?[k]?.value += "\n" + trimmed
                continue
            }
            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]"), trimmed.count > 2 else { throw ConfigurationError("\(origin):\(n + 1): malformed section header \(trimmed)") }
                let name = String(trimmed.dropFirst().dropLast()).trimmingWhitespace.uppercased()
                section = name
                sections[name, default: [:]] = sections[name] ?? [:]
                last = nil
                continue
            }
            guard let separator = trimmed.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw ConfigurationError("\(origin):\(n + 1): expected 'option = value', found \(trimmed)")
            }
            guard let section else { throw ConfigurationError("\(origin):\(n + 1): option outside of a [SECTION]") }
            let key = String(trimmed[..<separator]).trimmingWhitespace
            let value = String(trimmed[trimmed.index(after: separator)...]).trimmingWhitespace
            sections[section, default: [:]][key] = Entry(value: value, origin: "\(origin):\(n + 1)")
            last = (section, key)
        }
    }

    public func value(_ section: String, _ key: String) -> Entry? { sections[section.uppercased()]?[key] }
}

public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension StringProtocol {
    public var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
