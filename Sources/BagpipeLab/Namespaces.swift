import Foundation

/// Network namespaces a test creates (`ip netns add`), deleted by `remove()` on every path; a
/// namespace's devices go with it. Names carry a random suffix, so concurrent tests never meet.
public final class TestNamespaces: @unchecked Sendable {
    public private(set) var names: [String] = []
    let suffix = String(UUID().uuidString.prefix(6)).lowercased()

    public init() {}

    /// Creates `<base>-<suffix>` with `lo` up, and returns its name.
    @discardableResult
    public func add(_ base: String) throws -> String {
        let name = "\(base)-\(suffix)"
        try run(["ip", "netns", "add", name])
        names.append(name)
        try run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name
    }

    /// Runs a command inside a namespace.
    @discardableResult
    public func exec(_ namespace: String, _ arguments: [String]) throws -> String { try run(["ip", "netns", "exec", namespace] + arguments) }

    /// Deletes every namespace created (and what is in them).
    public func remove() {
        for name in names.reversed() { _ = try? run(["ip", "netns", "delete", name]) }
        names = []
    }

    deinit { remove() }
}

public struct CommandFailed: Error, CustomStringConvertible {
    public var command: String
    public var status: Int32
    public var output: String
    public var description: String { "\(command) exited with \(status): \(output)" }
}

/// Runs a program, its standard error with its output; returns its exit status and the output.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs a command (found on PATH); throws `CommandFailed` with its output when it fails.
@discardableResult
public func run(_ arguments: [String]) throws -> String {
    let (status, output) = try runProcess("/usr/bin/env", arguments)
    guard status == 0 else { throw CommandFailed(command: arguments.joined(separator: " "), status: status, output: output) }
    return output
}
