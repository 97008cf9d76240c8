import AgentCore
import NeutronModel

/// What the agent asks of bagpipe-controller (``ControllerClient``).
public protocol ControllerAPI: Sendable {
    func view() async throws -> JSON
    func watch(from version: Int64, heartbeat: Double) async throws -> AsyncThrowingStream<JSON, any Error>
    /// Many at once (one controller write); returns the ports the controller does not know.
    func setPortStatuses(_ statuses: [String: Bool]) async throws -> [String]
}

/// What the agent asks of bagpipe-bgp (``BagpipeBGPClient``).
public protocol BagpipeBGPAPI: Sendable {
    func ping() async throws -> String
    func attach(_ body: JSONObject) async throws
    func detach(_ body: JSONObject) async throws
    func agentEndpoints() async throws -> [LookingGlassEndpoint]
}

extension ControllerClient: ControllerAPI {}
extension BagpipeBGPClient: BagpipeBGPAPI {}
