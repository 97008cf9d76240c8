/// What the session negotiated, which changes how bytes are read and written.
public struct WireContext: Hashable, Sendable {
    /// RFC 6793: AS numbers in AS_PATH and AGGREGATOR are 4 bytes.
    public var fourOctetAS: Bool
    /// RFC 7911: families whose NLRI carry a path identifier in this direction.
    public var addPathFamilies: Set<AddressFamily>
    /// 4096, or 65535 once RFC 8654 extended messages are negotiated.
    public var maxMessageSize: Int
    /// The peer is in another AS: LOCAL_PREF from it is discarded (RFC 7606 §7.5).
    public var externalPeer: Bool

    public init(
        fourOctetAS: Bool = true, addPathFamilies: Set<AddressFamily> = [], maxMessageSize: Int = 4096,
        externalPeer: Bool = false
    ) {
        self.fourOctetAS = fourOctetAS
        self.addPathFamilies = addPathFamilies
        self.maxMessageSize = maxMessageSize
        self.externalPeer = externalPeer
    }

    public static let standard = WireContext()
    public static let maximumExtendedMessageSize = 65535

    public func addPath(_ family: AddressFamily) -> Bool {
        !addPathFamilies.isEmpty && addPathFamilies.contains(family)
    }
}
