import NeutronModel

/// An error as Neutron reports it: the exception's class name (`type`), its message, and the kind
/// that decides the HTTP status (neutron-lib's NotFound, BadRequest, Conflict, NotAuthorized …).
public struct NeutronError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badRequest, notAuthorized, forbidden, notFound, conflict, gone, unauthorized, tooLarge, unsupportedMediaType, notAllowed
    }

    public var kind: Kind
    public var type: String
    public var message: String
    public var detail: String
    /// For a method not allowed: the ones that are (the `Allow` header).
    public var allowedMethods: [String] = []

    public init(_ kind: Kind, _ type: String, _ message: String, detail: String = "") {
        self.kind = kind
        self.type = type
        self.message = message
        self.detail = detail
    }

    public var description: String { "\(type): \(message)" }

    public static func badRequest(_ message: String, type: String = "HTTPBadRequest") -> NeutronError { NeutronError(.badRequest, type, message) }
    public static func invalidInput(_ attribute: String, _ reason: String) -> NeutronError {
        NeutronError(.badRequest, "HTTPBadRequest", "Invalid input for \(attribute). Reason: \(reason).")
    }
    public static func notFound(_ kind: ResourceKind, _ id: String) -> NeutronError {
        NeutronError(.notFound, kind.notFoundType, "\(kind.displayName) \(id) could not be found.")
    }
    public static func conflict(_ type: String, _ message: String) -> NeutronError { NeutronError(.conflict, type, message) }
    public static func notAuthorized(_ message: String = "The request you have made requires authentication or is not authorized.") -> NeutronError {
        NeutronError(.notAuthorized, "NotAuthorized", message)
    }
    public static func policy(_ action: String) -> NeutronError {
        NeutronError(.forbidden, "PolicyNotAuthorized", "(rule:\(action)) is disallowed by policy")
    }
}

extension ResourceKind {
    var displayName: String {
        switch self {
        case .network: "Network"
        case .subnet: "Subnet"
        case .port: "Port"
        case .router: "Router"
        case .bgpvpn: "BGPVPN"
        case .networkAssociation: "BGPVPN network association"
        case .routerAssociation: "BGPVPN router association"
        case .portAssociation: "BGPVPN port association"
        }
    }

    var notFoundType: String {
        switch self {
        case .network: "NetworkNotFound"
        case .subnet: "SubnetNotFound"
        case .port: "PortNotFound"
        case .router: "RouterNotFound"
        case .bgpvpn: "BGPVPNNotFound"
        case .networkAssociation: "BGPVPNNetAssocNotFound"
        case .routerAssociation: "BGPVPNRouterAssocNotFound"
        case .portAssociation: "BGPVPNPortAssocNotFound"
        }
    }
}
