import ArgumentParser
import Foundation

/// The original Python bagpipe-bgp, networking-bagpipe `version` with ExaBGP 4.2.25 (the last
/// release whose sessions come up with it), in a virtualenv the harness makes when it is missing.
enum PythonOriginal {
    static func ensure(venv: String, version: String) throws {
        guard !FileManager.default.isExecutableFile(atPath: "\(venv)/bin/bagpipe-bgp") else { return }
        FileHandle.standardError.write(Data("installing networking-bagpipe \(version) and exabgp 4.2.25 in \(venv)\n".utf8))
        for command in [
            "python3 -m venv \(venv)", "\(venv)/bin/pip install -q --disable-pip-version-check networking-bagpipe==\(version)",
            "\(venv)/bin/pip install -q --disable-pip-version-check --no-deps exabgp==4.2.25",
        ] {
            guard capture(command + " >&2") != nil else { throw ValidationError("\(command) failed") }
        }
    }
}
