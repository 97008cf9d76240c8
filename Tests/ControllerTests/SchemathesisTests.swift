import ControllerLab
import BagpipeLab
import Foundation
import Testing

/// Issue 13, acceptance 3: schemathesis (PyPI) generates requests from the controller's OpenAPI
/// description (`GET /openapi.json`): no answer is a 5xx, and every answer matches the
/// description (status codes, content types, bodies, the `Allow` header of a 405).
@Suite(.serialized, .timeLimit(.minutes(10))) struct SchemathesisTests {
    static var venv: String {
        if let v = ProcessInfo.processInfo.environment["BAGPIPE_SCHEMATHESIS_VENV"] { return v }
        return URL(fileURLWithPath: OpenStackVenv.path).deletingLastPathComponent().appendingPathComponent("python-schemathesis").path
    }

    @Test func generatedRequestsGetDescribedAnswers() async throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.venv)/bin/schemathesis") else {
            Issue.record("schemathesis is not installed in \(Self.venv) (scripts/test.sh installs it)")
            return
        }
        let controller = try await ControllerDaemon()
        defer { controller.stop() }
        let token = try await controller.token("admin")
        let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method"
        let (status, output) = try runProcess(
            "\(Self.venv)/bin/schemathesis", ["run", "\(controller.url)/openapi.json", "-H", "X-Auth-Token: \(token)", "--checks", checks, "-n", "25", "--generation-deterministic", "--no-color"],
            in: controller.daemon.directory)
        #expect(status == 0, "schemathesis found failures:\n\(output.suffix(8000))")
        #expect(output.contains("Tested: "), "\(output.suffix(2000))")
    }
}
