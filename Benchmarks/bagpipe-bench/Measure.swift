import AllocationCounter

#if canImport(Glibc)
    import Glibc
#endif

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Calls `body` repeatedly for about `seconds` after a warm-up; returns calls per second and heap
/// bytes allocated per call (counted over a separate, shorter run).
func measure(seconds: Double, _ body: () -> Void) -> (perSecond: Double, heapBytesPerCall: Double) {
    for _ in 0..<200 { body() }
    let countedCalls = 2000
    allocation_counter_start()
    for _ in 0..<countedCalls { body() }
    allocation_counter_stop()
    let heap = Double(allocation_counter_bytes()) / Double(countedCalls)
    if getenv("BAGPIPE_BENCH_DEBUG") != nil {
        print("  allocations per call: \(Double(allocation_counter_calls()) / Double(countedCalls)), bytes \(heap)")
    }
    var calls = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        for _ in 0..<200 { body() }
        calls += 200
        elapsed = now() - start
    } while elapsed < seconds
    return (Double(calls) / elapsed, heap)
}

/// Runs a command and returns its standard output (nil when it cannot be started or fails).
func capture(_ command: String) -> String? {
    guard let pipe = popen(command, "r") else { return nil }
    var output = ""
    var buffer = [CChar](repeating: 0, count: 4096)
    while fgets(&buffer, Int32(buffer.count), pipe) != nil {
        output += cString(buffer)
    }
    return pclose(pipe) == 0 ? output : nil
}

func format(_ value: Double, _ decimals: Int = 1) -> String {
    var s = String(Int((value * pow(10, Double(decimals))).rounded()))
    while s.count <= decimals { s = "0" + s }
    if decimals > 0 { s.insert(".", at: s.index(s.endIndex, offsetBy: -decimals)) }
    return s
}

func millions(_ value: Double) -> String { format(value / 1e6, 2) + " M" }

/// A NUL-terminated C buffer as a string.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
