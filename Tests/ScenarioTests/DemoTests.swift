import BagpipeLab
import Foundation
import Testing

/// Issue 15, acceptance 7: the README's first command works, and `down` leaves nothing behind. The
/// demo checks itself as it goes (every ping must be answered, no host may hold a route of a network
/// where it has no port): its exit status says whether it did what it shows.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DemoTests {
    @Test func theDemoRunsAndTearsDown() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/demo.sh").standardized.path
        defer { _ = try? runProcess("/bin/bash", [script, "down"]) }
        // Its output and its exit status go to files, and the test polls for the status: neither the
        // end of a pipe nor the exit notification of the process (the demo leaves daemons behind it on
        // purpose) is what it waits for.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-demo-test-\(UUID().uuidString.prefix(8))")
        let log = base.appendingPathExtension("log"), statusFile = base.appendingPathExtension("status")
        defer { for f in [log, statusFile] { try? FileManager.default.removeItem(at: f) } }
        let demo = Process()
        demo.executableURL = URL(fileURLWithPath: "/bin/bash")
        demo.arguments = ["-c", "BAGPIPE_DEMO_SKIP_BUILD=1 /bin/bash '\(script)' > '\(log.path)' 2>&1 < /dev/null; echo $? > '\(statusFile.path)'"]
        demo.standardInput = FileHandle.nullDevice
        demo.standardOutput = FileHandle.nullDevice
        demo.standardError = FileHandle.nullDevice
        try demo.run()
        let code = try await poll(timeout: 540) { (try? String(contentsOf: statusFile, encoding: .utf8)) ?? "" } until: { $0.hasSuffix("\n") }
        let status = Int32(code.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "demo.sh exited \(status):\n\(output.suffix(6000))")
        // The three kinds of traffic it shows, each answered.
        let answered = output.components(separatedBy: "3 received, 0% packet loss").count - 1
        #expect(answered == 3, "\(answered) ping runs fully answered:\n\(output.suffix(4000))")
        #expect(output.contains("hold no route of net2"))
        let (downStatus, _) = try runProcess("/bin/bash", [script, "down"])
        #expect(downStatus == 0)
        let left = try run(["ip", "netns", "list"]).split(separator: "\n").filter { $0.hasPrefix("bgpdemo-") }
        #expect(left.isEmpty, "namespaces left: \(left)")
        let processes = (try? runProcess("/usr/bin/pgrep", ["-f", "--", "--config-file /tmp/bagpipe-demo/"]).output) ?? ""
        #expect(processes.isEmpty, "processes left: \(processes)")
    }
}
