#if canImport(Glibc)
import Glibc
#endif

/// An oslo.config-style INI file: `[SECTION]` headers (names case-insensitive), `key = value` or
/// `key: value` lines, `#` and `;` comments (whole lines, or after a value and a space, as the
/// sample files write them), indented lines continuing the previous value. Files read later override
/// earlier ones (`--config-file` then `--config-dir`).
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

    /// The files named on a command line (`--config-file`, repeated: later ones override), read and
    /// merged; a file that cannot be read is a `ConfigurationError` naming it.
    public init(files paths: [String]) throws {
        for path in paths {
            guard let text = Self.read(path) else { throw ConfigurationError("cannot read the configuration file \(path)") }
            try merge(text, origin: path)
        }
    }

    /// A file's text, without Foundation (this module stays light).
    static func read(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n > 0 { bytes += buffer[0..<n] }
            if n < buffer.count { break }
        }
        return String(decoding: bytes, as: UTF8.self)
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
            let value = Self.strippingComment(trimmed[trimmed.index(after: separator)...]).trimmingWhitespace
            sections[section, default: [:]][key] = Entry(value: value, origin: "\(origin):\(n + 1)")
            last = (section, key)
        }
    }

    public func value(_ section: String, _ key: String) -> Entry? { sections[section.uppercased()]?[key] }

    /// A value without its trailing ` ; comment` or ` # comment`.
    static func strippingComment(_ value: Substring) -> String {
        var previous: Character = " "
        for i in value.indices {
            let c = value[i]
            if (c == ";" || c == "#"), previous.isWhitespace, i != value.startIndex { return String(value[..<i]) }
            previous = c
        }
        return String(value)
    }

    // MARK: - Typed values; each error names the option, its value and where it was set.

    public func string(_ section: String, _ key: String) -> String? { value(section, key)?.value }

    public func integer(_ section: String, _ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let e = value(section, key) else { return nil }
        guard let n = Int(e.value), range.contains(n) else {
            throw ConfigurationError("\(e.origin): [\(section)] \(key) = \(e.value): expected an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    public func seconds(_ section: String, _ key: String) throws -> Double? {
        guard let e = value(section, key) else { return nil }
        guard let n = Double(e.value), n > 0, n.isFinite else { throw ConfigurationError("\(e.origin): [\(section)] \(key) = \(e.value): expected a positive number of seconds") }
        return n
    }

    public func boolean(_ section: String, _ key: String) throws -> Bool? {
        guard let e = value(section, key) else { return nil }
        switch e.value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigurationError("\(e.origin): [\(section)] \(key) = \(e.value): expected true or false")
        }
    }

    /// A comma-separated list, items trimmed, empty items dropped.
    public func list(_ section: String, _ key: String) -> [String]? {
        value(section, key).map { $0.value.split(separator: ",").map(\.trimmingWhitespace).filter { !$0.isEmpty } }
    }

    /// One of `allowed`.
    public func choice(_ section: String, _ key: String, _ allowed: [String]) throws -> String? {
        guard let e = value(section, key) else { return nil }
        guard allowed.contains(e.value) else { throw ConfigurationError("\(e.origin): [\(section)] \(key) = \(e.value): expected one of \(allowed.joined(separator: ", "))") }
        return e.value
    }

    /// The error for a value that read but does not make sense, naming the option.
    public func invalid(_ section: String, _ key: String, _ why: String) -> ConfigurationError {
        let e = value(section, key)
        return ConfigurationError("\(e?.origin ?? "configuration"): [\(section)] \(key) = \(e?.value ?? ""): \(why)")
    }
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
