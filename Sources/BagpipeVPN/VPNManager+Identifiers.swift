import BGPWire

/// The identifiers an instance and its endpoints were given (instance id, label, RD number; an IP
/// VPN endpoint's label and RD), kept beside the attachments so that a restarted daemon gives them
/// the same again: its routes then carry the labels and RDs its peers and its own dataplane (VRF
/// tables, VNI rules) already use, and a restart changes nothing a packet sees.
extension VPNManager {
    static func hintKey(_ kind: String, _ parts: String...) -> String { ([kind] + parts).joined(separator: " ") }

    /// Every identifier in use, as hints for the next run.
    public var identifiers: [String: UInt32] {
        var out: [String: UInt32] = [:]
        for (externalID, m) in instances {
            out[Self.hintKey("id", externalID)] = m.instance.id
            if m.forcedVNI == nil { out[Self.hintKey("label", externalID)] = m.instance.label }
            out[Self.hintKey("rd", externalID)] = m.rdNumber
            for (mac, label) in m.labelOfMAC { out[Self.hintKey("label", externalID, "\(mac)")] = label }
            for (key, record) in m.endpoints { if let rd = record.ownRD { out[Self.hintKey("rd", externalID, "\(key.mac)", key.ip ?? "")] = rd } }
        }
        return out
    }
}
