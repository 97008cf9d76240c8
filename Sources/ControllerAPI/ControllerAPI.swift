import ControllerCore
import ControllerService
import Foundation
import Hummingbird
import NeutronModel

/// The controller's HTTP server routes: Neutron and networking-bgpvpn under `/v2.0`, the agents'
/// view and watch under `/v2.0/agent`, Keystone v3 under `/v3`, and the versions document at `/`.
public enum ControllerAPI {
    /// `publicURL`: how clients reach this server (the catalog's endpoints point there).
    public static func router(controller: Controller, identity: Identity, publicURL: String, region: String = "RegionOne") -> Hummingbird.Router<BasicRequestContext> {
        let router = Hummingbird.Router()
        let neutron = NeutronAPI(controller: controller, identity: identity)
        router.add(middleware: OtherMethods(neutron: neutron))
        let keystone = KeystoneAPI(identity: identity, publicURL: publicURL, region: region)
        router.get("/") { _, _ in Responses.json(Responses.versions(base: publicURL)) }
        let description = OpenAPI.document
        router.get("/openapi.json") { _, _ in Responses.json(description) }
        router.get("/v3") { _, _ in keystone.versionDocument() }
        router.post("/v3/auth/tokens") { request, _ in await keystone.issue(request) }
        router.get("/v3/auth/tokens") { request, _ in keystone.validate(request) }
        router.head("/v3/auth/tokens") { request, _ in keystone.validate(request) }
        router.get("/v3/projects") { request, _ in keystone.projects(request, id: nil) }
        router.get("/v3/projects/:id") { request, context in keystone.projects(request, id: context.parameters.get("id")) }
        let v2: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var segments = request.uri.path.split(separator: "/").dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
            // Old clients put `.json` on the last segment.
            if let last = segments.last, last.hasSuffix(".json") { segments[segments.count - 1] = String(last.dropLast(5)) }
            return await neutron.handle(request, path: segments)
        }
        for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch] {
            router.on("/v2.0", method: method, use: v2)
            router.on("/v2.0/**", method: method, use: v2)
        }
        return router
    }
}

/// Methods the router has no route for (TRACE, OPTIONS, QUERY …) under `/v2.0` reach the Neutron
/// dispatcher, which answers 405 with the `Allow` header of the resource.
struct OtherMethods: RouterMiddleware {
    typealias Context = BasicRequestContext
    let neutron: NeutronAPI
    static let routed: Set<HTTPRequest.Method> = [.get, .post, .put, .delete, .patch, .head]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !Self.routed.contains(request.method), request.uri.path == "/v2.0" || request.uri.path.hasPrefix("/v2.0/") else {
            return try await next(request, context)
        }
        let segments = request.uri.path.split(separator: "/").dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
        return await neutron.handle(request, path: segments)
    }
}
