/// The calls that take bagpipe-bgp from what the agent applied to what it should hold: detaches of
/// attachments that went (IP VPN before E-VPN), then attaches of new or changed ones (E-VPN before IP
/// VPN, reference §2.4). An attachment that did not change is not sent again; one whose identity
/// changed (another VNI, another address) is detached and attached anew.
public struct Reconciliation: Sendable, Equatable {
    public var detaches: [Attachment]
    public var attaches: [Attachment]

    public init(desired: [Attachment], applied: [AttachmentKey: Attachment]) {
        var wanted: [AttachmentKey: Attachment] = [:]
        for a in desired { wanted[a.key] = a }
        detaches = applied.values.filter { wanted[$0.key] == nil }.sorted { $0.key.vpnType != $1.key.vpnType ? $0.key.vpnType > $1.key.vpnType : $0.key < $1.key }
        attaches = wanted.values.filter { applied[$0.key]?.attach != $0.attach }.sorted { $0.key < $1.key }
    }

    public var isEmpty: Bool { detaches.isEmpty && attaches.isEmpty }
}
