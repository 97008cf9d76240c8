import BGPWire
import Dispatch
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The attachments in force, kept in a file so that a restarted daemon plugs them again (the
/// original lost them all, and waited for its agent to notice the new /ping and replay them). Each
/// entry is an attach request as the API received it; a detach removes the entries it undoes. The
/// file is replaced atomically (written beside, then renamed) after each change, on a queue of its
/// own: a slow disk never holds the BGP event loop.
public final class AttachmentStore: @unchecked Sendable {
    public let path: String
    /// (instance, MAC, address) → request, in the order they were first attached. On `queue` only.
    private var entries: [(key: Key, request: JSONValue)] = []
    /// The manager's identifiers (`VPNManager.identifiers`) as of the last change. On `queue` only.
    private var identifiers: [String: UInt32] = [:]
    private let queue = DispatchQueue(label: "bagpipe.attachments")
    let logger = Logger(label: "bagpipe.vpn.store")

    struct Key: Hashable {
        var instance: String
        var mac: MACAddress
        var ip: String?
    }

    public init(path: String) { self.path = path }

    /// The requests in the file (none when it does not exist yet).
    public func load() throws -> [JSONValue] { try readFile()?["attachments"]?.arrayValue ?? [] }

    /// The identifiers the attachments had (`VPNManager.identifierHints`); none in a file of an
    /// older version.
    public func loadIdentifiers() throws -> [String: UInt32] {
        guard case .object(let members)? = try readFile()?["identifiers"] else { return [:] }
        var out: [String: UInt32] = [:]
        for (key, value) in members { if let n = value.intValue, let v = UInt32(exactly: n) { out[key] = v } }
        return out
    }

    private func readFile() throws -> JSONValue? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return [] }
            throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 { throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        guard !bytes.isEmpty else { return nil }
        let json = try JSONValue(parsing: bytes)
        guard case .object = json, json["attachments"]?.arrayValue != nil else { throw StoreError("\(path) is not an attachments file") }
        return json
    }

    static func key(_ r: AttachRequest) -> Key { Key(instance: r.vpnInstanceID, mac: r.mac, ip: r.ipAddress.map { "\($0.prefix)" }) }

    /// An attach succeeded.
    public func attached(_ r: AttachRequest, identifiers: [String: UInt32]) {
        let (k, raw) = (Self.key(r), r.raw)
        queue.async {
            self.identifiers = identifiers
            if let i = self.entries.firstIndex(where: { $0.key == k }) { self.entries[i].request = raw } else { self.entries.append((k, raw)) }
            self.save()
        }
    }

    /// A detach succeeded: what it undid goes (every address of the MAC when it names none).
    public func detached(_ r: DetachRequest, identifiers: [String: UInt32]) {
        let (ip, instance, mac) = (r.ipAddress.map { "\($0.prefix)" }, r.vpnInstanceID, r.mac)
        queue.async {
            self.identifiers = identifiers
            self.entries.removeAll { $0.key.instance == instance && $0.key.mac == mac && (ip == nil || $0.key.ip == ip) }
            self.save()
        }
    }

    /// Exactly these attachments (what a restart plugged again).
    public func replace(with requests: [AttachRequest], identifiers: [String: UInt32]) {
        let list = requests.map { (key: Self.key($0), request: $0.raw) }
        queue.async {
            self.identifiers = identifiers
            self.entries = list
            self.save()
        }
    }

    /// Waits until every change so far is on disk (tests, shutdown).
    public func sync() { queue.sync {} }

    private func save() {
        let ids = JSONValue.object(identifiers.sorted { $0.key < $1.key }.map { ($0.key, JSONValue(Int($0.value))) })
        let text = JSONValue.object([("attachments", .array(entries.map(\.request))), ("identifiers", ids)]).serialized() + "\n"
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            logger.error("cannot write \(temporary): \(String(cString: strerror(errno))); attachments are not saved")
            return
        }
        let bytes = Array(text.utf8)
        let written = write(fd, bytes, bytes.count)
        fsync(fd)
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            logger.error("cannot replace \(path): \(String(cString: strerror(errno))); attachments are not saved")
            return
        }
    }

    struct StoreError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
