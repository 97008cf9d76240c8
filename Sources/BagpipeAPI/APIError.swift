import BagpipeVPN

/// An API error: the HTTP status and the original's JSON fields `{code, title, message}`. Every
/// client error is a 4xx, also where the original answered 500 (malformed route target, bad
/// `readvertise` or `attract_traffic`, a body that is not an object).
public struct APIError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var title: String
    public var message: String

    public init(status: Int = 400, title: String = "Bad Request", _ message: String) {
        self.status = status
        self.title = title
        self.message = message
    }

    public var description: String { "\(status) \(title): \(message)" }

    /// The status and title of a domain error: a refused request is a 400 (also where the original
    /// answered 500), a failure inside a 500, a dataplane that does not answer a 503.
    public init(_ error: VPNError) {
        switch error.kind {
        case .invalid: self.init(error.message)
        case .failed: self.init(status: 500, title: "Internal Server Error", error.message)
        case .dataplaneUnavailable: self.init(status: 503, title: "Service Unavailable", error.message)
        }
    }
}
