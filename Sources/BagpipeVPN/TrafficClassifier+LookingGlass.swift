import BGPWire
import Dataplane

extension TrafficClassifier {
    /// The looking glass's (and the API's) camel-case object.
    public var json: JSONValue {
        var fields: [(String, JSONValue)] = []
        if let p = sourcePrefix { fields.append(("sourcePrefix", .string("\(p)"))) }
        if let p = destinationPrefix { fields.append(("destinationPrefix", .string("\(p)"))) }
        if let r = sourcePort { fields.append(("sourcePort", .string("\(r)"))) }
        if let r = destinationPort { fields.append(("destinationPort", .string("\(r)"))) }
        if let p = ipProtocol { fields.append(("protocol", .string(Self.protocolNumbers.first { $0.value == p }?.key ?? "\(p)"))) }
        return .object(fields)
    }
}
