import BGPWire
import BagpipeVPN
import Dataplane

/// The API's form of a classifier (`attract_traffic.classifier`).
extension TrafficClassifier {
    /// The API's classifier object: `sourcePrefix`, `destinationPrefix`, `sourcePort`,
    /// `destinationPort` (`"N"` or `"min:max"`), `protocol` (a name or a number, default tcp).
    public init(json: JSONValue) throws(VPNError) {
        guard case .object(let fields) = json else { throw VPNError("attract_traffic.classifier must be an object") }
        let known: Set<String> = ["sourcePrefix", "destinationPrefix", "sourcePort", "destinationPort", "protocol"]
        if let stray = fields.first(where: { !known.contains($0.0) }) {
            throw VPNError("attract_traffic.classifier: unknown key '\(stray.0)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        func text(_ key: String) throws(VPNError) -> String? {
            guard let v = json[key], v != .null else { return nil }
            if case .int(let i) = v { return String(i) }
            guard let s = v.stringValue else { throw VPNError("attract_traffic.classifier.\(key) must be a string") }
            return s
        }
        func prefix(_ key: String) throws(VPNError) -> IPPrefix? {
            guard let t = try text(key) else { return nil }
            guard let p = RequestReader.parsePrefix(t) else { throw VPNError("attract_traffic.classifier.\(key): '\(t)' is not a prefix") }
            return p
        }
        func port(_ key: String) throws(VPNError) -> PortRange? {
            guard let t = try text(key) else { return nil }
            guard let r = PortRange(text: t) else { throw VPNError("attract_traffic.classifier.\(key): '\(t)' is not a port or a min:max range") }
            return r
        }
        let (sourcePrefix, destinationPrefix) = (try prefix("sourcePrefix"), try prefix("destinationPrefix"))
        let (sourcePort, destinationPort) = (try port("sourcePort"), try port("destinationPort"))
        let proto = try text("protocol") ?? "tcp"
        guard let number = Self.protocolNumbers[proto.lowercased()] ?? UInt8(proto) else {
            throw VPNError("attract_traffic.classifier.protocol: '\(proto)' is not a protocol name or number")
        }
        self.init(sourcePrefix: sourcePrefix, destinationPrefix: destinationPrefix, sourcePort: sourcePort, destinationPort: destinationPort, ipProtocol: number)
    }
}
