import Foundation
import NeutronModel

/// Reads a request's resource body attribute by attribute with Neutron's validators and messages;
/// `finish()` rejects whatever was not read (an unknown attribute is a 400, as Neutron's API layer
/// answers). Attributes that are read-only, or not allowed on this method, are named by the caller.
public struct RequestAttributes {
    let body: JSONObject
    private var read: Set<String> = []
    public let resource: String

    public init(_ body: JSONObject, resource: String) {
        self.body = body
        self.resource = resource
    }

    /// The body of `{"<member>": {...}}`.
    public static func unwrap(_ document: JSON, member: String) throws -> RequestAttributes {
        guard case .object(let outer) = document else { throw NeutronError.badRequest("The request body must be a JSON object") }
        guard let inner = outer[member] else { throw NeutronError.badRequest("Resource body required: expected '\(member)'") }
        guard outer.count == 1 else { throw NeutronError.badRequest("Unrecognized attribute(s) '\(outer.keys.filter { $0 != member }.joined(separator: ", "))'") }
        guard case .object(let body) = inner else { throw NeutronError.badRequest("Body of '\(member)' must be an object") }
        return RequestAttributes(body, resource: member)
    }

    public func has(_ key: String) -> Bool { body[key] != nil }

    public mutating func raw(_ key: String) -> JSON? {
        read.insert(key)
        return body[key]
    }

    /// Rejects attributes that may not be set at all, or not on this method.
    public func forbid(_ keys: [String], reason: String = "cannot be set") throws {
        for k in keys where body[k] != nil {
            throw NeutronError.badRequest("Attribute '\(k)' not allowed in \(reason == "cannot be set" ? "POST" : reason)")
        }
    }

    public func finish() throws {
        let unknown = body.keys.filter { !read.contains($0) }
        guard unknown.isEmpty else { throw NeutronError.badRequest("Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'") }
    }

    public mutating func string(_ key: String, max: Int = 255, allowNull: Bool = false) throws -> String?? {
        guard let v = raw(key) else { return nil }
        switch v {
        case .null where allowNull: return .some(nil)
        case .string(let s):
            guard s.count <= max else { throw NeutronError.invalidInput(key, "'\(s.prefix(40))…' exceeds maximum length of \(max)") }
            return .some(s)
        default: throw NeutronError.invalidInput(key, "'\(v.serialized.prefix(60))' is not a valid string")
        }
    }

    /// Neutron's `convert_to_boolean`: true/false, or their string forms.
    public mutating func bool(_ key: String) throws -> Bool? {
        guard let v = raw(key) else { return nil }
        switch v {
        case .bool(let b): return b
        case .string(let s) where ["true", "false", "1", "0"].contains(s.lowercased()): return s.lowercased() == "true" || s == "1"
        case .int(let i) where i == 0 || i == 1: return i == 1
        default: throw NeutronError.invalidInput(key, "'\(v.serialized.prefix(60))' cannot be converted to boolean")
        }
    }

    /// An integer in a range, from a JSON number or a string of digits (`convert_to_int`).
    public mutating func integer(_ key: String, in range: ClosedRange<Int64>, allowNull: Bool = false) throws -> Int64?? {
        guard let v = raw(key) else { return nil }
        let n: Int64
        switch v {
        case .null where allowNull: return .some(nil)
        case .int(let i): n = i
        case .string(let s):
            guard let i = Int64(s) else { throw NeutronError.invalidInput(key, "'\(s.prefix(40))' is not an integer") }
            n = i
        default: throw NeutronError.invalidInput(key, "'\(v.serialized.prefix(60))' is not an integer")
        }
        guard range.contains(n) else { throw NeutronError.invalidInput(key, "'\(n)' is not in range \(range.lowerBound) through \(range.upperBound)") }
        return .some(n)
    }

    public mutating func uuid(_ key: String) throws -> String? {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v, Identifiers.isUUID(s) else { throw NeutronError.invalidInput(key, "'\(v.serialized.prefix(60))' is not a valid UUID") }
        return s.lowercased()
    }

    /// One of `allowed`.
    public mutating func choice(_ key: String, _ allowed: [String]) throws -> String? {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v, allowed.contains(s) else {
            throw NeutronError.invalidInput(key, "'\(v.serialized.prefix(60))' is not in \(allowed)")
        }
        return s
    }

    /// A list of strings; a single string is taken as a list of one, null as empty (as networking-bgpvpn
    /// converts route target lists).
    public mutating func stringList(_ key: String, each check: (String) -> Bool = { _ in true }, what: String = "value") throws -> [String]? {
        guard let v = raw(key) else { return nil }
        let items: [JSON]
        switch v {
        case .null: return []
        case .string: items = [v]
        case .array(let a): items = a
        default: throw NeutronError.invalidInput(key, "'\(v.serialized.prefix(60))' is not a list")
        }
        return try items.map { item in
            guard case .string(let s) = item, check(s) else { throw NeutronError.invalidInput(key, "'\(item.serialized.prefix(60))' is not a valid \(what)") }
            return s
        }
    }

    public mutating func project() throws -> String? {
        let p = try string("project_id")?.flatMap { $0 }
        let t = try string("tenant_id")?.flatMap { $0 }
        if let p, let t, p != t { throw NeutronError.badRequest("'project_id' and 'tenant_id' do not match") }
        return p ?? t
    }
}

/// Resource identifiers and timestamps.
public enum Identifiers {
    public static func newUUID() -> String { UUID().uuidString.lowercased() }

    public static func isUUID(_ s: String) -> Bool {
        guard s.utf8.count == 36 else { return false }
        for (i, c) in s.utf8.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                if c != UInt8(ascii: "-") { return false }
            } else if !((0x30...0x39).contains(c) || (0x61...0x66).contains(c) || (0x41...0x46).contains(c)) {
                return false
            }
        }
        return true
    }

    /// Neutron's timestamp form: `2026-12-04T10:00:00Z`.
    public static func timestamp(_ date: Date = Date()) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
    }
}
