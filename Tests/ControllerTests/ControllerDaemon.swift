import BagpipeLab
import ControllerLab
import Foundation
import Testing

/// The virtualenv with tempest, neutron-tempest-plugin, openstacksdk and python-openstackclient:
/// `BAGPIPE_OPENSTACK_VENV`, else `.build/python-openstack` (scripts/test.sh makes it).
enum OpenStackVenv {
    static var path: String {
        if let v = ProcessInfo.processInfo.environment["BAGPIPE_OPENSTACK_VENV"] { return v }
        let here = URL(fileURLWithPath: builtProduct("bagpipe-controller")).deletingLastPathComponent()
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("python-openstack").path
    }

    static var installed: Bool { FileManager.default.isExecutableFile(atPath: "\(path)/bin/tempest") }

    /// Runs a tool of the virtualenv; returns its exit status and output (stdout and stderr).
    static func run(_ tool: String, _ arguments: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
        let searchPath = "\(path)/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        return try runProcess("\(path)/bin/\(tool)", arguments, environment: ["PATH": searchPath], in: directory)
    }
}

/// The PostgreSQL server `scripts/test.sh` starts for the run (`BAGPIPE_POSTGRES_URL`, from
/// `scripts/postgres.sh`); each test takes a database of its own on it.
enum TestPostgres {
    static var url: String? { ProcessInfo.processInfo.environment["BAGPIPE_POSTGRES_URL"] }

    /// A new empty database; its URL.
    static func freshDatabase() throws -> String? {
        guard let url else {
            Issue.record("no PostgreSQL server: BAGPIPE_POSTGRES_URL is unset (scripts/test.sh starts one with scripts/postgres.sh)")
            return nil
        }
        let name = "bagpipe_\(UUID().uuidString.prefix(8).lowercased())"
        let out = try shell("/usr/bin/psql", [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name)"])
        guard let base = url.range(of: "/", options: .backwards) else { throw ControllerTestError("bad BAGPIPE_POSTGRES_URL \(url): \(out)") }
        return String(url[..<base.lowerBound]) + "/" + name
    }
}

/// Where a test's controller keeps its data.
enum Storage: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// The `[database] connection` URL (nil: SQLite in the daemon's folder); throws when PostgreSQL
    /// is wanted and missing (the issue is recorded).
    func database() throws -> String?? {
        switch self {
        case .sqlite: return .some(nil)
        case .postgres: return try TestPostgres.freshDatabase().map { .some($0) } ?? nil
        }
    }
}
