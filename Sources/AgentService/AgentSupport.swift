import AgentCore
import Foundation

// What the agent's loops use: bounded concurrency, backoff, a watchdog, endpoint identity.

extension Agent {
    /// REST calls one phase has in flight at once.
    static let callsInFlight = 8
}

/// `body` for each item, at most `limit` at a time; the results in the items' order.
func concurrently<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) async -> R) async -> [R] {
    if items.isEmpty { return [] }
    return await withTaskGroup(of: (Int, R).self) { group in
        var results = [R?](repeating: nil, count: items.count)
        var next = 0
        while next < min(limit, items.count) {
            let i = next
            group.addTask { (i, await body(items[i])) }
            next += 1
        }
        while let (i, r) = await group.next() {
            results[i] = r
            if next < items.count {
                let j = next
                group.addTask { (j, await body(items[j])) }
                next += 1
            }
        }
        return results.compactMap { $0 }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// What identifies an endpoint both in an attachment and in the looking glass.
struct EndpointIdentity: Hashable {
    var vpnType: VPNType
    var instance: String
    var mac: String
    var ip: String?
    init(_ k: AttachmentKey) {
        vpnType = k.vpnType
        instance = k.vpnInstanceID
        mac = k.macAddress.lowercased()
        ip = k.ipAddress.map(Self.host)
    }
    init(_ e: LookingGlassEndpoint) {
        vpnType = e.vpnType
        instance = e.vpnInstanceID
        mac = e.macAddress.lowercased()
        ip = e.ipAddress.map(Self.host)
    }
    /// "10.0.0.3/32" and "10.0.0.3" are one address.
    static func host(_ ip: String) -> String {
        if ip.hasSuffix("/32") || ip.hasSuffix("/128") { return String(ip[..<(ip.lastIndex(of: "/") ?? ip.endIndex)]) }
        return ip
    }
}

/// Delays that double from 0.5 s up to 30 s.
struct Backoff: Sendable {
    var current = 0.5
    mutating func next() -> Double {
        defer { current = min(current * 2, 30) }
        return current
    }
    mutating func reset() { current = 0.5 }
    mutating func sleep() async { try? await Task.sleep(for: .seconds(next())) }
}

/// Throws when `touch` was not called for `limit` seconds.
actor Watchdog {
    let limit: Double
    var last = ContinuousClock.now
    init(limit: Double) { self.limit = limit }
    func touch() { last = .now }
    func run() async throws {
        while true {
            try await Task.sleep(for: .seconds(limit / 3))
            if ContinuousClock.now - last > .seconds(limit) { return }
        }
    }
}
