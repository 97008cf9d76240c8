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

extension WireContext {
    /// The context for messages that `sender` sends to `receiver`, from their OPENs: 4-octet AS when
    /// both offer it (RFC 6793), path identifiers for families where the sender may send and the
    /// receiver may receive (RFC 7911), extended messages when both offer them (RFC 8654).
    public init(sender: OpenMessage, receiver: OpenMessage) {
        let senderCaps = sender.capabilities
        let receiverCaps = receiver.capabilities
        func offers(_ caps: [Capability], _ code: UInt8) -> Bool { caps.contains { $0.code == code } }
        var sends: Set<AddressFamily> = []
        var receives: Set<AddressFamily> = []
        for case .addPath(let entries) in senderCaps { for e in entries where e.mode.contains(.send) { sends.insert(e.family) } }
        for case .addPath(let entries) in receiverCaps { for e in entries where e.mode.contains(.receive) { receives.insert(e.family) } }
        self.init(
            fourOctetAS: offers(senderCaps, Capability.Code.fourOctetAS) && offers(receiverCaps, Capability.Code.fourOctetAS),
            addPathFamilies: sends.intersection(receives),
            maxMessageSize: offers(senderCaps, Capability.Code.extendedMessage) && offers(receiverCaps, Capability.Code.extendedMessage)
                ? Self.maximumExtendedMessageSize : 4096,
            externalPeer: sender.asn != receiver.asn)
    }
}
