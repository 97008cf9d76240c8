import HashTreeCollections
import NeutronModel

/// A list request's query: filters (a key repeated is an OR of its values), `fields`, sorting and
/// pagination, as Neutron's API layer reads them.
public struct ListQuery: Sendable {
    public var filters: [(String, [String])] = []
    public var fields: [String] = []
    public var sortKeys: [(String, ascending: Bool)] = []
    public var limit: Int?
    public var marker: String?

    public init() {}

    /// Query parameters that are not filters.
    static let control: Set<String> = ["fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "tags", "tags-any", "not-tags", "not-tags-any"]

    public init(_ items: [(String, String)]) throws {
        var filters: [String: [String]] = [:]
        var order: [String] = []
        var sortKeys: [String] = [], sortDirs: [String] = []
        for (k, v) in items {
            switch k {
            case "fields": fields += v.split(separator: ",").map(String.init)
            case "sort_key": sortKeys.append(v)
            case "sort_dir":
                guard v == "asc" || v == "desc" else { throw NeutronError.badRequest("Sort direction '\(v.prefix(20))' is not supported: asc or desc") }
                sortDirs.append(v)
            case "limit":
                guard let n = Int(v), n >= 0 else { throw NeutronError.badRequest("Limit must be an integer 0 or greater and not '\(v.prefix(20))'") }
                limit = n == 0 ? nil : n
            case "marker": marker = v
            case _ where Self.control.contains(k): continue
            default:
                if filters[k] == nil { order.append(k) }
                filters[k, default: []].append(v)
            }
        }
        guard sortDirs.isEmpty || sortDirs.count == sortKeys.count else { throw NeutronError.badRequest("The number of sort_keys and sort_dirs must be the same") }
        self.sortKeys = sortKeys.enumerated().map { ($1, sortDirs.isEmpty || sortDirs[$0] == "asc") }
        self.filters = order.map { ($0, filters[$0] ?? []) }
    }

    /// Applies filters, sorting, pagination and `fields` to rendered resources. `filterable` names
    /// the attributes that may be filtered on (Neutron's filter validation: others are a 400).
    public func apply(_ items: [JSONObject], filterable: Set<String>) throws -> [JSONObject] {
        for (k, _) in filters where !filterable.contains(k) {
            throw NeutronError.badRequest("[\(k)] is invalid attribute for filtering", type: "HTTPBadRequest")
        }
        for (k, _) in sortKeys where !filterable.contains(k) {
            throw NeutronError.badRequest("\(k) is an invalid attribute for sort_keys")
        }
        var out = items.filter { item in
            filters.allSatisfy { key, values in
                guard let v = item[key] else { return false }
                return values.contains { Self.matches(v, $0) }
            }
        }
        let keys = sortKeys.isEmpty ? [("id", ascending: true)] : sortKeys + [("id", ascending: true)]
        out.sort { a, b in
            for (k, asc) in keys {
                let x = Self.sortText(a[k]), y = Self.sortText(b[k])
                if x != y { return asc ? x < y : x > y }
            }
            return false
        }
        if let marker, let i = out.firstIndex(where: { $0["id"]?.stringValue == marker }) { out.removeFirst(i + 1) }
        if let limit, out.count > limit { out = Array(out.prefix(limit)) }
        if !fields.isEmpty { out = out.map { $0.keeping(Set(fields)) } }
        return out
    }

    static func matches(_ value: JSON, _ wanted: String) -> Bool {
        switch value {
        case .string(let s): s == wanted
        case .bool(let b): wanted.lowercased() == (b ? "true" : "false") || wanted == (b ? "1" : "0")
        case .int(let i): String(i) == wanted
        case .null: wanted == "" || wanted.lowercased() == "none" || wanted.lowercased() == "null"
        case .array(let items): items.contains { matches($0, wanted) }
        case .object(let o): o["ip_address"].map { matches($0, wanted) } ?? false
        case .double(let d): String(d) == wanted
        }
    }

    static func sortText(_ v: JSON?) -> String {
        switch v {
        case .string(let s): s
        case .int(let i): String(format: "%020lld", i + Int64(Int32.max))
        case .some(let other): other.serialized
        case nil: ""
        }
    }
}

extension ControllerState {
    /// Every resource of a kind the caller may see, rendered for them, in a stable order.
    public func visibleResources(_ kind: ResourceKind, for caller: Caller, bgpvpn: String? = nil) -> [JSONObject] {
        func all<R: NeutronResource>(_ table: TreeDictionary<String, R>) -> [R] { table.values.filter { caller.sees($0) } }
        switch kind {
        case .network: return all(networks).map(render)
        case .subnet: return all(subnets).map(render)
        case .port: return all(ports).map(render)
        case .router: return all(routers).map(render)
        case .bgpvpn: return all(bgpvpns).map { render($0, for: caller) }
        case .networkAssociation: return all(networkAssociations).filter { bgpvpn == nil || $0.bgpvpnID == bgpvpn }.map { Self.hidingProject(render($0), caller) }
        case .routerAssociation: return all(routerAssociations).filter { bgpvpn == nil || $0.bgpvpnID == bgpvpn }.map { Self.hidingProject(render($0), caller) }
        case .portAssociation: return all(portAssociations).filter { bgpvpn == nil || $0.bgpvpnID == bgpvpn }.map { Self.hidingProject(render($0), caller) }
        }
    }
}
