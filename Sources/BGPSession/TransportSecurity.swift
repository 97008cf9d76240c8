import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Per-peer protection of the TCP connection: RFC 2385 MD5 signatures (Linux TCP_MD5SIG) and RFC 5082
/// GTSM (send with TTL 255, accept only packets that crossed at most `hops` routers).
public struct TransportSecurity: Hashable, Sendable {
    public var md5Password: String?
    public var ttlSecurityHops: Int?

    public init(md5Password: String? = nil, ttlSecurityHops: Int? = nil) {
        self.md5Password = md5Password
        self.ttlSecurityHops = ttlSecurityHops
    }

    public var isEmpty: Bool { md5Password == nil && ttlSecurityHops == nil }

    /// RFC 2385 keys on Linux hold at most 80 bytes.
    public static let maximumPasswordLength = 80

    /// Installs the MD5 key for `peer` on a socket (a listening socket takes one key per peer).
    static func setMD5(_ password: String, peer: SocketAddress, on channel: any Channel) -> EventLoopFuture<Void> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(TransportSecurityError("the channel has no socket options"))
        }
        var signature = tcp_md5sig()
        peer.withSockAddr { address, length in
            withUnsafeMutableBytes(of: &signature.tcpm_addr) { storage in
                storage.copyMemory(from: UnsafeRawBufferPointer(start: address, count: min(length, storage.count)))
            }
        }
        let key = Array(password.utf8.prefix(maximumPasswordLength))
        signature.tcpm_keylen = UInt16(key.count)
        withUnsafeMutableBytes(of: &signature.tcpm_key) { $0.copyBytes(from: key) }
        return provider.unsafeSetSocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_MD5SIG), value: signature)
    }

    /// GTSM: our packets leave with TTL 255; theirs must arrive with at least 256 - hops.
    static func setTTLSecurity(hops: Int, ipv6: Bool, on channel: any Channel) -> EventLoopFuture<Void> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(TransportSecurityError("the channel has no socket options"))
        }
        let minimum = CInt(max(1, 256 - max(1, hops)))
        if ipv6 {
            return provider.unsafeSetSocketOption(level: .ipv6, name: NIOBSDSocket.Option(rawValue: IPV6_UNICAST_HOPS), value: CInt(255)).flatMap {
                provider.unsafeSetSocketOption(level: .ipv6, name: NIOBSDSocket.Option(rawValue: 73 /* IPV6_MINHOPCOUNT */), value: minimum)
            }
        }
        return provider.unsafeSetSocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: IP_TTL), value: CInt(255)).flatMap {
            provider.unsafeSetSocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: IP_MINTTL), value: minimum)
        }
    }

    /// What a connection to or from `peer` needs.
    func apply(peer: SocketAddress, to channel: any Channel) -> EventLoopFuture<Void> {
        var future = channel.eventLoop.makeSucceededVoidFuture()
        if let password = md5Password {
            future = future.flatMap { Self.setMD5(password, peer: peer, on: channel) }
        }
        if let hops = ttlSecurityHops {
            let ipv6: Bool
            if case .v6 = peer { ipv6 = true } else { ipv6 = false }
            future = future.flatMap { Self.setTTLSecurity(hops: hops, ipv6: ipv6, on: channel) }
        }
        return future
    }
}

public struct TransportSecurityError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
