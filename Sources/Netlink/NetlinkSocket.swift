import CNetlink

#if canImport(Glibc)
import Glibc
#endif

/// A failed netlink request: what it did and the kernel's errno.
public struct NetlinkError: Error, CustomStringConvertible, Equatable {
    public var what: String
    public var errno: Int32

    public init(what: String, errno: Int32) {
        self.what = what
        self.errno = errno
    }

    public var description: String { "\(what): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// A NETLINK_ROUTE socket in the current network namespace. Requests go out in batches — many
/// messages per send, each with its own sequence number and ACK — and each gets its own result, so
/// one refused object does not hide the others. Not thread-safe: one owner (a driver on its loop).
public final class NetlinkSocket {
    let fd: Int32
    var sequence: UInt32 = 0
    /// Messages per send: enough to amortize the system call, few enough that the ACKs fit the
    /// receive buffer.
    public static let batchSize = 512

    /// A socket in the named network namespace (`ip netns add` name). A socket stays in the
    /// namespace it was opened in.
    public convenience init(namespace: String) throws {
        self.init(descriptor: try inNetworkNamespace(namespace) { try Self.open() })
    }

    /// A socket in this thread's network namespace.
    public convenience init() throws { self.init(descriptor: try Self.open()) }

    init(descriptor: Int32) { fd = descriptor }

    static func open() throws -> Int32 {
        let fd = socket(AF_NETLINK, n(SOCK_RAW) | n(SOCK_CLOEXEC), NETLINK_ROUTE)
        guard fd >= 0 else { throw NetlinkError(what: "netlink socket", errno: errno) }
        var size: Int32 = 4 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) } }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw NetlinkError(what: "netlink bind", errno: e)
        }
        return fd
    }

    deinit { close(fd) }

    /// Sends the requests and returns each one's result, in order.
    public func perform(_ requests: [NetlinkRequest]) -> [Result<Void, NetlinkError>] {
        var results: [Result<Void, NetlinkError>] = []
        results.reserveCapacity(requests.count)
        var start = 0
        while start < requests.count {
            let batch = requests[start..<min(start + Self.batchSize, requests.count)]
            results += performBatch(Array(batch))
            start += batch.count
        }
        return results
    }

    /// One request; throws its error.
    public func perform(_ request: NetlinkRequest) throws {
        if case .failure(let e) = perform([request])[0] { throw e }
    }

    /// Every request; throws the first error (the others are still carried out).
    public func performAll(_ requests: [NetlinkRequest]) throws {
        for case .failure(let e) in perform(requests) { throw e }
    }

    func performBatch(_ batch: [NetlinkRequest]) -> [Result<Void, NetlinkError>] {
        let first = sequence &+ 1
        var buffer: [UInt8] = []
        for request in batch {
            sequence &+= 1
            buffer += request.encoded(sequence: sequence)
        }
        var results = [Result<Void, NetlinkError>?](repeating: nil, count: batch.count)
        if let e = send(buffer, what: batch.first?.what ?? "netlink") {
            return batch.map { .failure(NetlinkError(what: $0.what, errno: e.errno)) }
        }
        var pending = batch.count
        while pending > 0 {
            guard let messages = try? receive() else {
                let e = errno
                for i in results.indices where results[i] == nil { results[i] = .failure(NetlinkError(what: batch[i].what, errno: e)) }
                break
            }
            for m in messages where m.type == UInt16(NLMSG_ERROR) {
                let index = Int(m.sequence &- first)
                guard index >= 0, index < batch.count, results[index] == nil else { continue }
                let code = m.payload.count >= 4 ? m.payload.readNative(Int32.self, at: m.payload.startIndex) : -EIO
                results[index] = code == 0 ? .success(()) : .failure(NetlinkError(what: batch[index].what, errno: -code))
                pending -= 1
            }
        }
        return results.map { $0 ?? .failure(NetlinkError(what: "netlink", errno: EIO)) }
    }

    /// A dump (NLM_F_DUMP): every message the kernel answers, until NLMSG_DONE.
    public func dump(_ request: NetlinkRequest) throws -> [NetlinkMessage] {
        sequence &+= 1
        let seq = sequence
        var message = request
        message.flags |= NLM_F_DUMP
        var bytes = message.encoded(sequence: seq)
        // A dump is answered with its messages, not an ACK.
        let flags = UInt16(truncatingIfNeeded: message.flags | NLM_F_REQUEST)
        withUnsafeBytes(of: flags) { bytes[6] = $0[0]; bytes[7] = $0[1] }
        if let e = send(bytes, what: request.what) { throw e }
        var out: [NetlinkMessage] = []
        while true {
            for m in try receive() where m.sequence == seq {
                switch Int32(m.type) {
                case NLMSG_DONE: return out
                case NLMSG_ERROR:
                    let code = m.payload.count >= 4 ? m.payload.readNative(Int32.self, at: m.payload.startIndex) : -EIO
                    if code != 0 { throw NetlinkError(what: request.what, errno: -code) }
                default: out.append(m)
                }
            }
        }
    }

    /// Fault injection for tests (`BAGPIPE_FAULT_NETLINK_GATE=<path>`): while that file exists,
    /// every request waits before it is sent, as behind a kernel that does not answer. Read once;
    /// unset (always, outside tests) it costs nothing.
    static let faultGate: String? = getenv("BAGPIPE_FAULT_NETLINK_GATE").map { String(cString: $0) }

    private func send(_ bytes: [UInt8], what: String) -> NetlinkError? {
        if let gate = Self.faultGate {
            while access(gate, F_OK) == 0 { usleep(20_000) }
        }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
            }
        }
        return sent == bytes.count ? nil : NetlinkError(what: what, errno: sent < 0 ? errno : EMSGSIZE)
    }

    private var receiveBuffer = [UInt8](repeating: 0, count: 1 << 20)

    /// The messages of one datagram.
    private func receive() throws -> [NetlinkMessage] {
        var n: Int
        repeat {
            n = receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while n < 0 && errno == EINTR
        guard n > 0 else { throw NetlinkError(what: "netlink receive", errno: n < 0 ? errno : EIO) }
        let data = receiveBuffer[0..<n]
        var out: [NetlinkMessage] = []
        var i = 0
        while i + 16 <= n {
            let length = Int(data.readNative(UInt32.self, at: i))
            guard length >= 16, i + length <= n else { break }
            out.append(
                NetlinkMessage(
                    type: data.readNative(UInt16.self, at: i + 4), flags: data.readNative(UInt16.self, at: i + 6), sequence: data.readNative(UInt32.self, at: i + 8),
                    payload: data[(i + 16)..<(i + length)]))
            i += (length + 3) & ~3
        }
        return out
    }
}

/// Runs `body` on this thread inside the named network namespace (`ip netns add` name), then
/// comes back to the thread's own: sockets opened there stay there. `body` must not suspend.
public func inNetworkNamespace<T>(_ name: String, _ body: () throws -> T) throws -> T {
    let target = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
    guard target >= 0 else { throw NetlinkError(what: "network namespace \(name)", errno: errno) }
    defer { close(target) }
    let own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
    guard own >= 0 else { throw NetlinkError(what: "this thread's network namespace", errno: errno) }
    defer { close(own) }
    guard cnetlink_enter_network_namespace(target) == 0 else { throw NetlinkError(what: "enter network namespace \(name)", errno: errno) }
    defer { _ = cnetlink_enter_network_namespace(own) }
    return try body()
}
