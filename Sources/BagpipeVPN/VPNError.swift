import Dataplane

/// Why the VPN layer refused or could not carry out a request; nothing changed when it is thrown.
/// The domain knows no HTTP: `BagpipeAPI` maps each kind to a status (`APIError`).
public struct VPNError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The request is not acceptable as it is (a missing or malformed field, a conflict with
        /// what is attached).
        case invalid
        /// Something inside failed: a dataplane driver, an exhausted allocator.
        case failed
        /// The dataplane has not answered in time; the change is applied when it does.
        case dataplaneUnavailable
    }

    public var kind: Kind
    public var message: String

    /// A refused request.
    public init(_ message: String) { self.init(.invalid, message) }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func invalid(_ message: String) -> VPNError { VPNError(.invalid, message) }
    public static func failed(_ message: String) -> VPNError { VPNError(.failed, message) }
    public static func missing(_ name: String) -> VPNError { VPNError("Missing parameter: '\(name)'") }

    public var description: String { message }

    /// A dataplane error as the request's: the VPN layer's own and a driver's refusal
    /// (`DataplaneRefusal`) are the caller's to fix; anything else failed inside, named with what
    /// was being done. One mapping for drivers behind the executor and drivers called directly.
    static func dataplane(_ error: any Error, _ doing: String) -> VPNError {
        if let e = error as? VPNError { return e }
        if let refusal = error as? DataplaneRefusal { return VPNError(refusal.description) }
        return .failed("\(doing): \(error)")
    }
}
