import Foundation

/// A client program (`ovs-vsctl`, `ovs-ofctl` …) run to its end: its standard output, or a
/// `ProgramFailure` with what it printed. Blocking: callers run it off their event loops.
public struct ProgramFailure: Error, CustomStringConvertible {
    public var command: String
    public var output: String
    public var status: Int32
    public init(command: String, output: String, status: Int32) {
        self.command = command
        self.output = output
        self.status = status
    }
    public var description: String { "\(command) exited with \(status): \(output.trimmingCharacters(in: .whitespacesAndNewlines).prefix(500))" }
}

/// `environment` is added to this process's (OVS_RUNDIR of another switch, in tests); `input` goes to
/// the program's standard input. Standard error is kept apart and only reported on failure, unless
/// `mergingStandardError`.
@discardableResult
public func runProgram(_ program: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil, mergingStandardError: Bool = false) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [program] + arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = mergingStandardError ? output : errors
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try? stdin.fileHandleForWriting.close()
    }
    // Standard error is read on another thread: a program that fills one pipe while we wait on the
    // other would never end.
    let errorText = NSLockedText()
    if mergingStandardError {
        errorText.set("")
    } else {
        let reader = Thread { errorText.set(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) }
        reader.start()
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let stderr = errorText.wait()
    guard process.terminationStatus == 0 else {
        throw ProgramFailure(command: ([program] + arguments).joined(separator: " ").prefix(300).description, output: text + stderr, status: process.terminationStatus)
    }
    return text
}

/// Text another thread writes once.
final class NSLockedText: @unchecked Sendable {
    private let condition = NSCondition()
    private var text: String?
    func set(_ t: String) {
        condition.lock()
        text = t
        condition.signal()
        condition.unlock()
    }
    func wait() -> String {
        condition.lock()
        defer { condition.unlock() }
        while text == nil { condition.wait() }
        return text ?? ""
    }
}
