import ControllerCore
import Crypto
import Foundation

/// A minimal Keystone: users from the configuration, each in one project of domain `Default`
/// with roles, and signed tokens (as Keystone's Fernet tokens: nothing stored, any replica that
/// shares the key validates them; the key lives in the database so replicas share it).
public struct Identity: Sendable {
    public struct User: Sendable, Equatable {
        public var name: String
        public var password: String
        public var project: String
        public var roles: [String]

        public init(name: String, password: String, project: String, roles: [String]) {
            self.name = name
            self.password = password
            self.project = project
            self.roles = roles
        }

        /// Keystone-style ids (32 hex digits), stable across restarts and replicas.
        public var id: String { Identity.id("user", name) }
        public var projectID: String { Identity.id("project", project) }
    }

    public struct Token: Sendable {
        public var text: String
        public var user: User
        public var issuedAt: Date
        public var expiresAt: Date
        public var caller: Caller {
            Caller(userID: user.id, userName: user.name, projectID: user.projectID, roles: Set(user.roles), host: user.roles.contains("agent") ? user.name : nil)
        }
    }

    public let users: [String: User]
    /// The signing key's bytes (`SymmetricKey` is not Sendable).
    let keyBytes: Data
    var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    public let lifetime: TimeInterval

    public init(users: [User], secret: String, lifetime: TimeInterval = 3600) {
        self.users = Dictionary(users.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        keyBytes = Data(SHA256.hash(data: Data(secret.utf8)))
        self.lifetime = lifetime
    }

    static func id(_ kind: String, _ name: String) -> String {
        SHA256.hash(data: Data("\(kind):\(name)".utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    public static let domainID = "default"
    public static let domainName = "Default"

    public enum Failure: Error, Equatable { case badCredentials, badScope(String) }

    /// The password method; `project` (a name or id), when given, must be the user's.
    public func authenticate(user name: String?, userID: String?, password: String, project: String?, now: Date = Date()) throws -> Token {
        guard let user = name.flatMap({ users[$0] }) ?? userID.flatMap({ id in users.values.first { $0.id == id } }),
            Self.constantTimeEqual(user.password, password)
        else { throw Failure.badCredentials }
        if let project, project != user.project, project != user.projectID { throw Failure.badScope(project) }
        let expires = now.addingTimeInterval(lifetime)
        let payload = "\(user.name)|\(Int64(now.timeIntervalSince1970))|\(Int64(expires.timeIntervalSince1970))|\(UUID().uuidString)"
        let body = Self.base64url(Data(payload.utf8))
        let mac = Self.base64url(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)))
        return Token(text: body + "." + mac, user: user, issuedAt: now, expiresAt: expires)
    }

    /// The token's user, if it is ours, unexpired, and its user still configured.
    public func validate(_ text: String, now: Date = Date()) -> Token? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = Self.unbase64url(String(parts[1])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(parts[0].utf8), using: key),
            let payload = Self.unbase64url(String(parts[0])).flatMap({ String(data: $0, encoding: .utf8) })
        else { return nil }
        let fields = payload.split(separator: "|").map(String.init)
        guard fields.count == 4, let user = users[fields[0]], let issued = Int64(fields[1]), let expires = Int64(fields[2]),
            Double(expires) > now.timeIntervalSince1970
        else { return nil }
        return Token(text: text, user: user, issuedAt: Date(timeIntervalSince1970: Double(issued)), expiresAt: Date(timeIntervalSince1970: Double(expires)))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func base64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ s: String) -> Data? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t)
    }
}
