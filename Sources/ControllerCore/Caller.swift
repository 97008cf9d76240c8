import NeutronModel

/// Who makes a request, from their token: the project they act in and their roles. Neutron's
/// default policies (§3.8) follow from it.
public struct Caller: Sendable, Equatable {
    public var userID: String
    public var userName: String
    public var projectID: String
    public var roles: Set<String>
    /// For an agent's token: the one host whose view it may read.
    public var host: String?

    public init(userID: String, userName: String, projectID: String, roles: Set<String>, host: String? = nil) {
        self.userID = userID
        self.userName = userName
        self.projectID = projectID
        self.roles = roles
        self.host = host
    }

    public var isAdmin: Bool { roles.contains("admin") }
    public var isAgent: Bool { roles.contains("agent") }

    /// Owner or admin: what `admin_or_owner` allows.
    public func owns(_ projectID: String) -> Bool { isAdmin || projectID == self.projectID }

    /// Whether the resource is visible: a non-owner sees neither it nor its existence (404).
    public func sees(_ r: some NeutronResource) -> Bool {
        if owns(r.projectID) { return true }
        if let n = r as? Network { return n.shared || n.external }
        return false
    }

    /// An admin may act for another project; anyone else only for their own.
    public func project(for requested: String?) throws -> String {
        guard let requested, requested != projectID else { return projectID }
        guard isAdmin else { throw NeutronError.badRequest("Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges") }
        return requested
    }
}
