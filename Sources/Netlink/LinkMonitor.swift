import CNetlink

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's link notifications (RTNLGRP_LINK) in this network namespace: `wait` returns when a
/// device appeared, changed or went, so that a caller can look at once instead of polling. What the
/// notification says is not read: the caller dumps what it needs.
public final class LinkMonitor: @unchecked Sendable {
    let fd: Int32

    public init() throws {
        fd = socket(AF_NETLINK, n(SOCK_RAW) | n(SOCK_CLOEXEC), NETLINK_ROUTE)
        guard fd >= 0 else { throw NetlinkError(what: "netlink socket", errno: errno) }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = UInt32(1 << (n(RTNLGRP_LINK) - 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) } }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw NetlinkError(what: "netlink bind to the link group", errno: e)
        }
    }

    deinit { close(fd) }

    /// Blocks until at least one notification came; reads every one waiting. A lost notification
    /// (ENOBUFS: the receive buffer overflowed) counts as a change.
    public func wait() throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var flags: Int32 = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, flags) }
            if got > 0 {
                flags = n(MSG_DONTWAIT)
                continue
            }
            let e = errno
            if got < 0 && e == EINTR { continue }
            if flags != 0 && got < 0 && (e == EAGAIN || e == EWOULDBLOCK) { return }
            if got < 0 && e == ENOBUFS { return }
            throw NetlinkError(what: "netlink link notifications", errno: e)
        }
    }
}
